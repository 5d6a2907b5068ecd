"""Helpers for the local-stack integration tests: running ``harness``, healing the stack
between tests, and checking what is left running."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import psutil
import pytest
import session_cleanup

from harness.stack.base import ProcessState, StackInfo
from harness.stack.local import LocalStack
from harness.stack.ports import StackPorts
from harness.stack.processes import log_tail
from harness.stack.state import StateDir

# The app's DB deadline for this session: short, so the fault tests stay quick.
DB_TIMEOUT_MS = 300
APP_ENV = {
    "SHOP_DB_TIMEOUT_MS": str(DB_TIMEOUT_MS),
    "SHOP_BREAKER_COOLDOWN_MS": "500",
    "SHOP_MAINTENANCE_RETRY_AFTER_S": "5",
}
HEAL_TIMEOUT_S = 20.0


def port_env(ports: StackPorts) -> dict[str, str]:
    """``harness up`` settings through the environment, as CI would set them."""
    return {
        "HARNESS_UP_ENTRY_PORT": str(ports.entry),
        "HARNESS_UP_TOXIPROXY_PORT": str(ports.toxiproxy_api),
        "HARNESS_UP_POSTGRES_PORT": str(ports.postgres),
        "HARNESS_UP_APP_DB_PROXY_PORT": str(ports.app_db_proxy),
        "HARNESS_UP_APP_PORTS": ",".join(map(str, ports.apps)),
        "HARNESS_UP_LB_PROXY_PORTS": ",".join(map(str, ports.lb_proxies)),
        "HARNESS_UP_CADDY_ADMIN_PORT": str(ports.caddy_admin),
        "HARNESS_UP_APP_ENV": " ".join(f"{k}={v}" for k, v in APP_ENV.items()),
    }


@dataclass
class Harness:
    """Runs the ``harness`` command against one state directory with one set of ports."""

    state_dir: Path
    ports: StackPorts = field(default_factory=StackPorts.free)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "SHOP_"))}
        self.env = {**clean, **port_env(self.ports), "HARNESS_STATE_DIR": str(self.state_dir)}

    def run(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def up(self) -> float:
        """``harness up``; the seconds until the shop answered through Caddy."""
        started = time.monotonic()
        result = self.run("up")
        assert result.returncode == 0, f"harness up failed:\n{result.stdout}\n{result.stderr}"
        answered = httpx.get(f"{self.entry_url}/products", timeout=5, trust_env=False)
        assert answered.status_code == 200
        return time.monotonic() - started

    def down(self) -> None:
        result = self.run("down")
        assert result.returncode == 0, f"harness down failed:\n{result.stdout}\n{result.stderr}"

    def stack(self) -> LocalStack:
        """A new LocalStack on the state directory, as a fault injector would make one."""
        return LocalStack(self.state_dir)

    @property
    def entry_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.entry}"

    @property
    def all_ports(self) -> list[int]:
        return [port for port, _ in self.ports.wanted()]


@dataclass
class RunningStack:
    harness: Harness
    cold_up_s: float

    @property
    def info(self) -> StackInfo:
        return self.harness.stack().info()


def new_state_dir(prefix: str) -> Path:
    # Not tmp_path_factory: pytest keeps its base directory private (0700), and when the tests run
    # as root PostgreSQL runs as an unprivileged user that must reach its data directory.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    # Recorded before anything starts in it: a session killed from here on is swept by the next.
    record = session_cleanup.current()
    if record is not None:
        record.add_state_dir(path)
    return path


def record_stack_pids(state_dir: Path) -> None:
    """The PIDs of the stack up in ``state_dir``, in the session's record (swept by PID and
    create time should the session be killed)."""
    record = session_cleanup.current()
    if record is not None:
        pids = [p.pid for p in LocalStack(state_dir).status().processes if p.pid]
        record.add_pids(pids + started_for(state_dir))


def stop_everything_started(state_dir: Path) -> None:
    """Last resort after a test: nothing started for ``state_dir`` may outlive the session,
    even when ``down`` is broken. Kills by the environment our ``harness up`` handed on, not by
    what the stack recorded."""
    with contextlib.suppress(Exception):  # whatever down thinks, the sweep below decides
        LocalStack(state_dir).down()
    for pid in started_for(state_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def own_stack(
    prefix: str, app_env: Mapping[str, str] | None = None, *, toxiproxy: str = "auto"
) -> Iterator[RunningStack]:
    """A stack of its own, up for the block, whose shop runs with ``app_env`` on top of the
    session's settings (a shop made to misbehave, or tuned for one scenario), on the
    ``toxiproxy`` server asked for (``harness up --toxiproxy``)."""
    state_dir = new_state_dir(prefix)
    harness = Harness(state_dir)
    harness.env["HARNESS_UP_TOXIPROXY"] = toxiproxy
    harness.env["HARNESS_UP_APP_ENV"] += "".join(f" {k}={v}" for k, v in (app_env or {}).items())
    try:
        cold_up_s = harness.up()
        record_stack_pids(state_dir)
        yield RunningStack(harness, cold_up_s=cold_up_s)
    finally:
        try:
            harness.down()
        finally:
            stop_everything_started(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)
            record = session_cleanup.current()
            if record is not None:
                record.forget_state_dir(state_dir)


def heal(running: RunningStack) -> None:
    harness, info = running.harness, running.info
    stack = harness.stack()
    httpx.post(f"{info.toxiproxy_url}/reset", timeout=5, trust_env=False).raise_for_status()
    dead = []
    for process in stack.status().processes:
        if process.role != "app":
            assert process.state is ProcessState.ALIVE, (
                f"{process.name} (pid {process.pid}) is {process.state}; its log ends:\n"
                f"{log_tail(StateDir(harness.state_dir).log(process.name), 40)}"
            )
        elif process.state is ProcessState.PAUSED:
            stack.resume(process.name)
        elif process.state is ProcessState.DEAD:
            dead.append(process.name)
    with ThreadPoolExecutor() as pool:  # restarts wait for the instance: overlap the waits
        list(pool.map(partial(in_another_process, harness.state_dir, "restart"), dead))
    maintenance(info, enabled=False)
    wait_until(lambda: stack.status().healthy, HEAL_TIMEOUT_S, "the stack to be healthy")
    wait_until(
        lambda: instances_seen_through_entry(info) == {i.name for i in info.instances},
        HEAL_TIMEOUT_S,
        "Caddy to route to every instance",
    )


def instances_seen_through_entry(info: StackInfo, requests: int = 12) -> set[str]:
    seen = set()
    with httpx.Client(base_url=info.entry_url, timeout=2, trust_env=False) as client:
        for _ in range(requests):
            response = client.get("/products")
            if response.status_code == 200:
                seen.add(response.headers["X-Shop-Instance"])
    return seen


def maintenance(info: StackInfo, *, enabled: bool) -> None:
    response = httpx.post(
        info.instances[0].endpoint.url("/admin/maintenance"),
        json={"enabled": enabled},
        headers={"Authorization": f"Bearer {info.admin_token}"},
        timeout=5,
        trust_env=False,
    )
    response.raise_for_status()


def in_another_process(state_dir: Path, primitive: str, instance: str) -> None:
    """Call a LocalStack instance primitive from a short-lived process of its own, as a fault
    injector in another process would (and so a restarted instance is not our child)."""
    code = (
        "import sys; from harness.stack.local import LocalStack; "
        "getattr(LocalStack(sys.argv[1]), sys.argv[2])(sys.argv[3])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(state_dir), primitive, instance],
        # Handed on to what it starts, so stop_everything_started finds that too.
        env={**os.environ, "HARNESS_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{primitive} {instance} failed:\n{result.stderr}"


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``condition``; return the seconds it took, fail naming ``what`` on timeout."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def processes_alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie holds no port and no memory: it is gone)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def started_for(state_dir: Path) -> list[int]:
    """PIDs of running processes started for ``state_dir``: they inherited ``HARNESS_STATE_DIR``
    from the ``harness up`` our ``Harness`` ran, whether or not the stack recorded them."""
    found = []
    for process in psutil.process_iter(["pid", "environ", "status"]):
        environ = process.info["environ"] or {}
        if (
            environ.get("HARNESS_STATE_DIR") == str(state_dir)
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process.info["pid"])
    return found


def listening(ports: list[int]) -> list[int]:
    """Those of ``ports`` something listens on, on any address."""
    taken = {
        c.laddr.port
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr
    }
    return [port for port in ports if port in taken]
