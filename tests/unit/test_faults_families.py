"""Each fault family against fakes: what inject does, and reverts that are idempotent, act only on
what their own fault did, and treat a stack that is gone as clean."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.errors import (
    InfrastructureError,
    ProxyConflict,
    ProxyNotFound,
    StackError,
    ToxiproxyError,
)
from harness.faults import toxic as toxic_module
from harness.faults.database import ThrottleDatabase, throttle_toxics
from harness.faults.maintenance import MaintenanceMode
from harness.faults.process import KillInstance, PauseInstance, RestartInstance
from harness.faults.toxic import AddToxics, DisableProxy, ToxicSpec
from harness.stack import Endpoint, ProcessState, ProcessStatus, StackInfo, StackStatus

pytestmark = pytest.mark.unit

ALIVE, PAUSED, DEAD = ProcessState.ALIVE, ProcessState.PAUSED, ProcessState.DEAD


# --- fakes --------------------------------------------------------------------------------------


@dataclass
class FakeStack:
    """Instance states as the kernel would report them; every primitive call logged."""

    states: dict[str, ProcessState] = field(default_factory=lambda: {"app-1": ALIVE})
    toxiproxy: ProcessState = ALIVE
    gone: bool = False
    calls: list[str] = field(default_factory=list)

    def status(self) -> StackStatus:
        if self.gone:
            return StackStatus(Path("/state"), ())
        here = Endpoint("127.0.0.1", 1)
        rows = [ProcessStatus(n, "app", 1, s, s is ALIVE, here) for n, s in self.states.items()]
        rows.append(ProcessStatus("toxiproxy", "toxiproxy", 2, self.toxiproxy, True, here))
        return StackStatus(Path("/state"), tuple(rows))

    def kill(self, instance: str) -> None:
        self.calls.append(f"kill {instance}")
        self.states[instance] = DEAD

    def pause(self, instance: str) -> None:
        self.calls.append(f"pause {instance}")
        if self.states[instance] is DEAD:
            raise StackError(f"cannot pause {instance}: it is not running")
        self.states[instance] = PAUSED

    def resume(self, instance: str) -> None:
        self.calls.append(f"resume {instance}")
        self.states[instance] = ALIVE

    def restart(self, instance: str) -> None:
        self.calls.append(f"restart {instance}")
        self.states[instance] = ALIVE

    def up(self) -> StackInfo:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def info(self) -> StackInfo:
        raise NotImplementedError


@dataclass
class Shop:
    """A stand-in instance on a real socket: /healthz, and the admin API's maintenance switch."""

    url: str = ""
    healthz: int = 200
    admin: int = 200
    admin_first: list[int] = field(default_factory=list)  # answered before `admin`, in turn
    switches: list[tuple[bool, str]] = field(default_factory=list)


@pytest.fixture
def shop() -> Iterator[Shop]:
    state = Shop()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(state.healthz if self.path == "/healthz" else 404)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.switches.append((body["enabled"], self.headers.get("Authorization", "")))
            self._answer(state.admin_first.pop(0) if state.admin_first else state.admin)

        def _answer(self, status: int) -> None:
            data = b'{"detail": "scripted"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class FakeToxiproxy:
    """The API as ToxiproxyClient presents it, with the same exceptions."""

    proxies: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            p: {"enabled": True, "toxics": {}} for p in ("app-db", "lb-app-1", "lb-app-2")
        }
    )
    unreachable: bool = False
    refuse_removal: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def _proxy(self, name: str) -> dict[str, Any]:
        if self.unreachable:
            raise ToxiproxyError("toxiproxy is unreachable: Connection refused", status=0)
        if name not in self.proxies:
            raise ProxyNotFound("proxy not found", status=404)
        return self.proxies[name]

    def add_toxic(self, proxy: str, type: str, *, name: str, **settings: Any) -> None:
        if settings.get("lease") is None:
            settings.pop("lease", None)  # no fault lease running here: the plain API call
        self.calls.append(f"add {proxy}/{name}")
        toxics = self._proxy(proxy)["toxics"]
        if name in toxics:
            raise ProxyConflict("toxic already exists", status=409)
        toxics[name] = {"type": type, **settings}

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(f"remove {proxy}/{name}")
        toxics = self._proxy(proxy)["toxics"]
        if name in self.refuse_removal:
            raise ToxiproxyError("internal error", status=500)
        if name not in toxics:
            raise ProxyNotFound("toxic not found", status=404)
        del toxics[name]

    def disable(self, proxy: str, lease: str | None = None) -> None:
        self.calls.append(f"disable {proxy}")
        self._proxy(proxy)["enabled"] = False

    def enable(self, proxy: str) -> None:
        self.calls.append(f"enable {proxy}")
        self._proxy(proxy)["enabled"] = True


