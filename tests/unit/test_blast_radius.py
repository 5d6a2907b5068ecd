"""The blast radius: by default load and faults reach loopback and the stack the harness started,
nothing else; another host needs allow_targets, --allow-target or $HARNESS_ALLOW_TARGETS. What
listens binds 127.0.0.1 by default, and no scenario value ever reaches a shell.

Nothing here sends a packet off the machine: refused connections are refused before the socket
connects, and where a test needs an allowed remote connection to be attempted, the lowest layer
(``socket.connect``) is a recorder that refuses it in its turn.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from harness.cli import cli, main
from harness.errors import BadInputError
from harness.faults import Journal
from harness.faults.maintenance import MaintenanceMode
from harness.faults.targets import check_record
from harness.faults.toxic import AddToxics, ToxicSpec
from harness.load.launch import MasterArgs, WorkerArgs
from harness.proxy.client import ToxiproxyClient
from harness.proxy.launcher import free_port, running_toxiproxy
from harness.run import preflight
from harness.run.preflight import resolve_scenario
from harness.run.request import ScenarioOverrides
from harness.safety import (
    ALLOW_TARGETS_ENV,
    TargetPolicy,
    TargetRefused,
    check_dsn,
    dsn_hosts,
    hosts_from_env,
    normalize_host,
)
from harness.scenario import load_scenario
from harness.stack.base import Endpoint
from harness.stack.config import LocalStackConfig
from harness.stack.processes import spawn

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.

ROOT = Path(__file__).resolve().parents[2]
# Documentation ranges (RFC 5737): nobody's server, and nothing here connects to them anyway.
ELSEWHERE = "192.0.2.10"
ELSEWHERE_TOO = "198.51.100.7"


# --- the policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST.", "a.localhost"]
)
def test_loopback_is_allowed_without_asking(host: str) -> None:
    assert TargetPolicy().permits(host)


@pytest.mark.parametrize(
    "host", [ELSEWHERE, "10.0.0.1", "0.0.0.0", "example.com", "localhost.example.com", "::"]
)
def test_every_other_host_is_refused_by_default(host: str) -> None:
    assert not TargetPolicy().permits(host)


def test_an_allowed_host_is_allowed_however_it_is_spelled() -> None:
    policy = TargetPolicy.of(["Staging.Example.com.", "2001:db8::1"])
    assert policy.permits("staging.example.com")
    assert policy.permits("STAGING.example.com.")
    assert policy.permits("2001:0db8:0:0:0:0:0:1")
    assert not policy.permits("prod.example.com")


def test_a_refused_url_names_the_host_and_how_to_allow_it_on_one_line() -> None:
    with pytest.raises(TargetRefused) as refused:
        TargetPolicy().check_url(f"http://{ELSEWHERE}:8080/x", "stack.entry_url")
    message = str(refused.value)
    assert message.startswith(f'stack.entry_url: host "{ELSEWHERE}" is not loopback')
    assert f"--allow-target {ELSEWHERE}" in message
    assert ALLOW_TARGETS_ENV in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "value",
    ["http://staging.example.com", "staging.example.com:8080", "; rm -rf /", "$(id)", "`id`", ""],
)
def test_an_allowed_host_must_be_a_host_name_or_address(value: str) -> None:
    with pytest.raises(BadInputError) as bad:
        normalize_host(value, "--allow-target")
    assert str(bad.value).startswith("--allow-target: expected a host name")
    assert repr(value) in str(bad.value)


def test_the_environment_variable_takes_several_hosts() -> None:
    env = {ALLOW_TARGETS_ENV: " a.example.com,b.example.com  10.1.2.3 ,"}
    assert hosts_from_env(env) == ("a.example.com", "b.example.com", "10.1.2.3")


# --- scenarios and the command line -------------------------------------------------------------


def _external(tmp_path: Path, **extra: Any) -> Path:
    (tmp_path / "users.py").write_text("from locust import HttpUser\n")
    scenario = {
        "name": "away",
        "stack": {"kind": "external", "entry_url": f"http://{ELSEWHERE}:8080"},
        "load": {
            "locustfile": "users.py",
            "phases": [{"name": "p", "duration": "5s", "users": 1, "spawn_rate": 1}],
        },
        **extra,
    }
    path = tmp_path / "away.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_a_run_aimed_at_a_host_nobody_allowed_stops_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_TARGETS_ENV, raising=False)
    reports = tmp_path / "reports"
    code = main(["run", str(_external(tmp_path)), "--reports", str(reports)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "stack.entry_url" in err
    assert f'host "{ELSEWHERE}" is not loopback' in err
    assert not reports.exists()  # no run directory: nothing started


def test_allow_target_and_its_variable_reach_the_run_and_the_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[ScenarioOverrides] = []

    def fake_resolve(path: Path, overrides: ScenarioOverrides) -> Any:
        asked.append(overrides)
        raise BadInputError("stop here")  # nothing is run: the request is what is checked

    monkeypatch.setattr(preflight, "resolve_scenario", fake_resolve)
    monkeypatch.setenv(ALLOW_TARGETS_ENV, f"{ELSEWHERE},staging.example.com")
    path = _external(tmp_path)
    assert main(["run", str(path), "--allow-target", ELSEWHERE_TOO]) == 2
    assert asked[-1].allow_targets == (ELSEWHERE_TOO,)  # the flag wins over the variable
    assert main(["run", str(path)]) == 2
    assert asked[-1].allow_targets == (ELSEWHERE, "staging.example.com")
    monkeypatch.setattr(preflight, "resolve_scenario", resolve_scenario)
    scenario = resolve_scenario(path, asked[-1])  # the scenario names no allowed host itself
    assert scenario.allow_targets == (ELSEWHERE, "staging.example.com")
    with pytest.raises(BadInputError, match=f'host "{ELSEWHERE}" is not loopback'):
        resolve_scenario(path, ScenarioOverrides(allow_targets=(ELSEWHERE_TOO,)))


def test_a_scenarios_own_allow_targets_are_kept_beside_the_flags(tmp_path: Path) -> None:
    path = _external(tmp_path, allow_targets=[ELSEWHERE])
    scenario = load_scenario(path, allow_targets=["staging.example.com", ELSEWHERE])
    assert scenario.allow_targets == (ELSEWHERE, "staging.example.com")
    with pytest.raises(BadInputError, match=r"stack\.toxiproxy_url"):
        load_scenario(
            _external(
                tmp_path,
                allow_targets=[ELSEWHERE],
                stack={
                    "kind": "external",
                    "entry_url": f"http://{ELSEWHERE}",
                    "toxiproxy_url": f"http://{ELSEWHERE_TOO}:8474",
                },
            )
        )


@pytest.mark.parametrize(
    ("dsn", "hosts"),
    [
        ("postgresql://u:p@db.example.com:5432/shop", ("db.example.com",)),
        ("postgres://u@[::1]:5432/x", ("::1",)),
        ("postgresql://a:1,b:2/db", ("a", "b")),
        ("postgresql://u@/db?host=10.0.0.1", ("10.0.0.1",)),
        ("postgresql:///shop?host=/run/postgresql", ()),
    ],
)
def test_the_hosts_a_database_uri_connects_to(dsn: str, hosts: tuple[str, ...]) -> None:
    assert dsn_hosts(dsn) == hosts


def test_a_post_run_checks_database_must_be_loopback_or_allowed(tmp_path: Path) -> None:
    check = {"name": "orders", "sql": "SELECT 1", "dsn": f"postgresql://u@{ELSEWHERE_TOO}/db"}
    with pytest.raises(BadInputError) as refused:  # the entry (ELSEWHERE) is allowed, not the DB
        load_scenario(_external(tmp_path, allow_targets=[ELSEWHERE], checks=[check]))
    assert f'checks[0].dsn: host "{ELSEWHERE_TOO}" is not loopback' in str(refused.value)
    both = [ELSEWHERE, ELSEWHERE_TOO]
    allowed = load_scenario(_external(tmp_path, allow_targets=both, checks=[check]))
    assert allowed.checks[0].dsn == check["dsn"]
    with pytest.raises(TargetRefused, match=ELSEWHERE_TOO):
        check_dsn(check["dsn"], TargetPolicy(), "checks[0].dsn")  # once ${VAR} is expanded


@pytest.mark.parametrize("command", ["run", "gameday", "rollback"])
def test_every_command_that_sends_load_or_faults_takes_allow_target(command: str) -> None:
    option = next(p for p in cli.commands[command].params if p.name == "allow_targets")
    assert option.multiple
    assert option.envvar == ALLOW_TARGETS_ENV


def test_a_bad_allow_target_is_one_line_of_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(_external(tmp_path)), "--allow-target", "http://x.example.com"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        "harness: --allow-target: expected a host name like staging.example.com or an IP "
        "address, got 'http://x.example.com'"
    )


# --- a crafted fault journal --------------------------------------------------------------------


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connect of this process to a non-loopback address, refused before it is made."""
    import socket

    seen: list[tuple[str, int]] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not TargetPolicy().permits(str(address[0])):
            seen.append((str(address[0]), int(address[1])))
            raise ConnectionRefusedError(111, "refused by the test")
        original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.fixture(scope="module")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("toxiproxy") / "server.log"
    with running_toxiproxy(kind="embedded", log_file=log) as server:
        yield server.api_url


