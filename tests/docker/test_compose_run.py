"""`harness run` against the compose stack: the CI-gate scenario, unchanged, on the session's
compose project (``harness up --stack compose`` finds it up; ``--stack compose --project``
points the run at it), its faults going through the Docker SDK and the project's Toxiproxy; and
a rollback after a run was killed mid-fault.

These run before test_compose_stack.py (whose last test takes the project down with
``harness down``) and leave the project as they found it: healthy, every instance running, no
toxic.
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
from compose_support import REPO, harness, harness_env

from harness.record import EventKind, RunDir
from harness.scenario import load_scenario
from harness.stack.base import ProcessState, StackInfo
from harness.stack.compose import ComposeStack

pytestmark = pytest.mark.docker

LOCUSTFILE = REPO / "scenarios" / "shop_locustfile.py"
CI_GATE = REPO / "scenarios" / "ci_gate.yaml"
RUN_TIMEOUT_S = 150.0
# What the shop guarantees however loaded this machine is (latency and 503-ratio SLOs of the
# gate depend on the CPU the test gets; they must be judged, not necessarily met).
HELD_SLOS = ("no-500s", "retry-after-on-503s", "attempt-cap-respected")


def _scenario(tmp_path: Path, stack: ComposeStack, *, faults: str) -> Path:
    """A 20 s scenario on the compose stack with ``faults`` (YAML list items, unindented)."""
    head = f"""\
        name: compose-run
        stack:
          kind: compose
          compose_file: {json.dumps(str(stack.config.compose_file))}
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
    return harness_env(HARNESS_RUN_PROJECT=stack.project, HARNESS_STATE_DIR=str(state_dir))


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
    (root,) = (p for p in reports.iterdir() if p.is_dir())
    return RunDir.open(root)


def _started_at(stack: ComposeStack, service: str) -> str:
    (container,) = stack._containers()[service]
    return str(container.attrs["State"]["StartedAt"])


def test_ci_gate_scenario_runs_unchanged_on_the_compose_stack(
    compose_stack: ComposeStack, compose_info: StackInfo, tmp_path: Path
) -> None:
    project = compose_stack.project
    env = harness_env()
    up = harness(
        "up",
        "--stack",
        "compose",
        "--project",
        project,
        "--entry-port",
        str(compose_stack.config.entry_port),
        "--toxiproxy-port",
        str(compose_stack.config.toxiproxy_port),
        env=env,
    )
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
    assert f"compose project {project!r} already up, healthy" in up.stdout
    app_1_started = _started_at(compose_stack, "app-1")

    reports = tmp_path / "reports"
    process = _start(
        CI_GATE,
        env,
        "--stack",
        "compose",
        "--project",
        project,
        "--reports",
        str(reports),
        "--state-dir",
        str(tmp_path / "state"),
    )
    out, err = _finish(process)
    assert process.returncode in (0, 1), f"{out}\n{err}"
    assert f"using the compose project {project!r} already up" in err

    run = _run_dir(reports)
    summary = json.loads(run.summary_json.read_text())
    slos = {slo["name"]: slo for slo in summary["slos"]}
    assert sorted(slos) == sorted(slo.name for slo in load_scenario(CI_GATE).slos)
    assert all(slo["judged"] for slo in slos.values()), summary["slos"]
    for name in HELD_SLOS:
        assert slos[name]["passed"], slos[name]
    assert summary["exit_code"] == process.returncode == (0 if summary["passed"] else 1)
    injected = {e.name for e in run.events() if e.kind is EventKind.FAULT_INJECTED}
    reverted = {e.name for e in run.events() if e.kind is EventKind.FAULT_REVERTED}
    assert injected == reverted == {"kill-app-1", "slow-db"}

    # app-1's container was killed and started again; the throttle is gone from app-db.
    assert _started_at(compose_stack, "app-1") > app_1_started
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
        # Whatever failed above, the tests after this one get the project back whole.
        restored = _instance_state(compose_stack, "app-1") is ProcessState.ALIVE
        if not restored:
            compose_stack.restart("app-1")
        httpx.post(f"{compose_info.toxiproxy_url}/reset", timeout=5, trust_env=False)
    assert _instance_state(compose_stack, "app-1") is ProcessState.ALIVE
    assert _toxics(compose_info) == {}
    _wait_healthy(compose_stack)
