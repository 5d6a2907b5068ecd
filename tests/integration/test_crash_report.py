"""Nothing lost: a run whose harness and Locust master are SIGKILLed in the middle keeps what it
recorded up to the kill, `harness report` builds its reports from that, marked incomplete, and
`harness rollback` then leaves no fault behind.

The load is fixed (4 users at 10 requests/s each, the shop answering in milliseconds), so the
number of requests the store must hold for the seconds before the kill is known.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest
from run_support import start_in_own_session
from stack_support import RunningStack
from test_run_interrupt import assert_stack_whole, wait_for_events
from test_run_load import children_of, events, harness_env, write_scenario

from harness.faults import Journal
from harness.record import EventKind, RunStatus

pytestmark = pytest.mark.integration

USERS, PER_USER_RPS = 4, 10.0
STEADY_USERS = f"""\
    from locust import FastHttpUser, constant_throughput, task


    class Steady(FastHttpUser):
        wait_time = constant_throughput({PER_USER_RPS})

        @task
        def products(self):
            self.client.get("/products")
    """
LOAD_BEFORE_KILL_S = 5.0
# The local runner ships its buckets to the store once a second: at most that much (and the
# request in flight) is lost with the process; a margin for a loaded machine.
SHIPPING_LAG_S = 2.0


def test_a_run_killed_mid_way_keeps_its_record_and_reports_it_incomplete_then_rollback_cleans(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=STEADY_USERS,
        name="crash",
        body=f"""\
        load:
          locustfile: users.py
          phases: [{{name: steady, duration: 60s, users: {USERS}, spawn_rate: 40}}]
        faults:
          - {{name: slow-db, action: toxic, target: app-db, at: 0s,
             params: {{type: latency, latency: 5}}}}
        """,
    )
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    process = start_in_own_session(scenario, "--reports", str(reports), env=env)
    (master,) = children_of(process, 1)
    run = wait_for_events(reports, EventKind.FAULT_INJECTED, 1, process)
    t0 = run.meta["load_started_at"]
    time.sleep(max(0.0, t0 + LOAD_BEFORE_KILL_S - time.time()))
    killed_at = time.time()
    os.kill(master, signal.SIGSTOP)  # frozen first: its broken lifeline cannot make it clean up
    process.kill()  # then the harness, so nothing of it can clean up or write the end
    os.kill(master, signal.SIGKILL)
    process.communicate(timeout=30)
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(master).wait(timeout=30)

    # What was recorded up to the kill is there, second by second.
    assert run.status is RunStatus.CRASHED  # "running", with no writer left
    assert events(run, EventKind.RUN_END) == []
    buckets = run.buckets()
    attempts = sum(b.attempts for b in buckets)
    recorded = killed_at - SHIPPING_LAG_S - t0
    assert attempts >= 0.7 * USERS * PER_USER_RPS * recorded, (attempts, recorded)
    seconds = {b.idx // 10 for b in buckets}
    wanted = set(range(int(t0) + 1, int(killed_at - SHIPPING_LAG_S)))
    assert wanted - seconds == set(), f"seconds with nothing recorded: {wanted - seconds}"
    assert max(b.idx for b in buckets) / 10 >= killed_at - SHIPPING_LAG_S

    harness = stack.harness
    report = harness.run("report", str(run.root))
    assert report.returncode == 3, report.stdout + report.stderr
    assert "INCOMPLETE" in report.stdout
    assert "Traceback" not in report.stderr

    summary = json.loads((run.root / "summary.json").read_text())
    assert (summary["status"], summary["outcome"], summary["exit_code"]) == (
        "crashed",
        "INCOMPLETE",
        3,
    )
    assert summary["passed"] is False
    assert summary["ended_at"] is None
    assert summary["totals"]["attempts"] == attempts
    (fault,) = summary["faults"]
    assert (fault["name"], fault["reverted"]) == ("slow-db", False)  # in force at the crash
    html = (run.root / "report.html").read_text()
    assert '<p class="banner incomplete">INCOMPLETE' in html
    assert "(status: crashed)" in html
    assert "The run recorded no end" in html  # and until when it recorded, and what to do
    (case,) = [
        c
        for c in ET.parse(run.root / "junit.xml").getroot().iter("testcase")
        if c.get("name") == "run completed"
    ]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "INCOMPLETE"

    # The killed run left its fault in force; rollback takes it away.
    assert [p.name for p in Journal.in_state_dir(harness.state_dir).pending()] == ["slow-db"]
    rollback = harness.run("rollback", "--state-dir", str(harness.state_dir))
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert "reverted: slow-db:" in rollback.stdout
    assert_stack_whole(stack)