def _journal_crafted_run(state_dir: Path, api: str) -> None:
    """One genuine fault in force on a real server, and two records pointing elsewhere."""
    client = ToxiproxyClient(api)
    client.create_proxy("app-db", "127.0.0.1:0", f"127.0.0.1:{free_port()}")
    spec = ToxicSpec("harness-slow", "latency", attributes=(("latency", 100),))
    genuine = AddToxics("slow", "app-db", (spec,), api)
    genuine.inject()
    away = AddToxics("away", "app-db", (spec,), f"http://{ELSEWHERE}:8474")
    token = MaintenanceMode("leak", (f"http://{ELSEWHERE_TOO}/admin/maintenance",), "s3cret-token")
    with Journal.in_state_dir(state_dir) as journal:
        for fault in (genuine, away, token):
            journal.injected(journal.journaled(fault), fault)


@pytest.mark.integration  # a real proxy server
def test_rollback_refuses_records_naming_other_hosts_and_still_reverts_the_rest(
    tmp_path: Path,
    toxiproxy: str,
    connections: list[tuple[str, int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ALLOW_TARGETS_ENV, raising=False)
    state_dir = tmp_path / "state"
    _journal_crafted_run(state_dir, toxiproxy)
    try:
        code = main(["rollback", "--state-dir", str(state_dir)])
        out = capsys.readouterr().out
        assert code == 3  # something is left: the refused records stay in the journal
        assert connections == []  # not one connection attempt to another host
        assert "reverted: slow:" in out
        assert "NOT reverted: away: toxic fault, line 3 of the journal" in out
        assert f'host "{ELSEWHERE}" is not loopback' in out
        assert f'admin_urls: host "{ELSEWHERE_TOO}" is not loopback' in out
        assert ToxiproxyClient(toxiproxy).toxics("app-db") == []  # the genuine one is reverted
        # Allowed on the command line, the record is acted on (the recorder refuses the connect).
        main(["rollback", "--state-dir", str(state_dir), "--allow-target", ELSEWHERE])
        assert (ELSEWHERE, 8474) in connections
        assert all(host != ELSEWHERE_TOO for host, _ in connections)
    finally:
        ToxiproxyClient(toxiproxy).reset()
        ToxiproxyClient(toxiproxy).delete_proxy("app-db")


def test_a_record_without_urls_elsewhere_passes_the_check() -> None:
    record = AddToxics("slow", "app-db", (), "http://127.0.0.1:8474").to_record()
    check_record(record, TargetPolicy())
    with pytest.raises(TargetRefused, match="healthz_url"):
        check_record({"name": "k", "healthz_url": f"http://{ELSEWHERE}/healthz"}, TargetPolicy())


# --- the Locust processes -----------------------------------------------------------------------

_GUARDED = """
import locust  # gevent's patches first, as in the harness's master and worker
import json, socket, sys
from harness.safety import TargetPolicy, guard_sockets

recorded = []
original = socket.socket.connect
def recorder(self, address):  # stands in for the network: records, connects only to loopback
    if isinstance(address, tuple) and not address[0].startswith("127."):
        recorded.append(address[0])
        raise ConnectionRefusedError(111, "refused by the recorder")
    return original(self, address)
socket.socket.connect = recorder

guard_sockets(TargetPolicy.of(sys.argv[2:]), warn=lambda line: None)
out = {}
import requests
out["loopback"] = requests.get(sys.argv[1], timeout=5).status_code
from locust.clients import HttpSession
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
env = Environment()
session = HttpSession(base_url=sys.argv[1], request_event=env.events.request, user=None)
out["locust"] = repr(session.get("http://{elsewhere}/buy").error)
fast = FastHttpSession(base_url=sys.argv[1], request_event=env.events.request, user=None)
out["fasthttp"] = repr(fast.get("http://{elsewhere}/buy").error)
try:
    socket.create_connection(("{elsewhere}", 80), timeout=2)
except OSError as exc:
    out["socket"] = repr(exc)
out["recorded"] = recorded
print(json.dumps(out))
""".replace("{elsewhere}", ELSEWHERE)


@pytest.fixture
def loopback_server() -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port := free_port())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT / "harness",
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 10
        while not any(
            c.laddr.port == port for c in psutil.Process(server.pid).net_connections("tcp")
        ):
            assert time.monotonic() < deadline, "the loopback server did not listen"
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _guarded(url: str, *allowed: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _GUARDED, url, *allowed],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.integration  # Locust and a server
def test_a_locust_process_connects_to_loopback_and_refuses_any_other_host(
    loopback_server: str,
) -> None:
    out = _guarded(loopback_server)
    assert out["loopback"] == 200
    for client in ("locust", "fasthttp", "socket"):
        assert f"connection to {ELSEWHERE} refused: not loopback" in out[client], client
    assert out["recorded"] == []  # refused before the socket even tried


@pytest.mark.integration  # Locust and a server
def test_a_locust_process_connects_to_a_host_it_was_allowed(loopback_server: str) -> None:
    out = _guarded(loopback_server, ELSEWHERE)
    assert out["loopback"] == 200
    assert out["recorded"] == [ELSEWHERE] * 3  # each client got as far as the network
    assert "not loopback" not in out["socket"]


# --- what listens -------------------------------------------------------------------------------


@pytest.mark.integration  # a real proxy server
def test_the_embedded_proxy_and_its_proxies_bind_loopback_by_default(toxiproxy: str) -> None:
    client = ToxiproxyClient(toxiproxy)
    try:
        client.create_proxy("no-host", f":{free_port()}", "127.0.0.1:1")
        client.create_proxy("no-listen", "", "127.0.0.1:1")
        assert {p.listen.rsplit(":", 1)[0] for p in client.proxies().values()} == {"127.0.0.1"}
        port = int(toxiproxy.rsplit(":", 1)[1])
        server = next(
            p
            for p in psutil.process_iter()
            if any(c.laddr.port == port and c.status == "LISTEN" for c in _listening(p))
        )
        hosts = {c.laddr.ip for c in _listening(server) if c.status == "LISTEN"}
        assert hosts == {"127.0.0.1"}
    finally:
        client.delete_proxy("no-host")
        client.delete_proxy("no-listen")


def _listening(process: psutil.Process) -> list[Any]:
    try:
        return list(process.net_connections("tcp"))
    except psutil.Error:
        return []


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (("proxy", "serve"), "host"),
        (("run",), "master_bind"),
        (("gameday",), "web_host"),
    ],
)
def test_every_address_the_harness_listens_on_defaults_to_loopback(
    command: tuple[str, ...], option: str
) -> None:
    group: Any = cli
    for name in command:
        group = group.commands[name]
    params = {p.name: p for p in group.params}
    assert params[option].default == "127.0.0.1"


