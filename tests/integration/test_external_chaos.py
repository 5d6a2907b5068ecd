"""Chaos on a service the harness did not start: faults through the user's own Toxiproxy (the
embedded server and, in CI, the real one) and through the harness's front proxy, against a tiny
HTTP server of the test's own run as an external stack. Every fault is journaled, reverted on the
way out, and reverted by `harness rollback` after the whole run was killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import psutil
import pytest
from run_support import (
    Target,
    finish,
    harness_env,
    start_run,
    the_run,
    the_run_once_made,
    write_scenario,
)

from harness.faults import Journal
from harness.proxy.client import ToxiproxyClient
from harness.proxy.launcher import RunningToxiproxy, find_real_toxiproxy, running_toxiproxy
from harness.record import EventKind
from harness.stack.front_proxy import FrontProxy
from harness.stack.ports import free_ports

pytestmark = pytest.mark.integration

USERS = """\
    from locust import FastHttpUser, constant, task


    class Caller(FastHttpUser):
        wait_time = constant(0.05)
        connection_timeout = 1.0
        network_timeout = 1.0

        @task
        def index(self):
            self.client.get("/")
    """


@pytest.fixture(params=["embedded", "real"])
def users_toxiproxy(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    require_or_skip: Callable[[str, str], NoReturn],
) -> Iterator[RunningToxiproxy]:
    """The user's own Toxiproxy: a server the harness did not start (this test did)."""
    if request.param == "real" and find_real_toxiproxy() is None:
        require_or_skip("no real Toxiproxy server found", "HARNESS_REQUIRE_TOXIPROXY")
    with running_toxiproxy(kind=request.param, log_file=tmp_path / "toxiproxy.log") as running:
        yield running


def _scenario(tmp_path: Path, stack: str, fault_target: str) -> Path:
    """A 6 s run of two users, with the link ``fault_target`` down from 2 s to 4 s."""
    return write_scenario(
        tmp_path,
        users_py=USERS,
        body=f"""\
        stack: {stack}
        load:
          locustfile: users.py
          phases: [{{name: only, duration: 6s, users: 2, spawn_rate: 10}}]
        faults: [{{name: cut, action: down, target: {fault_target}, at: 2s, for: 2s}}]
        """,
    )


def _zero_statuses_in(run_root: Path, start: float, end: float) -> tuple[int, int]:
    """(responses with status 0, all responses) of the buckets in [start, end)."""
    run = the_run(run_root)
    zero = total = 0
    for bucket in run.buckets():
        t = bucket.idx / 10
        if start <= t < end:
            zero += bucket.statuses.get(0, 0)
            total += sum(bucket.statuses.values())
    return zero, total


def _fault_window(reports: Path) -> tuple[float, float]:
    run = the_run(reports)
    injected = [e.t for e in run.events() if e.kind is EventKind.FAULT_INJECTED]
    reverted = [e.t for e in run.events() if e.kind is EventKind.FAULT_REVERTED]
    assert len(injected) == 1, run.events()
    assert len(reverted) == 1, run.events()
    return injected[0], reverted[0]


def test_a_down_fault_through_the_users_own_toxiproxy_cuts_the_link_and_heals_it(
    tmp_path: Path, target: Target, users_toxiproxy: RunningToxiproxy
) -> None:
    client = ToxiproxyClient(users_toxiproxy.api_url)
    (port,) = free_ports(1)
    client.create_proxy("svc", f"127.0.0.1:{port}", f"127.0.0.1:{target.port}")
    stack = (
        f'{{kind: external, entry_url: "http://127.0.0.1:{port}", '
        f'toxiproxy_url: "{users_toxiproxy.api_url}"}}'
    )
    scenario = _scenario(tmp_path, stack, "svc")
    state = tmp_path / "state"
    reports = tmp_path / "reports"
    process = start_run(scenario, "--reports", str(reports), "--state-dir", str(state))
    _out, err = finish(process)
    assert process.returncode == 0, err
    injected, reverted = _fault_window(reports)
    zero, total = _zero_statuses_in(reports, injected + 0.3, reverted - 0.2)
    assert total
    assert zero == total, "every attempt while the link was down got no response"
    assert client.proxies()["svc"].enabled  # healed, on the user's own server
    assert not Journal.in_state_dir(state).pending()
    httpx.get(f"http://127.0.0.1:{port}/", timeout=5).raise_for_status()


