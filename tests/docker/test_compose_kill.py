"""Stop means stop, on the compose stack: `harness run` killed with ``kill -9`` mid-run, its
Locust master (left alone, its lifeline broken) stops the load at once and reverts its fault.

Runs before test_compose_stack.py (whose last test takes the session's project down) and leaves
the project as it found it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest
from compose_support import harness_env

from harness.record import EventKind, RunDir, RunStatus
from harness.stack.base import StackInfo
from harness.stack.compose import ComposeStack

pytestmark = pytest.mark.docker

WAIT_S = 150.0  # a condition's bound, not a timing
# Only the load asks for this path; the shop answers 404, which no health check ever gets.
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


def load_reaching(info: StackInfo) -> int:
    """The probe requests the project's instances have answered so far (their own counters,
    read from each container directly)."""
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


def toxics(info: StackInfo) -> dict[str, list[object]]:
    proxies = httpx.get(f"{info.toxiproxy_url}/proxies", timeout=5, trust_env=False).json()
    return {name: p["toxics"] for name, p in proxies.items() if p["toxics"]}


def test_kill_9_of_harness_run_stops_its_load_on_the_compose_stack(
    compose_stack: ComposeStack, compose_info: StackInfo, tmp_path: Path
) -> None:
    (tmp_path / "users.py").write_text(textwrap.dedent(PROBE_USER))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        textwrap.dedent(f"""\
        name: compose-kill
        stack:
          kind: compose
          compose_file: {json.dumps(str(compose_stack.config.compose_file))}
        load:
          locustfile: users.py
          workers: 0
          phases: [{{name: long, duration: 120s, users: 4, spawn_rate: 40}}]
        faults:
          - {{name: slow-db, action: db-throttle, at: 1s, params: {{latency: 40}}}}
        """)
    )
    reports = tmp_path / "reports"
    env = harness_env(
        HARNESS_RUN_PROJECT=compose_stack.project, HARNESS_STATE_DIR=str(tmp_path / "state")
    )
    with (tmp_path / "err.txt").open("w") as err:
        # A file, not a pipe: the master writes to it after `harness run` is gone.
        process = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", str(scenario), "--reports", str(reports)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + WAIT_S
        while not (toxics(compose_info) and load_reaching(compose_info) > 0):
            assert process.poll() is None, (tmp_path / "err.txt").read_text()
            assert time.monotonic() < deadline, "no fault and no load in time"
            time.sleep(0.2)
        children = psutil.Process(process.pid).children(recursive=True)
        assert children, "no Locust master"

        process.kill()  # `harness run` alone
        killed = time.monotonic()
        process.wait()
        time.sleep(max(0.0, killed + 2.0 - time.monotonic()))
        two_s_later = load_reaching(compose_info)
        time.sleep(2.0)
        assert load_reaching(compose_info) == two_s_later, "load still reaches the stack"

        _, alive = psutil.wait_procs(children, timeout=WAIT_S)
        assert alive == [], f"left running: {alive}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for child in children:
            if child.is_running():
                child.kill()
        if toxics(compose_info):
            httpx.post(f"{compose_info.toxiproxy_url}/reset", timeout=5, trust_env=False)
    assert toxics(compose_info) == {}, "the master did not revert its fault"
    (root,) = [p for p in reports.iterdir() if p.is_dir()]
    run = RunDir.open(root)
    assert run.status is RunStatus.INTERRUPTED
    reverted = [e.name for e in run.events() if e.kind is EventKind.FAULT_REVERTED]
    assert reverted == ["slow-db"]
