"""The fault families of any service: HTTP faults at a proxy (http-abort, http-delay, and
maintenance on a stack that is not the sample shop), and the faults users define themselves
(exec: commands; http: calls). Models, injectors, journal records, and the target policy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import (
    BadInputError,
    InfrastructureError,
    ProxyConflict,
    ProxyNotFound,
    ToxiproxyError,
)
from harness.faults import (
    build_fault,
    check_fault_env,
    check_http_support,
    fault_from_record,
    with_target_policy,
)
from harness.faults import http_toxic as http_toxic_module
from harness.faults.exec_fault import RunCommands
from harness.faults.http_call import CallEndpoints, HttpRequest
from harness.faults.http_toxic import AddHttpToxic
from harness.faults.maintenance import MaintenanceMode
from harness.faults.model import FaultModel
from harness.faults.targets import check_record
from harness.safety import TargetPolicy, TargetRefused, run_policy
from harness.scenario import Scenario
from harness.scenario.messages import validate
from harness.stack import (
    Endpoint,
    Instance,
    LocalStack,
    ProcessState,
    ProcessStatus,
    Proxy,
    StackInfo,
    StackStatus,
)

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.

HOST = "127.0.0.1"
ELSEWHERE = "192.0.2.10"  # TEST-NET-1: never reached
TOXIPROXY = f"http://{HOST}:18474"
EDGE = Proxy("edge", Endpoint(HOST, 18080), Endpoint(HOST, 9000))
SHOP = StackInfo(
    entry_url=f"http://{HOST}:18080",
    toxiproxy_url=TOXIPROXY,
    services=(),
    instances=tuple(Instance(f"app-{n}", Endpoint(HOST, 18000 + n), f"lb-app-{n}") for n in (1, 2)),
    proxies=(
        Proxy("lb-app-1", Endpoint(HOST, 18101), Endpoint(HOST, 18001)),
        Proxy("lb-app-2", Endpoint(HOST, 18102), Endpoint(HOST, 18002)),
    ),
    admin_token="tok",
)
# A service that is not the sample shop, behind a proxy named "edge".
SERVICE = StackInfo(
    entry_url=f"http://{HOST}:18080",
    toxiproxy_url=TOXIPROXY,
    services=(),
    instances=(),
    proxies=(EDGE,),
    admin_token="",
)


@pytest.fixture
def stack(tmp_path: Path) -> LocalStack:
    return LocalStack(tmp_path / "state")


# --- scenario entries ------------------------------------------------------------------------


def scenario(
    tmp_path: Path,
    faults: list[Any],
    stack: dict[str, Any] | None = None,
    allow_targets: tuple[str, ...] = (),
) -> Scenario:
    (tmp_path / "locust.py").write_text("# users\n")
    data = {
        "name": "s",
        "allow_targets": list(allow_targets),
        "stack": stack or {"kind": "local"},
        "load": {
            "locustfile": "locust.py",
            "phases": [{"name": "a", "duration": "60s", "users": 1, "spawn_rate": 1}],
        },
        "faults": faults,
    }
    return validate(Scenario, data, source="s.yaml", context={"base_dir": str(tmp_path)})


def refusal(tmp_path: Path, fault: dict[str, Any], stack: dict[str, Any] | None = None) -> str:
    with pytest.raises(BadInputError) as refused:
        scenario(tmp_path, [{"name": "f", "at": "1s", **fault}], stack)
    message = str(refused.value)
    assert "\n" not in message
    return message


def one(
    tmp_path: Path,
    fault: dict[str, Any],
    stack: dict[str, Any] | None = None,
    allow_targets: tuple[str, ...] = (),
) -> Any:
    faults = [{"name": "f", "at": "1s", **fault}]
    return scenario(tmp_path, faults, stack, allow_targets).faults[0]


EXTERNAL = {"kind": "external", "entry_url": f"http://{HOST}:9000", "toxiproxy_url": TOXIPROXY}
EXEC = {"action": "exec", "inject": ["systemctl", "stop", "web"], "revert": ["systemctl", "start"]}
CALL = {
    "action": "http",
    "inject": {"url": f"http://{HOST}:9/flags/x", "body": '{"enabled": false}'},
    "revert": {"url": f"http://{HOST}:9/flags/x", "body": '{"enabled": true}'},
}


def test_an_http_abort_spells_out_every_default(tmp_path: Path) -> None:
    fault = one(tmp_path, {"action": "http-abort", "target": "lb-app-1"})
    params = fault.params
    assert (params.status, params.retry_after, params.body) == (503, None, "")
    assert (params.percent, params.first, params.client_key) == (100.0, 0, "")
    assert params.exclude_paths == ("/healthz", "/readyz")


def test_http_delay_reads_a_bare_yaml_on_key_as_on(tmp_path: Path) -> None:
    # YAML 1.1 reads `on:` as the key true, as GitHub Actions users know.
    entry = yaml.safe_load(
        "{action: http-delay, target: lb-app-1, params: {delay: 200ms, jitter: 50ms, on: response}}"
    )
    assert True in entry["params"]
    params = one(tmp_path, entry).params
    assert (params.delay, params.jitter, params.on) == (0.2, 0.05, "response")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"status": 700}},
            "faults[0].params.status: expected an HTTP status from 100 to 599, got 700",
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"percent": 120}},
            "faults[0].params.percent: expected a number from 0 to 100, got 120",
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"first": -1}},
            "faults[0].params.first: expected a whole number >= 0, got -1",
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"retry_after": 5}},
            "faults[0].params.retry_after: expected a duration like 30s, got 5",
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"method": "FETCH"}},
            "faults[0].params.method: expected one of: GET, HEAD, POST",
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"header_value": "x"}},
            "faults[0].params.header_value: needs header_name",
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"client_key": "Id"}},
            "faults[0].params.client_key: only with first",
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"exclude_paths": ["x"]}},
            'faults[0].params.exclude_paths[0]: expected a URL path like /healthz, got "x"',
        ),
        (
            {"action": "http-abort", "target": "lb-app-1", "params": {"body": "x" * 70000}},
            "faults[0].params.body: expected at most 64 KiB of text",
        ),
        (
            {"action": "http-abort", "target": "app-1"},
            "faults[0].target: http-abort needs a Toxiproxy proxy like lb-app-1",
        ),
        (
            {"action": "http-delay", "target": "lb-app-1", "params": {"delay": "0.1ms"}},
            "faults[0].params.delay: expected at least 1ms",
        ),
        (
            {"action": "http-delay", "target": "lb-app-1", "params": {"delay": "1s", "on": "x"}},
            'faults[0].params.on: expected one of: request, response, got "x"',
        ),
        (
            {"action": "http-delay", "target": "lb-app-1", "params": {}},
            "faults[0].params.delay: required, but missing",
        ),
        (
            {**EXEC, "inject": "systemctl stop web"},
            "faults[0].inject: expected a list of arguments like [systemctl, stop, web], "
            'got "systemctl stop web": no shell splits a string here',
        ),
        (
            {**EXEC, "inject": []},
            "faults[0].inject: expected a list of arguments like [systemctl, stop, web], "
            "got an empty list",
        ),
        (
            {**EXEC, "revert": ["kubectl", {"a": 1}]},
            'faults[0].revert[1]: expected a string (quote it: "..."), got a mapping',
        ),
        (
            {**EXEC, "inject": ["", "x"]},
            "faults[0].inject[0]: expected the program to run, got an empty string",
        ),
        (
            {**EXEC, "inject": ["curl", "-H", "Authorization: ${TOKEN"]},
            'faults[0].inject[2]: expected ${NAME} (letters, digits and _) after ${, got "${TOKEN"',
        ),
        ({**EXEC, "timeout": "0s"}, "faults[0].timeout: expected a duration longer than 0s"),
        ({**EXEC, "target": "web"}, "faults[0].target: exec takes no target"),
        (
            {**CALL, "inject": {"url": "ftp://flags/x"}},
            "faults[0].inject.url: expected an http(s) URL",
        ),
        (
            {**CALL, "inject": {"url": "https://${FLAGS_HOST}/x"}},
            "faults[0].inject.url: ${NAME} may only be used in the URL's query",
        ),
        (
            {**CALL, "inject": {"url": "http://h/x", "method": "FETCH"}},
            "faults[0].inject.method: expected one of: GET, HEAD, POST, PUT, PATCH, DELETE, "
            'OPTIONS, got "FETCH"',
        ),
        (
            {**CALL, "revert": {"url": "http://h/x", "headers": {"Bad Name": "x"}}},
            'faults[0].revert.headers: expected a header name like Authorization, got "Bad Name"',
        ),
        (
            {**CALL, "revert": {"url": "http://h/x", "headers": {"X-Token": "a\nb"}}},
            "faults[0].revert.headers.X-Token: expected a value on one line",
        ),
        ({**CALL, "revert": {"method": "PUT"}}, "faults[0].revert.url: required, but missing"),
        ({**CALL, "target": "flags"}, "faults[0].target: http takes no target"),
    ],
)
def test_a_bad_entry_is_one_line_naming_the_field(
    tmp_path: Path, fault: dict[str, Any], message: str
) -> None:
    assert refusal(tmp_path, fault).startswith(f"s.yaml: {message}")


@pytest.mark.parametrize(
    "stack",
    [{"kind": "local"}, EXTERNAL, {"kind": "external", "entry_url": f"http://{HOST}:9000"}],
    ids=["local", "external", "external-without-toxiproxy"],
)
def test_exec_and_http_faults_need_nothing_of_the_stack(
    tmp_path: Path, stack: dict[str, Any]
) -> None:
    faults = [{"name": "a", "at": "1s", **EXEC}, {"name": "b", "at": "1s", **CALL}]
    assert [f.action for f in scenario(tmp_path, faults, stack).faults] == ["exec", "http"]


def test_http_faults_and_maintenance_are_taken_on_an_external_stack_with_a_toxiproxy(
    tmp_path: Path,
) -> None:
    faults = [
        {"name": "a", "at": "1s", "action": "http-abort", "target": "edge"},
        {
            "name": "b",
            "at": "1s",
            "action": "http-delay",
            "target": "edge",
            "params": {"delay": "1s"},
        },
        {"name": "c", "at": "1s", "action": "maintenance", "params": {"retry_after": "10s"}},
    ]
    loaded = scenario(tmp_path, faults, EXTERNAL).faults
    assert [f.action for f in loaded] == ["http-abort", "http-delay", "maintenance"]
    bare = {"kind": "external", "entry_url": f"http://{HOST}:9000"}
    message = refusal(tmp_path, {"action": "maintenance"}, bare)
    assert message.startswith("s.yaml: stack.toxiproxy_url: required for kind external")


def test_the_resolved_form_reads_back(tmp_path: Path) -> None:
    faults = [
        {"name": "a", "at": "1s", **EXEC},
        {"name": "b", "at": "1s", **CALL},
        {
            "name": "c",
            "at": "1s",
            "action": "http-abort",
            "target": "edge",
            "params": {"retry_after": "2s", "first": 3, "client_key": "Idempotency-Key"},
        },
        {
            "name": "d",
            "at": "1s",
            "action": "http-delay",
            "target": "edge",
            "params": {"delay": "250ms", "on": "response"},
        },
        {"name": "e", "at": "1s", "action": "maintenance", "params": {"retry_after": "10s"}},
    ]
    loaded = scenario(tmp_path, faults, EXTERNAL)
    again = Scenario.from_dict(json.loads(json.dumps(loaded.to_dict())))
    assert again.faults == loaded.faults


# --- exec ------------------------------------------------------------------------------------


def test_exec_runs_argument_lists_never_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "a; touch pwned"  # one argument: no shell ever splits it
    fault = RunCommands("cmd", ("touch", str(marker)), ("rm", "-f", str(marker)), 5.0)
    fault.inject()
    assert marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a; touch pwned"]
    fault.revert()
    fault.revert()  # the harness runs the revert again; rm -f is safe to
    assert not marker.exists()


def test_exec_expands_environment_variables_in_arguments_only_when_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    script = 'echo "$1" > "$2"'
    fault = RunCommands("cmd", ("sh", "-c", script, "sh", "${MARK}", str(out)), ("true",), 5.0)
    monkeypatch.setenv("MARK", "from the environment")
    fault.inject()
    assert out.read_text() == "from the environment\n"
    record = fault.to_record()
    assert record["inject"][4] == "${MARK}"
    assert fault_from_record(json.loads(json.dumps(record))) == fault


def test_an_unknown_variable_is_one_line_naming_the_fault_and_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HARNESS_TEST_UNSET", raising=False)
    fault = RunCommands("cmd", ("true",), ("echo", "${HARNESS_TEST_UNSET}"), 5.0)
    with pytest.raises(
        BadInputError,
        match=r'^fault "cmd": revert\[1\]: environment variable HARNESS_TEST_UNSET is not set$',
    ):
        fault.revert()


def test_a_failing_command_is_an_infrastructure_error_with_its_last_lines() -> None:
    script = "for i in 1 2 3 4 5 6 7; do echo line $i; done; echo oops >&2; exit 3"
    fault = RunCommands("cmd", ("sh", "-c", script), ("true",), 5.0)
    with pytest.raises(InfrastructureError) as failed:
        fault.inject()
    message = str(failed.value)
    assert message.startswith('fault "cmd": inject: `sh -c ')
    assert message.endswith("exited with 3: line 4 | line 5 | line 6 | line 7 | oops")
    assert "\n" not in message


def test_a_command_output_never_shows_the_secret_it_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cret-value")
    fault = RunCommands(
        "cmd", ("sh", "-c", 'echo "denied for $0"; exit 1', "${API_TOKEN}"), ("true",)
    )
    with pytest.raises(InfrastructureError) as failed:
        fault.inject()
    assert "s3cret-value" not in str(failed.value)
    assert "denied for ${API_TOKEN}" in str(failed.value)


@pytest.mark.integration  # waits out the timeout
def test_a_command_past_its_timeout_is_killed_with_what_it_started() -> None:
    fault = RunCommands("cmd", ("sh", "-c", "echo started; sleep 30 & sleep 30"), ("true",), 0.3)
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match=r"did not finish within 0\.3s and was killed"):
        fault.inject()
    assert time.monotonic() - started < 5


def test_a_program_that_does_not_exist_is_an_infrastructure_error() -> None:
    fault = RunCommands("cmd", ("/nonexistent/harness-prog",), ("true",))
    with pytest.raises(InfrastructureError, match="cannot run `/nonexistent/harness-prog`"):
        fault.inject()


def test_exec_reads_no_input() -> None:
    RunCommands("cmd", ("cat",), ("true",), 5.0).inject()  # stdin is /dev/null: cat ends


def test_missing_variables_are_found_before_any_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLAG_TOKEN", "t")
    monkeypatch.delenv("HARNESS_TEST_UNSET", raising=False)
    call = {**CALL, "revert": {**CALL["revert"], "headers": {"X-Key": "${HARNESS_TEST_UNSET}"}}}
    faults = scenario(
        tmp_path,
        [
            {"name": "a", "at": "1s", **EXEC, "inject": ["x", "${FLAG_TOKEN}"]},
            {"name": "b", "at": "1s", **call},
        ],
    ).faults
    with pytest.raises(BadInputError) as missing:
        check_fault_env(faults)
    assert str(missing.value) == (
        'faults[1] ("b"): revert.headers.X-Key: environment variable HARNESS_TEST_UNSET is not set'
    )
    check_fault_env(faults, {"FLAG_TOKEN": "t", "HARNESS_TEST_UNSET": "u"})


# --- http: the user's own endpoints --------------------------------------------------------------


@dataclass
class Endpoints:
    """A small HTTP service on a real socket: every request kept, answers scripted."""

    url: str = ""
    status: int = 200
    answer: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    state = Endpoints()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else None
            state.seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
            time.sleep(state.delay_s)
            self.send_response(state.status)
            for key, value in state.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(state.answer)))
            self.end_headers()
            self.wfile.write(state.answer)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    state.url = f"http://{HOST}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def http_fault(tmp_path: Path, url: str, allow: tuple[str, ...] = (), **changes: Any) -> Any:
    entry = {
        "action": "http",
        "inject": {
            "url": f"{url}/flags/checkout?token=${{FLAG_QUERY}}",
            "headers": {"Authorization": "Bearer ${FLAG_TOKEN}"},
            "body": '{"enabled": false, "by": "${FLAG_USER}"}',
        },
        "revert": {
            "method": "put",
            "url": f"{url}/flags/checkout",
            "headers": {"Authorization": "Bearer ${FLAG_TOKEN}"},
            "body": "on",
        },
        **changes,
    }
    return one(tmp_path, entry, allow_targets=allow)


@pytest.fixture
def flag_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG_TOKEN", "s3cret-token")
    monkeypatch.setenv("FLAG_QUERY", "q-s3cret")
    monkeypatch.setenv("FLAG_USER", "harness")


@pytest.mark.usefixtures("flag_env")
def test_http_calls_inject_and_revert_with_expanded_secrets_the_journal_never_holds(
    tmp_path: Path, endpoints: Endpoints, stack: LocalStack
) -> None:
    fault = build_fault(http_fault(tmp_path, endpoints.url), stack, SERVICE)
    fault.inject()
    fault.revert()
    inject, revert = endpoints.seen
    assert (inject["method"], inject["path"]) == ("POST", "/flags/checkout?token=q-s3cret")
    assert inject["headers"]["Authorization"] == "Bearer s3cret-token"
    assert inject["headers"]["Content-Type"] == "application/json"
    assert inject["body"] == '{"enabled": false, "by": "harness"}'
    assert (revert["method"], revert["body"]) == ("PUT", "on")
    assert revert["headers"]["Content-Type"] == "text/plain; charset=utf-8"

    record = fault.to_record()
    text = json.dumps(record)
    assert "s3cret" not in text
    assert record["inject"]["headers"] == {"Authorization": "Bearer ${FLAG_TOKEN}"}
    assert "s3cret" not in fault.describe()
    again = fault_from_record(json.loads(text))  # as `harness rollback` would
    assert again == fault
    again.revert()
    assert endpoints.seen[-1]["headers"]["Authorization"] == "Bearer s3cret-token"


@pytest.mark.usefixtures("flag_env")
def test_an_answer_that_is_not_2xx_fails_with_the_status_and_the_start_of_the_body(
    tmp_path: Path, endpoints: Endpoints, stack: LocalStack
) -> None:
    endpoints.status, endpoints.answer = 403, b"forbidden:\n token s3cret-token is not valid " * 20
    fault = build_fault(http_fault(tmp_path, endpoints.url), stack, SERVICE)
    with pytest.raises(InfrastructureError) as failed:
        fault.inject()
    message = str(failed.value)
    assert message.startswith(
        f'fault "f": inject: POST {endpoints.url}/flags/checkout?token=${{FLAG_QUERY}} answered '
        "403: forbidden: token ${FLAG_TOKEN} is not valid"
    )
    assert "\n" not in message
    assert "s3cret" not in message
    assert len(message) < 400


@pytest.mark.usefixtures("flag_env")
def test_a_redirect_is_not_followed(
    tmp_path: Path, endpoints: Endpoints, stack: LocalStack
) -> None:
    endpoints.status, endpoints.headers = 302, {"Location": f"http://{ELSEWHERE}/steal"}
    fault = build_fault(http_fault(tmp_path, endpoints.url), stack, SERVICE)
    with pytest.raises(InfrastructureError, match="answered 302"):
        fault.inject()
    assert len(endpoints.seen) == 1


@pytest.mark.usefixtures("flag_env")
def test_a_call_that_does_not_answer_in_time_fails(
    tmp_path: Path, endpoints: Endpoints, stack: LocalStack
) -> None:
    endpoints.delay_s = 1.0
    spec = http_fault(tmp_path, endpoints.url, timeout="200ms")
    with pytest.raises(InfrastructureError, match=r"did not answer within 0.2s$"):
        build_fault(spec, stack, SERVICE).inject()


@pytest.mark.usefixtures("flag_env")
def test_a_call_to_a_host_not_allowed_is_refused_before_anything_is_sent(
    tmp_path: Path, stack: LocalStack
) -> None:
    # The scenario allows the host; the fault as built is held to the run's policy all the same.
    spec = http_fault(tmp_path, f"http://{ELSEWHERE}:9", allow=(ELSEWHERE,))
    fault = build_fault(spec, stack, SERVICE)
    with pytest.raises(TargetRefused, match=rf'^fault "f": inject.url: host "{ELSEWHERE}"'):
        fault.inject()
    with pytest.raises(TargetRefused, match=r'^fault "f": revert.url'):
        fault.revert()
    # Read back from a journal it is held to loopback and $HARNESS_ALLOW_TARGETS.
    with pytest.raises(TargetRefused):
        fault_from_record(fault.to_record()).revert()
    allowed = with_target_policy(fault, TargetPolicy.of([ELSEWHERE]))
    assert isinstance(allowed, CallEndpoints)
    assert allowed.policy is not None
    assert allowed.policy.permits(ELSEWHERE)
    other = build_fault(
        one(tmp_path, {"action": "http-abort", "target": "edge"}, EXTERNAL), stack, SERVICE
    )
    assert with_target_policy(other, TargetPolicy()) is other


def test_a_journal_record_calling_a_host_not_allowed_is_refused(tmp_path: Path) -> None:
    call = HttpRequest(url=f"http://{HOST}:9/flags")
    record = CallEndpoints("flag", call, call).to_record()
    check_record(record, run_policy(()))
    for step in ("inject", "revert"):
        crafted = json.loads(json.dumps(record))
        crafted[step]["url"] = f"http://{ELSEWHERE}/flags?t=${{FLAG_TOKEN}}"
        with pytest.raises(TargetRefused, match=rf"fault record 'flag': {step}.url: host"):
            check_record(crafted, run_policy(()))


def test_a_journal_record_may_not_take_its_host_from_the_environment() -> None:
    call = HttpRequest(url=f"http://{HOST}:9/flags")
    record = CallEndpoints("flag", call, call).to_record()
    record["revert"]["url"] = "http://${EVIL_HOST}/flags"
    with pytest.raises(TargetRefused):
        check_record(record, run_policy(()))
    with pytest.raises(
        BadInputError, match=r"^fault record 'flag' \(http\): revert.url: \$\{NAME\}"
    ):
        fault_from_record(record)


# --- http-abort, http-delay: an http toxic on a proxy -------------------------------------------


@dataclass
class FakeToxiproxy:
    """The API as ToxiproxyClient presents it, with the same exceptions."""

    toxics: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"edge": {}, "lb-app-1": {}}
    )
    http: bool = True
    unreachable: bool = False
    clients: int = 0

    def _proxy(self, name: str) -> dict[str, dict[str, Any]]:
        if self.unreachable:
            raise ToxiproxyError("toxiproxy is unreachable: Connection refused", status=0)
        if name not in self.toxics:
            raise ProxyNotFound("proxy not found", status=404)
        return self.toxics[name]

    def add_toxic(self, proxy: str, type: str, *, name: str, **settings: Any) -> None:
        if settings.get("lease") is None:
            settings.pop("lease", None)  # no fault lease running here: the plain API call
        toxics = self._proxy(proxy)
        if name in toxics:
            raise ProxyConflict("toxic already exists", status=409)
        toxics[name] = {"type": type, **settings}

    def remove_toxic(self, proxy: str, name: str) -> None:
        toxics = self._proxy(proxy)
        if name not in toxics:
            raise ProxyNotFound("toxic not found", status=404)
        del toxics[name]

    def supports_http_toxics(self) -> bool:
        return self.http


@pytest.fixture
def toxiproxy(monkeypatch: pytest.MonkeyPatch) -> FakeToxiproxy:
    fake = FakeToxiproxy()

    def client(url: str, timeout_s: float) -> FakeToxiproxy:
        assert url == TOXIPROXY
        fake.clients += 1
        return fake

    monkeypatch.setattr(http_toxic_module, "ToxiproxyClient", client)
    return fake


MATCH_DEFAULTS = {
    "method": "",
    "path_prefix": "",
    "path_glob": "",
    "header_name": "",
    "header_value": "",
    "exclude_paths": ["/healthz", "/readyz"],
    "percent": 100.0,
    "first": 0,
    "client_key": "",
}


def test_http_abort_adds_an_upstream_http_toxic_with_the_contracts_attributes(
    tmp_path: Path, toxiproxy: FakeToxiproxy, stack: LocalStack
) -> None:
    params = {
        "status": 429,
        "retry_after": "2s",
        "body": "slow down",
        "first": 3,
        "client_key": "Idempotency-Key",
        "method": "post",
        "path_prefix": "/checkout",
    }
    spec = one(tmp_path, {"action": "http-abort", "target": "edge", "params": params}, EXTERNAL)
    fault = build_fault(spec, stack, SERVICE)
    fault.inject()
    assert toxiproxy.toxics["edge"] == {
        "harness-f": {
            "type": "http",
            "stream": "upstream",
            "toxicity": 1.0,
            "attributes": {
                **MATCH_DEFAULTS,
                "action": "abort",
                "status": 429,
                "retry_after": 2.0,
                "body": "slow down",
                "first": 3,
                "client_key": "Idempotency-Key",
                "method": "POST",
                "path_prefix": "/checkout",
            },
        }
    }
    assert fault.describe() == (
        "HTTP 429 with Retry-After 2s for POST under /checkout, the first 3 per "
        "Idempotency-Key, not /healthz, /readyz at edge (http toxic harness-f)"
    )


def test_http_delay_holds_requests_or_answers_in_whole_milliseconds(
    tmp_path: Path, toxiproxy: FakeToxiproxy, stack: LocalStack
) -> None:
    params = {
        "delay": "250ms",
        "jitter": "50ms",
        "on": "response",
        "percent": 20,
        "header_name": "X-Canary",
        "path_glob": "/api/*",
    }
    spec = one(tmp_path, {"action": "http-delay", "target": "edge", "params": params}, EXTERNAL)
    build_fault(spec, stack, SERVICE).inject()
    attributes = toxiproxy.toxics["edge"]["harness-f"]["attributes"]
    assert attributes == {
        **MATCH_DEFAULTS,
        "action": "delay",
        "delay_ms": 250,
        "jitter_ms": 50,
        "delay_on": "response",
        "percent": 20.0,
        "header_name": "X-Canary",
        "path_glob": "/api/*",
    }


def test_an_http_toxic_survives_the_journal_and_reverts_idempotently(
    tmp_path: Path, toxiproxy: FakeToxiproxy, stack: LocalStack
) -> None:
    spec = one(
        tmp_path,
        {"action": "http-abort", "target": "edge", "params": {"exclude_paths": ["/up"]}},
        EXTERNAL,
    )
    fault = build_fault(spec, stack, SERVICE)
    record = json.loads(json.dumps(fault.to_record()))
    assert (record["kind"], record["target"], record["toxiproxy_url"]) == (
        "http-abort",
        "edge",
        TOXIPROXY,
    )
    again = fault_from_record(record)
    assert again == fault
    again.revert()  # never injected: nothing to do
    fault.inject()
    assert toxiproxy.toxics["edge"]["harness-f"]["attributes"]["exclude_paths"] == ["/up"]
    again.revert()
    again.revert()
    assert toxiproxy.toxics["edge"] == {}
    del toxiproxy.toxics["edge"]
    again.revert()  # the whole proxy is gone


def test_a_leftover_http_toxic_of_the_same_name_is_replaced(
    toxiproxy: FakeToxiproxy,
) -> None:
    toxiproxy.toxics["edge"]["harness-f"] = {"type": "latency"}
    AddHttpToxic("f", "http-abort", "edge", "harness-f", (("action", "abort"),), TOXIPROXY).inject()
    assert toxiproxy.toxics["edge"]["harness-f"]["type"] == "http"


def test_an_unreachable_toxiproxy_fails_the_revert_unless_the_stack_says_it_is_gone(
    toxiproxy: FakeToxiproxy,
) -> None:
    @dataclass
    class Stack:
        gone: bool

        def status(self) -> StackStatus:
            state = ProcessState.DEAD if self.gone else ProcessState.ALIVE
            here = Endpoint(HOST, 1)
            return StackStatus(
                Path("/s"), (ProcessStatus("tp", "toxiproxy", 1, state, True, here),)
            )

    toxiproxy.unreachable = True
    attrs = (("action", "abort"),)
    running = AddHttpToxic("f", "http-abort", "edge", "harness-f", attrs, TOXIPROXY, Stack(False))  # type: ignore[arg-type]
    with pytest.raises(ToxiproxyError, match="could not remove http toxic harness-f from edge"):
        running.revert()
    AddHttpToxic("f", "http-abort", "edge", "harness-f", attrs, TOXIPROXY, Stack(True)).revert()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("toxic", "message"),
    [
        ({"name": "t", "type": "latency", "attributes": {}}, "toxic: expected an http toxic"),
        ({"name": "t", "type": "http", "attributes": {"action": "nap"}}, "not an http toxic's"),
        (
            {"name": "t", "type": "http", "attributes": {"action": "abort", "shell": "x"}},
            "unknown attribute 'shell'",
        ),
    ],
)
def test_an_http_toxic_record_this_harness_cannot_read_is_refused(
    toxic: dict[str, Any], message: str
) -> None:
    record = {
        "v": 1,
        "kind": "http-abort",
        "name": "f",
        "target": "edge",
        "toxiproxy_url": TOXIPROXY,
        "toxic": toxic,
    }
    with pytest.raises(BadInputError, match=message):
        fault_from_record(record)


def test_a_journal_record_whose_toxiproxy_is_elsewhere_is_refused() -> None:
    fault = AddHttpToxic(
        "f", "http-abort", "edge", "harness-f", (("action", "abort"),), f"http://{ELSEWHERE}:8474"
    )
    with pytest.raises(TargetRefused, match="toxiproxy_url"):
        check_record(fault.to_record(), run_policy(()))


def test_http_faults_are_refused_before_any_load_on_a_toxiproxy_without_http_toxics(
    tmp_path: Path, toxiproxy: FakeToxiproxy
) -> None:
    faults = scenario(
        tmp_path,
        [
            {"name": "exec", "at": "1s", **EXEC},
            {"name": "burst", "at": "1s", "action": "http-abort", "target": "edge"},
        ],
        EXTERNAL,
    ).faults
    check_http_support(faults, SERVICE)
    toxiproxy.http = False
    with pytest.raises(BadInputError) as refused:
        check_http_support(faults, SERVICE)
    assert str(refused.value).startswith(
        'faults[1] ("burst"): http-abort needs the harness\'s own Toxiproxy (the real Toxiproxy '
        "has no HTTP toxics); "
    )
    asked = toxiproxy.clients
    check_http_support(faults[:1], SERVICE)  # nothing needs it: nothing is asked
    assert toxiproxy.clients == asked


# --- maintenance on a service that is not the sample shop ---------------------------------------


def maintenance(tmp_path: Path, **fields: Any) -> FaultModel:
    spec: FaultModel = one(tmp_path, {"action": "maintenance", **fields}, EXTERNAL)
    return spec


def test_maintenance_on_a_service_is_a_503_with_retry_after_at_its_edge(
    tmp_path: Path, toxiproxy: FakeToxiproxy, stack: LocalStack
) -> None:
    fault = build_fault(maintenance(tmp_path), stack, SERVICE)
    assert isinstance(fault, AddHttpToxic)
    assert (fault.kind, fault.target) == ("maintenance", "edge")
    fault.inject()
    attributes = toxiproxy.toxics["edge"]["harness-f"]["attributes"]
    assert attributes == {
        **MATCH_DEFAULTS,
        "action": "abort",
        "status": 503,
        "retry_after": 5.0,
        "body": "down for maintenance, retry later\n",
    }
    again = fault_from_record(json.loads(json.dumps(fault.to_record())))
    assert again == fault
    again.revert()
    assert toxiproxy.toxics["edge"] == {}


def test_maintenance_takes_the_scenarios_retry_after_and_another_proxy(
    tmp_path: Path, toxiproxy: FakeToxiproxy, stack: LocalStack
) -> None:
    spec = maintenance(tmp_path, target="lb-app-1", params={"retry_after": "30s", "body": "bye"})
    build_fault(spec, stack, SHOP).inject()  # a target: the edge fault, even on the shop
    attributes = toxiproxy.toxics["lb-app-1"]["harness-f"]["attributes"]
    assert (attributes["retry_after"], attributes["body"]) == (30.0, "bye")


def test_maintenance_on_the_sample_shop_keeps_its_admin_switch(
    tmp_path: Path, stack: LocalStack, toxiproxy: FakeToxiproxy
) -> None:
    spec = maintenance(tmp_path)
    assert type(build_fault(spec, stack, SHOP)) is MaintenanceMode
    check_http_support([spec], SHOP)
    assert toxiproxy.clients == 0  # the shop's own switch needs no http toxic
    with pytest.raises(BadInputError, match="SHOP_MAINTENANCE_RETRY_AFTER_S"):
        build_fault(maintenance(tmp_path, params={"retry_after": "9s"}), stack, SHOP)


def test_maintenance_on_a_service_without_an_edge_proxy_says_what_to_do(
    tmp_path: Path, stack: LocalStack
) -> None:
    bare = StackInfo(f"http://{HOST}:9000", TOXIPROXY, (), (), (), "")
    with pytest.raises(BadInputError) as refused:
        build_fault(maintenance(tmp_path), stack, bare)
    message = str(refused.value)
    assert message.startswith('fault "f": maintenance: this stack is not the sample shop')
    assert "stack.front_proxy: true" in message
    with pytest.raises(BadInputError, match=r"no proxy 'front' in the stack \(it has edge\)"):
        build_fault(maintenance(tmp_path, target="front"), stack, SERVICE)


def test_maintenance_at_the_edge_needs_the_harnesss_own_toxiproxy(
    tmp_path: Path, toxiproxy: FakeToxiproxy
) -> None:
    toxiproxy.http = False
    with pytest.raises(
        BadInputError, match=r'^faults\[0\] \("f"\): maintenance at a proxy \(an HTTP 503 there'
    ):
        check_http_support([maintenance(tmp_path)], SERVICE)


def test_a_scenario_calling_a_host_it_does_not_allow_is_refused_naming_the_url(
    tmp_path: Path, flag_env: None
) -> None:
    with pytest.raises(BadInputError, match=rf'faults\[0\]\.inject\.url: host "{ELSEWHERE}"'):
        http_fault(tmp_path, f"http://{ELSEWHERE}:9")