def test_the_front_proxy_puts_edge_faults_in_front_of_any_http_service_and_goes_away(
    tmp_path: Path, target: Target
) -> None:
    scenario = _scenario(
        tmp_path, f'{{kind: external, entry_url: "{target.url}", front_proxy: true}}', "edge"
    )
    state = tmp_path / "state"
    reports = tmp_path / "reports"
    process = start_run(scenario, "--reports", str(reports), "--state-dir", str(state))
    _out, err = finish(process)
    assert process.returncode == 0, err
    assert "front proxy 'edge'" in err
    injected, reverted = _fault_window(reports)
    zero, total = _zero_statuses_in(reports, injected + 0.3, reverted - 0.2)
    assert total
    assert zero == total
    served_before, _ = _zero_statuses_in(reports, 0, injected - 0.2)
    assert served_before == 0  # before the fault every request went through the front proxy
    assert target.requests > 0
    assert FrontProxy(state).running() is None  # stopped with the run
    assert not (state / "front-proxy.json").exists()
    assert not Journal.in_state_dir(state).pending()


def _kill_run_mid_fault(process: subprocess.Popen[str], reports: Path, spare: set[int]) -> None:
    """Wait until the fault is in force, then SIGKILL `harness run` and every process it
    started but ``spare`` (a crash of the whole run: nothing of it reverts anything)."""
    deadline = time.monotonic() + 60
    while True:
        run = the_run_once_made(reports)
        if run is not None and any(e.kind is EventKind.FAULT_INJECTED for e in run.events()):
            break
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the fault was never injected"
        time.sleep(0.1)
    tree = [process.pid] + [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    for pid in tree:
        if pid not in spare:
            os.kill(pid, signal.SIGKILL)
    process.communicate()


def _rollback(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "rollback", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=harness_env(),
        timeout=60,
        check=False,
    )


def test_after_a_kill_9_mid_fault_rollback_heals_the_users_toxiproxy(
    tmp_path: Path, target: Target, users_toxiproxy: RunningToxiproxy
) -> None:
    client = ToxiproxyClient(users_toxiproxy.api_url)
    (port,) = free_ports(1)
    client.create_proxy("svc", f"127.0.0.1:{port}", f"127.0.0.1:{target.port}")
    stack = (
        f'{{kind: external, entry_url: "http://127.0.0.1:{port}", '
        f'toxiproxy_url: "{users_toxiproxy.api_url}"}}'
    )
    scenario = _scenario(tmp_path, stack, "svc")
    state, reports = tmp_path / "state", tmp_path / "reports"
    process = start_run(scenario, "--reports", str(reports), "--state-dir", str(state))
    _kill_run_mid_fault(process, reports, spare=set())
    assert not client.proxies()["svc"].enabled  # the crash left the link cut
    result = _rollback(state)
    assert result.returncode == 0, result.stderr
    assert "reverted: cut" in result.stdout
    assert client.proxies()["svc"].enabled
    assert not Journal.in_state_dir(state).pending()


def test_after_a_kill_9_mid_fault_rollback_heals_the_front_proxy(
    tmp_path: Path, target: Target
) -> None:
    scenario = _scenario(
        tmp_path, f'{{kind: external, entry_url: "{target.url}", front_proxy: true}}', "edge"
    )
    state, reports = tmp_path / "state", tmp_path / "reports"
    process = start_run(scenario, "--reports", str(reports), "--state-dir", str(state))
    try:
        deadline = time.monotonic() + 60
        while not (state / "front-proxy.json").exists():
            assert time.monotonic() < deadline, "no front proxy came up"
            time.sleep(0.05)
        record = json.loads((state / "front-proxy.json").read_text())
        _kill_run_mid_fault(process, reports, spare={int(record["pid"])})
        front = FrontProxy(state).running()
        assert front is not None  # it outlived the crash, with the fault in force
        edge = ToxiproxyClient(front.api_url)
        assert not edge.proxies()["edge"].enabled
        result = _rollback(state)
        assert result.returncode == 0, result.stderr
        assert edge.proxies()["edge"].enabled
        assert not Journal.in_state_dir(state).pending()
    finally:
        FrontProxy(state).stop()


def test_after_a_kill_9_mid_fault_rollback_runs_the_exec_faults_revert(
    tmp_path: Path, target: Target
) -> None:
    flag = tmp_path / "web-stopped.flag"
    scenario = write_scenario(
        tmp_path,
        users_py=USERS,
        body=f"""\
        stack: {{kind: external, entry_url: "{target.url}"}}
        load:
          locustfile: users.py
          phases: [{{name: only, duration: 6s, users: 2, spawn_rate: 10}}]
        faults:
          - name: cut
            action: exec
            at: 2s
            for: 2s
            inject: [touch, "{flag}"]
            revert: [rm, -f, "{flag}"]
        """,
    )
    state, reports = tmp_path / "state", tmp_path / "reports"
    process = start_run(scenario, "--reports", str(reports), "--state-dir", str(state))
    _kill_run_mid_fault(process, reports, spare=set())
    assert flag.exists()  # the crash left the fault in force
    result = _rollback(state)
    assert result.returncode == 0, result.stderr
    assert "reverted: cut" in result.stdout
    assert not flag.exists()
    assert not Journal.in_state_dir(state).pending()
