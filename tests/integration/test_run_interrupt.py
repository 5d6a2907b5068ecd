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
from run_support import start_in_own_session, the_run_once_made
from stack_support import RunningStack, processes_alive
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
from harness.record import NAMES_META, EventKind, RunDir, RunStatus
from harness.stack.base import ProcessState, StackInfo

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


# Bounds on waits for a condition, not timings: on a loaded 2-core machine starting the master
# (importing Locust) alone can take tens of seconds.
CONDITION_TIMEOUT_S = 120.0


def wait_for_events(
    reports: Path, kind: EventKind, count: int, process: subprocess.Popen[str]
) -> RunDir:
    deadline = time.monotonic() + CONDITION_TIMEOUT_S
    while True:
        assert process.poll() is None, finish(process)
        run = the_run_once_made(reports)
        if run is not None and len(events(run, kind)) >= count:
            return run
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
    run = wait_for_events(reports, EventKind.FAULT_INJECTED, 3, process)
    # The master, once it has said it listens (the short-lived import probe is gone by then).
    children = children_of(process, 1, timeout_s=CONDITION_TIMEOUT_S)
    assert read_master_file(run.root) is not None
    signalled = time.time()
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # Ctrl-C at a terminal: the whole foreground group
    else:
        process.send_signal(signum)  # a supervisor stopping the harness
    out, err = finish(process, timeout_s=CONDITION_TIMEOUT_S)
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
    # The signal cut the run short (40 s of phases), however long the reverts took here.
    assert end.t - signalled < 30
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
        run = wait_for_events(reports, EventKind.PHASE_START, 1, process)
        children = children_of(process, 3, timeout_s=CONDITION_TIMEOUT_S)
        # Both workers have shipped requests (not a sleep: on a loaded machine it may be late).
        deadline = time.monotonic() + CONDITION_TIMEOUT_S
        while len(run.meta.get(NAMES_META) or {}) < 2:  # node -> its per-name totals
            assert process.poll() is None, finish(process)
            assert time.monotonic() < deadline, "the two workers shipped no requests in time"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)
        out, err = finish(process, timeout_s=CONDITION_TIMEOUT_S)
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
    out, err = finish(process, timeout_s=CONDITION_TIMEOUT_S)
    assert process.returncode == 3, f"{out}\n{err}"
    assert "run crashed" in out
    assert "rollback done: 3 fault(s) reverted" in err
    assert_stack_whole(stack)
    run = the_run(reports)
    assert run.status is RunStatus.CRASHED
    assert "signal 9" in events(run, EventKind.RUN_END)[0].detail["error"]
    rolled_back = [e for e in events(run, EventKind.FAULT_REVERTED) if e.detail.get("by")]
    assert sorted(e.name for e in rolled_back) == ["cut-app-2", "freeze-app-3", "slow-db"]


# Requests only the load sends: the shop answers them 404, which no health check ever gets, so
# the instances' own counters of 404s count the load that reaches the stack and nothing else.
PROBE_PATH = "/lifeline-probe"
PROBE_USER = f"""\
    from locust import HttpUser, constant, task


    class Probe(HttpUser):
        wait_time = constant(0.05)

        @task
        def probe(self):
            with self.client.get("{PROBE_PATH}", catch_response=True) as response:
                response.success()
    """

LONG_SCENARIO = """\
    load:
      locustfile: users.py
      phases: [{name: long, duration: 120s, users: 4, spawn_rate: 40}]
    faults:
      - {name: slow-db, action: toxic, target: app-db, at: 1s,
         params: {type: latency, latency: 50}}
    """


def load_reaching(info: StackInfo) -> int:
    """The probe requests the stack's instances have answered so far."""
    total = 0
    for instance in info.instances:
        stats = httpx.get(
            instance.endpoint.url("/admin/stats"),
            headers={"Authorization": f"Bearer {info.admin_token}"},
            timeout=5,
            trust_env=False,
        ).json()
        total += int(stats["requests_by_status"].get("404", 0))
    return total


@pytest.mark.parametrize("workers", [0, 2], ids=["master-only", "two-workers"])
def test_kill_9_of_harness_run_stops_its_load_and_reverts_its_faults(
    stack: RunningStack, tmp_path: Path, workers: int
) -> None:
    scenario = write_scenario(tmp_path, users_py=PROBE_USER, body=LONG_SCENARIO)
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    argv = [sys.executable, "-m", "harness", "run", str(scenario), "--reports", str(reports)]
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        # Files, not pipes: the orphans write to them after `harness run` is gone.
        process = subprocess.Popen(
            [*argv, "--workers", str(workers)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    info = stack.info
    children: list[int] = []
    try:
        deadline = time.monotonic() + CONDITION_TIMEOUT_S
        while True:
            assert process.poll() is None, (tmp_path / "err.txt").read_text()
            run = the_run_once_made(reports)
            injected = [] if run is None else events(run, EventKind.FAULT_INJECTED)
            if injected and load_reaching(info) > 0:
                break
            assert time.monotonic() < deadline, "no fault injected and no load in time"
            time.sleep(0.1)
        children = children_of(process, 1 + workers, timeout_s=CONDITION_TIMEOUT_S)
        before = load_reaching(info)

        process.kill()  # `harness run` alone: its master and workers are left to themselves
        killed = time.monotonic()
        process.wait()
        time.sleep(max(0.0, killed + 2.0 - time.monotonic()))
        two_s_later = load_reaching(info)
        time.sleep(2.0)
        assert load_reaching(info) == two_s_later, "load still reaches the stack 2 s after"
        assert two_s_later >= before

        # They leave once their faults are reverted and the end is recorded.
        deadline = time.monotonic() + CONDITION_TIMEOUT_S
        while processes_alive(children):
            assert time.monotonic() < deadline, f"left running: {processes_alive(children)}"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in processes_alive(children):
            os.kill(pid, signal.SIGKILL)
    assert_stack_whole(stack)
    run = the_run(reports)
    assert run.status is RunStatus.INTERRUPTED
    (end,) = events(run, EventKind.RUN_END)
    assert end.detail["signal"] == signal.SIGHUP
    assert "harness process that started the run died" in end.detail["orphaned"]
    assert [e.name for e in events(run, EventKind.FAULT_REVERTED)] == ["slow-db"]
    assert sum(b.attempts for b in run.buckets()) > 0  # what was recorded stays recorded
    assert not run.summary_json.exists()  # no report: the harness that writes it is gone
    # ... and `harness report` makes it from the record.
    rebuilt = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=CONDITION_TIMEOUT_S,
        check=False,
    )
    assert rebuilt.returncode == 130, f"{rebuilt.stdout}\n{rebuilt.stderr}"
    assert run.summary_json.exists()