@pytest.fixture
def toxiproxy(monkeypatch: pytest.MonkeyPatch) -> FakeToxiproxy:
    fake = FakeToxiproxy()
    monkeypatch.setattr(toxic_module, "ToxiproxyClient", lambda url, timeout_s: fake)
    return fake


# --- kill, pause, restart ---------------------------------------------------------------------


def test_kill_is_reverted_by_a_restart_that_waits_for_healthz(shop: Shop) -> None:
    stack = FakeStack()
    kill = KillInstance("k", "app-1", stack, f"{shop.url}/healthz")
    kill.inject()
    assert stack.states["app-1"] is DEAD
    kill.revert()
    assert stack.calls == ["kill app-1", "restart app-1"]
    assert stack.states["app-1"] is ALIVE


def test_kill_revert_is_a_no_op_when_the_instance_runs_again(shop: Shop) -> None:
    stack = FakeStack()
    kill = KillInstance("k", "app-1", stack, f"{shop.url}/healthz")
    kill.revert()  # never injected
    kill.inject()
    kill.revert()
    kill.revert()  # twice
    assert stack.calls == ["kill app-1", "restart app-1"]


def test_kill_revert_fails_when_the_restarted_instance_never_answers(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.faults import process

    monkeypatch.setattr(process, "HEALTHY_TIMEOUT_S", 0.2)
    shop.healthz = 503
    stack = FakeStack(states={"app-1": DEAD})
    with pytest.raises(StackError, match="did not answer 200"):
        KillInstance("k", "app-1", stack, f"{shop.url}/healthz").revert()


def test_instance_faults_have_nothing_to_revert_when_the_stack_is_gone() -> None:
    stack = FakeStack(gone=True)
    for fault in (
        KillInstance("k", "app-1", stack, closed_port_url()),
        PauseInstance("p", "app-1", stack, closed_port_url()),
        RestartInstance("r", "app-1", stack, closed_port_url()),
    ):
        fault.revert()
    assert stack.calls == []


def test_pause_revert_resumes_only_a_paused_instance() -> None:
    stack = FakeStack(states={"app-1": ALIVE, "app-2": DEAD})
    pause = PauseInstance("p", "app-1", stack, closed_port_url())
    pause.revert()
    pause.inject()
    pause.revert()
    pause.revert()
    # Dead is another fault's doing (or a crash's): a pause's revert does not restart it.
    PauseInstance("p2", "app-2", stack, closed_port_url()).revert()
    assert stack.calls == ["pause app-1", "resume app-1"]
    assert stack.states == {"app-1": ALIVE, "app-2": DEAD}


def test_restart_is_self_healing_and_its_revert_only_starts_a_dead_instance(shop: Shop) -> None:
    stack = FakeStack()
    restart = RestartInstance("r", "app-1", stack, f"{shop.url}/healthz")
    assert restart.self_healing
    restart.inject()
    restart.revert()
    assert stack.calls == ["restart app-1"]
    stack.states["app-1"] = DEAD  # a restart interrupted between its stop and its start
    restart.revert()
    assert stack.calls == ["restart app-1", "restart app-1"]


def test_an_instance_the_stack_no_longer_has_is_an_error() -> None:
    stack = FakeStack(states={"app-2": PAUSED})
    with pytest.raises(StackError, match="no instance 'app-1'"):
        PauseInstance("p", "app-1", stack, closed_port_url()).revert()


# --- toxics and proxies -------------------------------------------------------------------------


def latency(name: str = "harness-slow") -> ToxicSpec:
    return ToxicSpec(name, "latency", attributes=(("latency", 800), ("jitter", 50)))


def test_a_toxic_is_added_under_its_deterministic_name(toxiproxy: FakeToxiproxy) -> None:
    AddToxics("slow", "app-db", (latency(),), "http://tp").inject()
    assert toxiproxy.proxies["app-db"]["toxics"] == {
        "harness-slow": {
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 800, "jitter": 50},
        }
    }


