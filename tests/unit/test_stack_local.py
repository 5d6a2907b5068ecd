"""LocalStack's orchestration with stand-in processes: teardown on failure, reuse of a healthy
stack, cleanup of a stale one, and the instance primitives driven from a fresh object."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import BadInputError, StackError
from harness.stack import local, processes, topology
from harness.stack.base import Endpoint, ProcessState, Stack
from harness.stack.config import LocalStackConfig
from harness.stack.local import LocalStack
from harness.stack.ports import StackPorts
from harness.stack.processes import ProcessRecord, spawn, state_of
from harness.stack.readiness import http_ok
from harness.stack.state import StackState, StateDir

pytestmark = pytest.mark.unit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# Answers 200 to every GET: healthy as far as any probe of the stack is concerned.
SERVER = [
    sys.executable,
    "-c",
    "import http.server, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers()\n"
    "    def log_message(self, *args): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()",
]


def _config() -> LocalStackConfig:
    return LocalStackConfig(ports=StackPorts.free(instances=2), admin_token="token")


def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


class Spawner:
    """Starts stand-in processes and kills every one of them at the end of the test."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.records: list[ProcessRecord] = []

    def __call__(
        self, name: str, role: str, argv: list[str] = SLEEPER, port: int = 0
    ) -> ProcessRecord:
        record = spawn(
            name,
            role,
            argv,
            endpoint=Endpoint("127.0.0.1", port),
            log=self.logs / f"{name}.log",
        )
        self.records.append(record)
        return record

    def server(self, name: str, role: str, port: int) -> ProcessRecord:
        record = self(name, role, [*SERVER, str(port)], port)
        _until(lambda: http_ok(record.endpoint.url("/")))
        return record


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path / "logs")
    yield spawner
    for record in spawner.records:
        processes.send(record, signal.SIGKILL)
    processes.stop(spawner.records, grace_s=2.0)


def _save(state_dir: Path, config: LocalStackConfig, *records: ProcessRecord) -> None:
    StateDir(state_dir).save(StackState(config=config, processes=records))


def test_a_failed_start_stops_what_was_started_and_leaves_no_state(
    tmp_path: Path, spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ProcessRecord] = []

    def fake_postgres(self: LocalStack, endpoint: Endpoint, password: str) -> ProcessRecord:
        started.append(spawner("postgres", topology.DATABASE))
        return started[-1]

    def failing_toxiproxy(self: LocalStack, config: LocalStackConfig) -> ProcessRecord:
        raise StackError("toxiproxy: would not start")

    monkeypatch.setattr(LocalStack, "_start_postgres", fake_postgres)
    monkeypatch.setattr(LocalStack, "_start_toxiproxy", failing_toxiproxy)
    stack = LocalStack(tmp_path, _config())
    with pytest.raises(StackError, match="toxiproxy: would not start"):
        stack.up()
    assert state_of(started[0]) is ProcessState.DEAD
    assert StateDir(tmp_path).load() is None


def test_sigterm_during_start_unwinds_like_an_interrupt(
    tmp_path: Path, spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ProcessRecord] = []

    def fake_postgres(self: LocalStack, endpoint: Endpoint, password: str) -> ProcessRecord:
        started.append(spawner("postgres", topology.DATABASE))
        return started[-1]

    def terminated_meanwhile(self: LocalStack, config: LocalStackConfig) -> ProcessRecord:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the start")

    monkeypatch.setattr(LocalStack, "_start_postgres", fake_postgres)
    monkeypatch.setattr(LocalStack, "_start_toxiproxy", terminated_meanwhile)
    before = signal.getsignal(signal.SIGTERM)  # the test session's own (tests/conftest.py)
    with pytest.raises(KeyboardInterrupt):
        LocalStack(tmp_path, _config()).up()
    assert state_of(started[0]) is ProcessState.DEAD
    assert StateDir(tmp_path).load() is None
    assert signal.getsignal(signal.SIGTERM) is before