def test_the_local_stack_and_the_locust_master_bind_loopback_by_default() -> None:
    assert LocalStackConfig().ports.host == "127.0.0.1"  # shop (and its admin API), Caddy, DB
    assert MasterArgs(run_dir=Path("r"), host="http://127.0.0.1:8080").bind_host == "127.0.0.1"


def test_the_compose_stack_publishes_its_ports_on_loopback_only() -> None:
    document = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    published = {
        name: [str(p) if isinstance(p, str | int) else json.dumps(p) for p in service["ports"]]
        for name, service in document["services"].items()
        if service.get("ports")
    }
    assert {"caddy", "toxiproxy"} <= set(published)  # the entry and the Toxiproxy API
    assert {
        n: ps for n, ps in published.items() if any(not p.startswith("127.0.0.1:") for p in ps)
    } == {}


# --- no shell -----------------------------------------------------------------------------------

_PROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output", "execv", "execvp"}


def test_no_harness_module_runs_a_shell_or_a_command_string() -> None:
    problems = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            attribute = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            owner = func.value.id if attribute else ""  # type: ignore[union-attr]
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if any(k.arg == "shell" for k in node.keywords):
                problems.append(f"{where}: shell=")
            if owner == "os" and name in ("system", "popen"):
                problems.append(f"{where}: os.{name}")
            if owner == "subprocess" and name in ("getoutput", "getstatusoutput"):
                problems.append(f"{where}: subprocess.{name}")
            stringly = node.args and isinstance(
                node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp
            )
            if owner in ("subprocess", "os") and name in _PROCESS_CALLS and stringly:
                problems.append(f"{where}: a command string")
    assert problems == []