def test_toxic_revert_is_idempotent_and_tolerates_a_proxy_that_is_gone(
    toxiproxy: FakeToxiproxy,
) -> None:
    fault = AddToxics("slow", "app-db", (latency(),), "http://tp")
    fault.revert()  # never injected
    fault.inject()
    fault.revert()
    fault.revert()
    assert toxiproxy.proxies["app-db"]["toxics"] == {}
    del toxiproxy.proxies["app-db"]
    fault.revert()


def test_a_leftover_toxic_of_the_same_name_is_replaced(toxiproxy: FakeToxiproxy) -> None:
    toxiproxy.proxies["app-db"]["toxics"]["harness-slow"] = {"type": "bandwidth"}
    AddToxics("slow", "app-db", (latency(),), "http://tp").inject()
    assert toxiproxy.proxies["app-db"]["toxics"]["harness-slow"]["type"] == "latency"


def test_an_unreachable_toxiproxy_fails_the_revert_while_the_stack_runs(
    toxiproxy: FakeToxiproxy,
) -> None:
    toxiproxy.unreachable = True
    fault = AddToxics("slow", "app-db", (latency(),), "http://tp", FakeStack())
    with pytest.raises(ToxiproxyError, match="Connection refused"):
        fault.revert()
    with pytest.raises(ToxiproxyError):
        DisableProxy("cut", "lb-app-1", "http://tp", FakeStack()).revert()


@pytest.mark.parametrize(
    "stack",
    [FakeStack(gone=True), FakeStack(toxiproxy=DEAD)],
    ids=["stack-down", "toxiproxy-dead"],
)
def test_an_unreachable_toxiproxy_the_stack_says_is_gone_has_nothing_to_revert(
    toxiproxy: FakeToxiproxy, stack: FakeStack
) -> None:
    toxiproxy.unreachable = True
    AddToxics("slow", "app-db", (latency(),), "http://tp", stack).revert()
    DisableProxy("cut", "lb-app-1", "http://tp", stack).revert()


def test_down_disables_the_proxy_and_revert_enables_it(toxiproxy: FakeToxiproxy) -> None:
    down = DisableProxy("cut", "lb-app-2", "http://tp")
    down.inject()
    assert toxiproxy.proxies["lb-app-2"]["enabled"] is False
    down.revert()
    down.revert()
    assert toxiproxy.proxies["lb-app-2"]["enabled"] is True
    DisableProxy("cut", "no-such-proxy", "http://tp").revert()  # nothing disabled, nothing to do


def test_db_throttle_slows_answers_and_squeezes_both_streams(toxiproxy: FakeToxiproxy) -> None:
    toxics = throttle_toxics("db", latency=800, jitter=50, rate=40)
    fault = ThrottleDatabase("db", "app-db", toxics, "http://tp")
    fault.inject()
    added = toxiproxy.proxies["app-db"]["toxics"]
    assert {name: (t["type"], t["stream"]) for name, t in added.items()} == {
        "harness-db-latency": ("latency", "downstream"),
        "harness-db-rate-upstream": ("bandwidth", "upstream"),
        "harness-db-rate-downstream": ("bandwidth", "downstream"),
    }
    assert (
        fault.describe()
        == "slow database link app-db: latency 800±50 ms on its answers, 40 KB/s each way"
    )
    fault.revert()
    assert added == {}


