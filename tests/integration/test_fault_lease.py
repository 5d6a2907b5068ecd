"""A fault that cannot outlive its harness: `harness run` and its Locust master killed with
``kill -9`` in the middle of three faults (a latency toxic on the database link, an HTTP abort on
a backend's link, another backend's link cut), and no rollback at all, as when a CI runner dies
with its state directory. The embedded Toxiproxy lifts all three by itself once the lease runs
out, and the links carry traffic unfaulted again within the lease plus 2 s.

The master is stopped (SIGSTOP) before anything is killed, so nothing of the harness can revert
on its way out: what lifts the faults is the server's lease alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from run_support import start_in_own_session
from stack_support import RunningStack, own_stack
from test_run_interrupt import wait_for_events
from test_run_load import children_of, harness_env, write_scenario

from harness.faults import Journal
from harness.proxy.client import ToxiproxyClient
from harness.record import EventKind

pytestmark = pytest.mark.integration

LEASE_S = 6.0
# What the acceptance allows past the lease: the server's sweep (0.1 s) and a busy machine.
MARGIN_S = 2.0
DB_LATENCY_MS = 3000
USERS = """\
    from locust import FastHttpUser, constant_throughput, task


    class Steady(FastHttpUser):
        wait_time = constant_throughput(5)

        @task
        def products(self):
            self.client.get("/products")
    """


def postgres_answer_s(port: int) -> float:
    """Seconds until PostgreSQL answers an SSLRequest through the proxy: its one-byte answer
    crosses the downstream, where the latency toxic holds it."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack("!II", 8, 80877103))
        assert sock.recv(1) in (b"S", b"N")
    return time.monotonic() - started


def backend_status(port: int) -> int:
    """The status a request sent straight to a backend's link gets (the abort answers 503)."""
    return httpx.get(f"http://127.0.0.1:{port}/products", timeout=10, trust_env=False).status_code


def accepts(port: int) -> bool:
    """Whether the link listens (a ``down`` proxy refuses connections)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    """A stack on the embedded server whatever else is installed: leases are its extension
    (the session's stack runs the real Toxiproxy where one is found, as in CI)."""
    with own_stack("harness-it-lease-", toxiproxy="embedded") as running:
        yield running


def test_faults_of_a_run_killed_with_kill_9_lift_themselves_within_the_lease(
    stack: RunningStack, tmp_path: Path
) -> None:
    info = stack.info
    client = ToxiproxyClient(info.toxiproxy_url)
    assert client.supports_leases(), "the embedded Toxiproxy answers without leases"
    db_port = info.proxy("app-db").listen.port
    backend_port = info.proxy("lb-app-1").listen.port
    cut_port = info.proxy("lb-app-2").listen.port
    scenario = write_scenario(
        tmp_path,
        users_py=USERS,
        name="leased",
        body=f"""\
        load:
          locustfile: users.py
          phases: [{{name: steady, duration: 120s, users: 2, spawn_rate: 10}}]
        fault_lease: {LEASE_S:g}s
        faults:
          - {{name: slow-db, action: toxic, target: app-db, at: 0s,
             params: {{type: latency, latency: {DB_LATENCY_MS}}}}}
          - {{name: abort-1, action: http-abort, target: lb-app-1, at: 0s}}
          - {{name: cut-2, action: down, target: lb-app-2, at: 0s}}
        """,
    )
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    process = start_in_own_session(scenario, "--reports", str(reports), env=env)
    everything: list[int] = []
    try:
        (master,) = children_of(process, 1)
        wait_for_events(reports, EventKind.FAULT_INJECTED, 3, process)
        # Longer than the lease: only the master's renewals keep the faults in force.
        time.sleep(LEASE_S + MARGIN_S)
        assert process.poll() is None
        # All three in force, each on the run's lease.
        (lease,) = [each for each in client.leases() if each.toxics]
        assert "harness run leased" in lease.owner
        assert sorted(lease.toxics) == [
            ("app-db", "harness-slow-db"),
            ("lb-app-1", "harness-abort-1"),
        ]
        assert client.proxies()["lb-app-2"].enabled is False
        assert not accepts(cut_port)
        assert backend_status(backend_port) == 503
        assert postgres_answer_s(db_port) >= DB_LATENCY_MS / 1000

        everything += [master, *(c.pid for c in psutil.Process(master).children(recursive=True))]
        os.kill(master, signal.SIGSTOP)  # frozen first: nothing of the harness reverts now
        process.kill()
        os.kill(master, signal.SIGKILL)
        killed_at = time.monotonic()
        process.communicate(timeout=30)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(master).wait(timeout=30)

        # Still there just after the kill (the lease was renewed within the last second), so
        # what follows is the lease running out, not a revert.
        assert {p.name: len(p.toxics) for p in client.proxies().values()}["app-db"] == 1
        clean_at = None
        while clean_at is None:
            toxics = [t for p in client.proxies().values() for t in p.toxics]
            if (
                not toxics
                and accepts(cut_port)
                and backend_status(backend_port) == 200
                and postgres_answer_s(db_port) < DB_LATENCY_MS / 1000 / 3
            ):
                clean_at = time.monotonic()
            assert time.monotonic() - killed_at < LEASE_S + 30, f"still faulted: {toxics}"
            time.sleep(0.1)
        print(f"\nlink clean {clean_at - killed_at:.2f}s after kill -9 (lease {LEASE_S:g}s)")
        assert clean_at - killed_at <= LEASE_S + MARGIN_S
        # Nobody rolled back: the journal still holds the faults as in force.
        pending = Journal.in_state_dir(stack.harness.state_dir).pending()
        assert sorted(p.name for p in pending) == ["abort-1", "cut-2", "slow-db"]
        assert client.leases() == []
    finally:
        for pid in everything:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    # Tidy the journal for the tests that follow: there is nothing left to revert.
    rollback = stack.harness.run("rollback", "--state-dir", str(stack.harness.state_dir))
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
