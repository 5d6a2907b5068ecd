"""The lifeline: a child started with one learns of its parent's death, however it dies, and not
of anything less (a thread of the parent ending)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.load.lifeline import LIFELINE_ENV, watch_parent

# No module-wide mark: the tests that start a family of processes are marked integration
# (tests/unit/conftest.py makes the rest unit).

# The child: notes SIGHUP in a file (then leaves, unless told to hang on), and says it is ready.
CHILD = """\
import signal, sys, time
from pathlib import Path
from harness.load.lifeline import watch_parent

out = Path(sys.argv[1])
hang_on = sys.argv[2] == "hang-on"

def hup(signum, frame):
    out.write_text("SIGHUP")
    if not hang_on:
        sys.exit(0)

signal.signal(signal.SIGHUP, hup)
watched = watch_parent(grace_s=0.5, exit_code=42)
out.write_text(f"ready {watched}")
while True:
    time.sleep(0.05)
"""

# The parent: starts the child with a lifeline (from a thread that then ends), prints its pid,
# and lives until it is killed.
PARENT = """\
import os, subprocess, sys, threading, time
from harness.load.lifeline import Lifeline

lifeline = Lifeline()
started = []

def start():
    started.append(subprocess.Popen(
        [sys.executable, sys.argv[1], sys.argv[2], sys.argv[3]],
        env=lifeline.child_env(os.environ), pass_fds=lifeline.pass_fds,
    ))

thread = threading.Thread(target=start)
thread.start()
thread.join()  # the thread that started the child is gone; the parent is not
print(started[0].pid, flush=True)
time.sleep(600)
"""


def wait_for(condition: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start_family(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], int, Path]:
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "parent.py").write_text(PARENT)
    out = tmp_path / "out.txt"
    parent = subprocess.Popen(
        [sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "child.py"), str(out), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    wait_for(lambda: out.exists() and out.read_text().startswith("ready"), "the child")
    return parent, child_pid, out


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.integration  # a parent and a child process, and waits
def test_a_parent_killed_with_sigkill_sends_its_child_sighup(tmp_path: Path) -> None:
    parent, child, out = start_family(tmp_path, "leave")
    try:
        assert out.read_text() == "ready True"
        time.sleep(0.3)
        assert not gone(child), "the end of the thread that started it stopped the child"
        parent.kill()
        parent.wait()
        wait_for(lambda: gone(child), "the child to leave")
        assert out.read_text() == "SIGHUP"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if not gone(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.integration  # a parent and a child process, and waits
def test_a_child_that_does_not_leave_is_ended_after_the_grace(tmp_path: Path) -> None:
    parent, child, out = start_family(tmp_path, "hang-on")
    try:
        parent.kill()
        parent.wait()
        wait_for(lambda: out.read_text() == "SIGHUP", "the SIGHUP")
        wait_for(lambda: gone(child), "the grace to end the child")
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if not gone(child):
            os.kill(child, signal.SIGKILL)


def test_without_a_lifeline_nothing_is_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIFELINE_ENV, raising=False)
    assert watch_parent(grace_s=1, exit_code=1) is False
    monkeypatch.setenv(LIFELINE_ENV, "not-a-number")
    assert watch_parent(grace_s=1, exit_code=1) is False
    assert LIFELINE_ENV not in os.environ  # removed, so what this process starts is not fooled


def test_a_descriptor_that_is_not_a_pipe_is_not_watched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with (tmp_path / "file").open("w") as handle:
        monkeypatch.setenv(LIFELINE_ENV, str(handle.fileno()))
        assert watch_parent(grace_s=1, exit_code=1) is False