def test_db_throttle_revert_tries_every_toxic_even_when_one_removal_fails(
    toxiproxy: FakeToxiproxy,
) -> None:
    fault = ThrottleDatabase(
        "db", "app-db", throttle_toxics("db", latency=100, jitter=None, rate=10), "http://tp"
    )
    fault.inject()
    toxiproxy.refuse_removal = {"harness-db-latency"}
    with pytest.raises(ToxiproxyError, match="harness-db-latency: internal error"):
        fault.revert()
    assert list(toxiproxy.proxies["app-db"]["toxics"]) == ["harness-db-latency"]


def test_db_throttle_with_only_a_rate_adds_no_latency() -> None:
    assert [t.type for t in throttle_toxics("db", latency=None, jitter=None, rate=5)] == [
        "bandwidth",
        "bandwidth",
    ]


# --- maintenance --------------------------------------------------------------------------------


def test_maintenance_tries_each_instance_until_one_answers(shop: Shop) -> None:
    urls = (f"{closed_port_url()}/admin/maintenance", f"{shop.url}/admin/maintenance")
    fault = MaintenanceMode("m", urls, "tok")
    fault.inject()
    fault.revert()
    fault.revert()
    assert shop.switches == [(True, "Bearer tok"), (False, "Bearer tok"), (False, "Bearer tok")]


def test_maintenance_revert_fails_naming_each_answer_when_no_instance_takes_it(shop: Shop) -> None:
    shop.admin = 401
    dead = closed_port_url()
    fault = MaintenanceMode(
        "m", (f"{dead}/admin/maintenance", f"{shop.url}/admin/maintenance"), "x"
    )
    with pytest.raises(InfrastructureError) as raised:
        fault.revert()
    message = str(raised.value)
    assert message.startswith("maintenance off: no instance took the switch")
    assert f"{dead}/admin/maintenance: no answer" in message
    assert f"{shop.url}/admin/maintenance: 401" in message


def test_maintenance_waits_out_a_database_that_is_coming_back(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.faults import maintenance

    monkeypatch.setattr(maintenance, "ROUND_INTERVAL_S", 0.01)
    shop.admin_first = [503, 503]  # a breaker still cooling down after a database fault
    MaintenanceMode("m", (f"{shop.url}/admin/maintenance",), "tok").revert()
    assert shop.switches == [(False, "Bearer tok")] * 3


def test_maintenance_gives_up_on_a_database_that_stays_away(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.faults import maintenance

    monkeypatch.setattr(maintenance, "ROUND_INTERVAL_S", 0.01)
    monkeypatch.setattr(maintenance, "PATIENCE_S", 0.1)
    shop.admin = 503
    with pytest.raises(InfrastructureError, match="503"):
        MaintenanceMode("m", (f"{shop.url}/admin/maintenance",), "tok").revert()
    assert len(shop.switches) > 2


def test_maintenance_revert_has_nothing_to_do_when_the_stack_is_gone() -> None:
    fault = MaintenanceMode("m", (closed_port_url(),), "tok", FakeStack(gone=True))
    fault.revert()


def test_maintenance_revert_with_every_instance_dead_fails_while_the_stack_is_up() -> None:
    fault = MaintenanceMode("m", (closed_port_url(),), "tok", FakeStack(states={"app-1": DEAD}))
    with pytest.raises(InfrastructureError, match="no instance took the switch"):
        fault.revert()


def test_the_admin_token_stays_out_of_the_fault_repr() -> None:
    assert "s3cret" not in repr(MaintenanceMode("m", ("http://x",), "s3cret"))