PAYLOADS = ["x; touch {canary}", "$(touch {canary})", "`touch {canary}`", "x && touch {canary}"]


def _scenario_with(tmp_path: Path, where: str, value: str) -> dict[str, Any]:
    (tmp_path / "users.py").write_text("from locust import HttpUser\n")
    fault = {"name": "kill", "action": "kill", "target": "app-1", "at": "1s", "for": "1s"}
    data: dict[str, Any] = {
        "name": "meta",
        "description": "ok",
        "stack": {"kind": "local", "env": {"SHOP_X": "ok"}},
        "load": {
            "locustfile": "users.py",
            "user_classes": ["HttpUser"],
            "phases": [{"name": "p", "duration": "5s", "users": 1, "spawn_rate": 1}],
        },
        "faults": [fault],
        "slos": [{"name": "s", "expr": "count(status == 500) == 0"}],
    }
    if where == "name":
        data["name"] = value
    elif where == "phase":
        data["load"]["phases"][0]["name"] = value
    elif where == "fault name":
        fault["name"] = value
    elif where == "fault target":
        fault["target"] = value
    elif where == "user class":
        data["load"]["user_classes"] = [value]
    elif where == "allow target":
        data["allow_targets"] = [value]
    elif where == "env name":
        data["stack"]["env"] = {value: "1"}
    return data


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(
    "where",
    [
        "name",
        "phase",
        "fault name",
        "fault target",
        "user class",
        "allow target",
        "env name",
    ],
)
def test_shell_metacharacters_in_names_and_targets_are_refused_with_one_line(
    tmp_path: Path, where: str, payload: str
) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "meta.yaml"
    value = payload.format(canary=canary)
    path.write_text(yaml.safe_dump(_scenario_with(tmp_path, where, value)))
    with pytest.raises(BadInputError) as bad:
        load_scenario(path)
    assert len(str(bad.value).splitlines()) == 1
    assert str(bad.value).startswith(f"{path}: ")
    assert not canary.exists()


