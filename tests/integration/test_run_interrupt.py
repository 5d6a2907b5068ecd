"""Stopping `harness run` before its time: Ctrl-C and SIGTERM end it with 130 and every fault
reverted; a Locust master that dies is recorded as crashed and its faults rolled back by the CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from stack_support import RunningStack
from test_run_load import (
    PLAIN_USER,
    Target,
    children_of,
    events,
    finish,
    harness_env,
    no_harness_processes_left,
    the_run,
    write_scenario,
)

from harness.faults import Journal
from harness.load.launch import read_master_file
from harness.record import EventKind, RunDir, RunStatus
from harness.stack.base import ProcessState

pytestmark = pytest.mark.integration

SLOW_USER = """\
    from locust import constant, task

    from harness.load.users import RetryingHttpUser


    class Browse(RetryingHttpUser):
        wait_time = constant(0.05)

        @task
        def products(self):
            self.logical_request("GET", "/products")
    """

# Three faults of three families, all in force from 1 s until the run ends.
FAULTY_SCENARIO = """\
    load:
      locustfile: users.py
      phases: [{name: long, duration: 40s, users: 4, spawn_rate: 40}]
    faults:
      - {name: slow-db, action: toxic, target: app-db, at: 1s,
         params: {type: latency, latency: 50}}
      - {name: cut-app-2, action: down, target: lb-app-2, at: 1s}
      - {name: freeze-app-3, action: pause, target: app-3, at: 1s}
    """


def start_in_own_session(scenario: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`harness run` as a terminal runs it: in a process group of its own, so a "Ctrl-C" can go
    to the whole foreground group, as a terminal sends it."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), *args],
        cwd=scenario.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_events(
    reports: Path, kind: EventKind, count: int, process: subprocess.Popen[str]
) -> RunDir:
    deadline = time.monotonic() + 45
    while True:
        assert process.poll() is None, finish(process)
        if reports.is_dir() and any(reports.iterdir()):
            try:
                run = the_run(reports)
                if len(events(run, kind)) >= count:
                    return run
            except Exception:  # the store is being created: try again
                pass
        assert time.monotonic() < deadline, f"no {count} {kind} events in time"
        time.sleep(0.05)


def assert_stack_whole(stack: RunningStack) -> None:
    """No toxic, no proxy down, no instance paused, nothing pending in the fault journal."""
    info = stack.info
    proxies = httpx.get(f"{info.toxiproxy_url}/proxies", timeout=5, trust_env=False).json()
    assert {name: (p["enabled"], p["toxics"]) for name, p in proxies.items()} == {
        name: (True, []) for name in proxies
    }
    states = {p.name: p.state for p in stack.harness.stack().status().processes}
    assert all(state is ProcessState.ALIVE for state in states.values()), states
    assert Journal.in_state_dir(stack.harness.state_dir).pending() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_exits_130_with_every_fault_reverted(
    stack: RunningStack, tmp_path: Path, signum: signal.Signals
) -> None:
    scenario = write_scenario(tmp_path, users_py=SLOW_USER, body=FAULTY_SCENARIO)
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    process = start_in_own_session(scenario, "--reports", str(reports), env=env)
    children = children_of(process, 1)
    wait_for_events(reports, EventKind.FAULT_INJECTED, 3, process)
    signalled = time.time()
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # Ctrl-C at a terminal: the whole foreground group
    else:
        process.send_signal(signum)  # a supervisor stopping the harness
    out, err = finish(process, timeout_s=60)
    assert process.returncode == 130, f"{out}\n{err}"
    assert "run interrupted" in out
    no_harness_processes_left(children)
    assert_stack_whole(stack)

    run = the_run(reports)
    assert run.status is RunStatus.INTERRUPTED
    reverted = events(run, EventKind.FAULT_REVERTED)
    assert sorted(e.name for e in reverted) == ["cut-app-2", "freeze-app-3", "slow-db"]
    assert all(e.t >= signalled for e in reverted)
    (end,) = events(run, EventKind.RUN_END)
    assert end.detail["signal"] == signum
    assert end.t - signalled < 15
    (phase_end,) = events(run, EventKind.PHASE_END)
    assert phase_end.detail["cut_short"] is True


def test_ctrl_c_with_workers_stops_them_all_and_keeps_what_they_recorded(
    tmp_path: Path,
) -> None:
    target = Target()
    try:
        scenario = write_scenario(
            tmp_path,
            users_py=PLAIN_USER,
            entry_url=target.url,
            body="""\
            load:
              locustfile: users.py
              phases: [{name: long, duration: 60s, users: 4, spawn_rate: 40}]
            """,
        )
        reports = tmp_path / "reports"
        process = start_in_own_session(
            scenario, "--workers", "2", "--reports", str(reports), env=harness_env()
        )
        children = children_of(process, 3)
        wait_for_events(reports, EventKind.PHASE_START, 1, process)
        time.sleep(2.0)
        os.killpg(process.pid, signal.SIGINT)
        out, err = finish(process, timeout_s=60)
    finally:
        target.close()
    assert process.returncode == 130, f"{out}\n{err}"
    no_harness_processes_left(children)
    run = the_run(reports)
    assert run.status is RunStatus.INTERRUPTED
    totals = [e for e in events(run, EventKind.NOTE) if e.name == "worker_totals"]
    assert len(totals) == 2  # both workers made their final shipment before they left
    assert sum(e.detail["requests"] for e in totals) == sum(b.attempts for b in run.buckets())


def test_a_master_that_dies_is_recorded_as_crashed_and_its_faults_rolled_back(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario = write_scenario(tmp_path, users_py=SLOW_USER, body=FAULTY_SCENARIO)
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    process = start_in_own_session(scenario, "--reports", str(reports), env=env)
    run = wait_for_events(reports, EventKind.FAULT_INJECTED, 3, process)
    master = read_master_file(run.root)
    assert master is not None
    psutil.Process(master["pid"]).kill()
    out, err = finish(process, timeout_s=60)
    assert process.returncode == 3, f"{out}\n{err}"
    assert "run crashed" in out
    assert "rollback done: 3 fault(s) reverted" in err
    assert_stack_whole(stack)
    run = the_run(reports)
    assert run.status is RunStatus.CRASHED
    assert "signal 9" in events(run, EventKind.RUN_END)[0].detail["error"]
    rolled_back = [e for e in events(run, EventKind.FAULT_REVERTED) if e.detail.get("by")]
    assert sorted(e.name for e in rolled_back) == ["cut-app-2", "freeze-app-3", "slow-db"]
