"""A test session stopped part-way leaves nothing behind: stopped by SIGTERM, its fixtures take
their stacks down; killed outright (nothing can run then), the next session sweeps what its record
names. Checked on a session of its own, running a test that holds the local stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from stack_support import processes_alive

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WAIT_S = 240.0  # a condition's bound, not a timing: the inner session brings a stack up
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def start_session(registry: Path, ready: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HARNESS_TEST_REGISTRY": str(registry), "SESSION_CASE_READY": str(ready)}
    return subprocess.Popen(
        [*PYTEST, "--timeout", "900", str(HERE / "session_case.py")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def record_of(registry: Path, session: subprocess.Popen[str], ready: Path) -> dict[str, Any]:
    """The inner session's record once its test holds the stack."""
    deadline = time.monotonic() + WAIT_S
    while not ready.exists():
        assert session.poll() is None, session.communicate()[0]
        assert time.monotonic() < deadline, "the inner test did not start in time"
        time.sleep(0.1)
    data: dict[str, Any] = json.loads((registry / f"{session.pid}.json").read_text())
    assert data["state_dirs"] == [ready.read_text()]
    assert len(data["pids"]) >= 6  # postgres, the proxy, caddy, three shop instances
    return data


def assert_nothing_left(data: dict[str, Any]) -> None:
    pids = [pid for pid, _ in data["pids"]]
    assert processes_alive(pids) == [], f"left running: {processes_alive(pids)}"
    assert [d for d in data["state_dirs"] if Path(d).exists()] == []


def test_a_session_stopped_by_sigterm_takes_its_stack_down(tmp_path: Path) -> None:
    registry, ready = tmp_path / "registry", tmp_path / "ready"
    session = start_session(registry, ready)
    try:
        data = record_of(registry, session, ready)
        session.send_signal(signal.SIGTERM)
        out, _ = session.communicate(timeout=WAIT_S)
    finally:
        if session.poll() is None:
            session.kill()
            session.communicate()
    assert session.returncode != 0, out
    assert_nothing_left(data)
    assert list(registry.glob("*.json")) == [], f"the session did not close its record:\n{out}"


def test_what_a_killed_session_left_is_swept_by_the_next(tmp_path: Path) -> None:
    registry, ready = tmp_path / "registry", tmp_path / "ready"
    session = start_session(registry, ready)
    try:
        data = record_of(registry, session, ready)
        session.kill()  # no teardown runs: the stack stays up
        session.communicate(timeout=WAIT_S)
        assert processes_alive([pid for pid, _ in data["pids"]]) != []
        # Any next session sweeps first, even one that runs nothing.
        swept = subprocess.run(
            [*PYTEST, "--collect-only", str(HERE / "session_case.py")],
            cwd=REPO,
            env={**os.environ, "HARNESS_TEST_REGISTRY": str(registry)},
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
    finally:
        if session.poll() is None:
            session.kill()
            session.communicate()
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert f"session {data['pid']}: " in swept.stdout
    assert_nothing_left(data)
    assert list(registry.glob("*.json")) == []