@pytest.mark.integration  # processes
def test_values_that_may_hold_anything_reach_processes_as_inert_argv_and_env(
    tmp_path: Path,
) -> None:
    """Env values and the locustfile's path are free text: they must arrive verbatim, as one
    argument or one variable, never through a shell."""
    canary = tmp_path / "canary"
    payload = PAYLOADS[1].format(canary=canary) + PAYLOADS[2].format(canary=canary)
    odd_dir = tmp_path / PAYLOADS[0].format(canary="c").replace("/", "_")
    odd_dir.mkdir()
    loaded = tmp_path / "loaded"
    (odd_dir / "users.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from locust import HttpUser, task
            Path({str(loaded)!r}).write_text(__file__)
            class U(HttpUser):
                @task
                def t(self) -> None:
                    pass
            """
        )
    )
    data = _scenario_with(tmp_path, "", "")
    data["stack"]["env"] = {"SHOP_X": payload}
    data["description"] = payload
    data["slos"][0]["name"] = payload  # a display name: reports escape it, nothing runs it
    data["load"]["locustfile"] = str(odd_dir / "users.py")
    data["load"]["user_classes"] = ["U"]
    path = tmp_path / "meta.yaml"
    path.write_text(yaml.safe_dump(data))
    scenario = load_scenario(path)  # free text is accepted, as it should be
    assert dict(scenario.stack.env)["SHOP_X"] == payload

    # The env of a stack process, started the way the local stack starts the shop.
    echo = [sys.executable, "-c", "import os, sys; sys.stdout.write(os.environ['SHOP_X'])"]
    log = tmp_path / "env.log"
    record = spawn(
        "app-x",
        "app",
        echo,
        endpoint=Endpoint("127.0.0.1", 1),
        log=log,
        env=dict(scenario.stack.env),
    )
    psutil.Process(record.pid).wait(timeout=30)
    assert log.read_text() == payload

    # A Locust worker given the locustfile by path: it imports exactly that file.
    worker = WorkerArgs("127.0.0.1", free_port(), scenario.load.locustfile)
    process = subprocess.Popen(
        worker.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_clean_env()
    )
    try:
        deadline = time.monotonic() + 30
        while not loaded.exists() and process.poll() is None:
            assert time.monotonic() < deadline, "the worker never imported the locustfile"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert loaded.read_text() == str(odd_dir / "users.py")
    assert not canary.exists()
    assert not (tmp_path / "c").exists()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
