"""`harness run` against the compose stack: a real subprocess on the session's compose project
(named through ``HARNESS_RUN_PROJECT``), its faults going through the Docker SDK and the
project's Toxiproxy, and a rollback after the run was killed mid-fault.

These run before test_compose_stack.py (whose last test takes the project down) and leave the
project as they found it: healthy, every instance running, no toxic.
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

from harness.rundir import EventKind, RunDir
from harness.stack.base import ProcessState, StackInfo
from harness.stack.compose import ComposeStack

pytestmark = pytest.mark.docker

LOCUSTFILE = Path(__file__).resolve().parents[2] / "scenarios" / "shop_locustfile.py"
RUN_TIMEOUT_S = 120.0
SLOS = ("no-500s", "warmup-answers")


def _scenario(tmp_path: Path, stack: ComposeStack, *, faults: str) -> Path:
    """A 20 s scenario on the compose stack with ``faults`` (YAML list items, unindented)."""
    head = f"""\
        name: compose-run
        stack:
          kind: compose
          compose_file: {json.dumps(str(stack.config.compose_file))}
          env: {{SHOP_DB_TIMEOUT_MS: "300"}}   # as the session project runs
        load:
          locustfile: {json.dumps(str(LOCUSTFILE))}
          user_classes: [ShopUser]
          workers: 0
          phases:
            - {{name: warmup, duration: 6s, users: 8, spawn_rate: 8}}
            - {{name: spike, duration: 8s, users: 15, spawn_rate: 15}}
            - {{name: cooldown, duration: 6s, users: 8, spawn_rate: 15}}
        slos:
          - {{name: no-500s, expr: "count(status == 500) == 0"}}
          - {{name: warmup-answers, expr: "availability >= 50% during phase warmup"}}
        faults:
        """
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(head) + textwrap.indent(textwrap.dedent(faults), "  "))
    return path


def _env(stack: ComposeStack, state_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "LOCUST_"))}
    return {**clean, "HARNESS_RUN_PROJECT": stack.project, "HARNESS_STATE_DIR": str(state_dir)}


def _start(scenario: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), *args],
        cwd=scenario.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"harness run did not end within {RUN_TIMEOUT_S:.0f}s:\n{out}\n{err}")


def _instance_state(stack: ComposeStack, name: str) -> ProcessState:
    for process in stack.status().processes:
        if process.name == name:
            return process.state
    raise AssertionError(f"{name} is not in the status")


def _toxics(info: StackInfo) -> dict[str, list[object]]:
    proxies = httpx.get(f"{info.toxiproxy_url}/proxies", timeout=5, trust_env=False).json()
    return {name: p["toxics"] for name, p in proxies.items() if p["toxics"]}


def _wait_healthy(stack: ComposeStack, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not stack.status().healthy:
        assert time.monotonic() < deadline, stack.status()
        time.sleep(0.5)


def _run_dir(reports: Path) -> RunDir:
    (root,) = reports.iterdir()
    return RunDir.open(root)


def test_run_with_faults_on_the_compose_stack(
    compose_stack: ComposeStack, compose_info: StackInfo, tmp_path: Path
) -> None:
    scenario = _scenario(
        tmp_path,
        compose_stack,
        faults="""\
        - {name: kill-app-1, action: kill, target: app-1, at: 7s, for: 4s}
        - {name: slow-db, action: db-throttle, at: 11s, for: 4s, params: {latency: 40}}
        """,
    )
    reports = tmp_path / "reports"
    process = _start(scenario, _env(compose_stack, tmp_path / "state"), "--reports", str(reports))
    out, err = _finish(process)
    assert process.returncode in (0, 1), f"{out}\n{err}"
    assert f"using the compose project {compose_stack.project!r} already up" in err

    run = _run_dir(reports)
    summary = json.loads(run.summary_json.read_text())
    slos = {slo["name"]: slo for slo in summary["slos"]}
    assert sorted(slos) == sorted(SLOS)
    assert all(slo["judged"] for slo in slos.values()), summary["slos"]
    assert slos["no-500s"]["passed"], slos["no-500s"]
    injected = {e.name for e in run.events() if e.kind is EventKind.FAULT_INJECTED}
    reverted = {e.name for e in run.events() if e.kind is EventKind.FAULT_REVERTED}
    assert injected == reverted == {"kill-app-1", "slow-db"}

    assert _instance_state(compose_stack, "app-1") is ProcessState.ALIVE
    assert _toxics(compose_info) == {}
    _wait_healthy(compose_stack)


def test_rollback_after_the_run_was_killed_mid_fault(
    compose_stack: ComposeStack, compose_info: StackInfo, tmp_path: Path
) -> None:
    # Both faults in force from 3 s until the end: nothing but a rollback reverts them.
    scenario = _scenario(
        tmp_path,
        compose_stack,
        faults="""\
        - {name: kill-app-1, action: kill, target: app-1, at: 3s}
        - {name: slow-db, action: db-throttle, at: 3s, params: {latency: 40}}
        """,
    )
    reports = tmp_path / "reports"
    state_dir = tmp_path / "state"
    env = _env(compose_stack, state_dir)
    process = _start(scenario, env, "--reports", str(reports))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                run = _run_dir(reports)
                events = [e for e in run.events() if e.kind is EventKind.FAULT_INJECTED]
            except Exception:  # the store is being created: try again
                events = []
            if len(events) >= 2:
                break
            assert time.monotonic() < deadline, "the faults were not injected in time"
            time.sleep(0.1)
        children = psutil.Process(process.pid).children(recursive=True)
        # `harness run` first (so it cannot roll back), then the master (so it cannot revert).
        process.kill()
        for child in children:
            child.kill()
        process.communicate(timeout=30)
        psutil.wait_procs(children, timeout=10)
        assert _instance_state(compose_stack, "app-1") is ProcessState.DEAD
        assert "app-db" in _toxics(compose_info)

        rollback = subprocess.run(
            [sys.executable, "-m", "harness", "rollback", "--state-dir", str(state_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert rollback.returncode == 0, f"{rollback.stdout}\n{rollback.stderr}"
        assert "2 fault(s) reverted" in rollback.stdout, rollback.stdout
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert _instance_state(compose_stack, "app-1") is ProcessState.ALIVE
    assert _toxics(compose_info) == {}
    _wait_healthy(compose_stack)