def test_up_leaves_a_healthy_stack_as_it_is(
    tmp_path: Path, spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config()
    app = spawner.server("app-1", topology.APP, config.ports.apps[0])
    _save(tmp_path, config, app)
    monkeypatch.setattr(LocalStack, "_start", _must_not_start)

    stack = LocalStack(tmp_path, LocalStackConfig(ports=config.ports))  # token made up
    info = stack.up()
    assert stack.reused
    assert info.admin_token == "token"
    assert state_of(app) is ProcessState.ALIVE


def test_up_refuses_to_replace_a_healthy_stack_with_other_settings(
    tmp_path: Path, spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config()
    app = spawner.server("app-1", topology.APP, config.ports.apps[0])
    _save(tmp_path, config, app)
    monkeypatch.setattr(LocalStack, "_start", _must_not_start)

    other = LocalStackConfig(ports=config.ports, app_env=(("SHOP_DB_TIMEOUT_MS", "1"),))
    with pytest.raises(StackError, match="other settings is already up"):
        LocalStack(tmp_path, other).up()
    assert state_of(app) is ProcessState.ALIVE


def test_up_tears_down_a_stale_stack_before_starting_anew(
    tmp_path: Path, spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config()
    survivor = spawner("app-1", topology.APP)  # alive but answers nothing: unhealthy
    dead = spawner("app-2", topology.APP)
    processes.stop([dead])
    _save(tmp_path, config, survivor, dead)
    calls: list[LocalStackConfig] = []
    monkeypatch.setattr(LocalStack, "_start", lambda self, cfg: calls.append(cfg))

    LocalStack(tmp_path, config).up()
    assert state_of(survivor) is ProcessState.DEAD
    # With a database password of its own, made up for the new stack.
    assert [replace(c, db_password="") for c in calls] == [config]
    assert len(calls[0].db_password) == 32


def test_down_stops_everything_and_can_be_repeated(tmp_path: Path, spawner: Spawner) -> None:
    config = _config()
    records = [spawner("postgres", topology.DATABASE), spawner("app-1", topology.APP)]
    _save(tmp_path, config, *records)
    LocalStack(tmp_path).down()
    assert all(state_of(r) is ProcessState.DEAD for r in records)
    assert StateDir(tmp_path).load() is None
    LocalStack(tmp_path).down()


def test_down_stops_a_process_of_the_stack_that_was_never_recorded(
    tmp_path: Path, spawner: Spawner
) -> None:
    # As left by a harness killed between starting a process and writing its PID down.
    orphan = spawn(
        "orphan",
        topology.APP,
        SLEEPER,
        endpoint=Endpoint("127.0.0.1", 0),
        log=tmp_path / "orphan.log",
        env={local.STACK_MARK: str(tmp_path.absolute())},
    )
    spawner.records.append(orphan)
    elsewhere = spawner("elsewhere", topology.APP)  # another stack's, or nobody's
    LocalStack(tmp_path).down()
    assert state_of(orphan) is ProcessState.DEAD
    assert state_of(elsewhere) is ProcessState.ALIVE


def test_down_layers_go_last_started_first_with_each_role_together(tmp_path: Path) -> None:
    def rec(name: str, role: str) -> ProcessRecord:
        return ProcessRecord(name, role, 1, 0.0, Endpoint("127.0.0.1", 1), tmp_path / "x")

    records = [
        rec("postgres", "database"),
        rec("toxiproxy", "toxiproxy"),
        rec("app-1", "app"),
        rec("app-2", "app"),
        rec("caddy", "entry"),
    ]
    layers = [[r.name for r in layer] for layer in processes.layers(records)]
    assert layers == [["caddy"], ["app-2", "app-1"], ["toxiproxy"], ["postgres"]]


def test_instance_primitives_work_from_a_new_stack_object(tmp_path: Path, spawner: Spawner) -> None:
    config = _config()
    apps = [spawner("app-1", topology.APP), spawner("app-2", topology.APP)]
    _save(tmp_path, config, *apps)

    LocalStack(tmp_path).pause("app-1")
    assert state_of(apps[0]) is ProcessState.PAUSED
    LocalStack(tmp_path).resume("app-1")
    assert state_of(apps[0]) is ProcessState.ALIVE
    LocalStack(tmp_path).kill("app-2")
    assert state_of(apps[1]) is ProcessState.DEAD
    LocalStack(tmp_path).kill("app-2")  # killing a dead instance is not an error
    with pytest.raises(StackError, match="cannot pause app-2: it is not running"):
        LocalStack(tmp_path).pause("app-2")


def test_instance_primitives_refuse_what_is_not_an_instance(
    tmp_path: Path, spawner: Spawner
) -> None:
    config = _config()
    _save(tmp_path, config, spawner("postgres", topology.DATABASE), spawner("app-1", topology.APP))
    with pytest.raises(BadInputError, match="unknown instance 'postgres'; the stack has app-1"):
        LocalStack(tmp_path).kill("postgres")


def test_instance_primitives_without_a_stack_say_so(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="no stack is up"):
        LocalStack(tmp_path).pause("app-1")


def test_status_of_no_stack_is_empty(tmp_path: Path) -> None:
    status = LocalStack(tmp_path).status()
    assert not status.exists
    assert not status.healthy


def test_info_describes_the_topology(tmp_path: Path) -> None:
    config = _config().with_token()
    info = topology.stack_info(config)
    ports = config.ports
    assert info.entry_url == f"http://127.0.0.1:{ports.entry}"
    assert info.toxiproxy_url == f"http://127.0.0.1:{ports.toxiproxy_api}"
    assert [i.name for i in info.instances] == ["app-1", "app-2"]
    app_2 = info.instance("app-2")
    assert app_2.endpoint.port == ports.apps[1]
    lb = info.proxy(app_2.proxy)
    assert (lb.name, lb.listen.port, lb.upstream.port) == (
        "lb-app-2",
        ports.lb_proxies[1],
        ports.apps[1],
    )
    db = info.proxy("app-db")
    assert (db.listen.port, db.upstream.port) == (ports.app_db_proxy, ports.postgres)
    password = config.db_password
    assert info.database_url == f"postgresql://shop:{password}@127.0.0.1:{ports.postgres}/shop"


def _must_not_start(self: LocalStack, config: LocalStackConfig) -> None:
    raise AssertionError("a new stack was started")


def test_local_stack_is_a_stack() -> None:
    assert isinstance(LocalStack(Path("unused")), Stack)


def test_the_package_exports_what_its_all_lists() -> None:
    import harness.stack

    assert sorted(harness.stack.__all__) == sorted(
        name for name in vars(harness.stack) if not name.startswith("_") and name[0].isupper()
    )
