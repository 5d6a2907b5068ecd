"""The test sessions' records (tests/session_cleanup.py): a dead session's leftovers are swept by
its own record, PIDs checked against their create time; a live session's are left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from session_cleanup import MARK_ENV, REGISTRY_ENV, registry_dir, sweep_dead_sessions

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def dead_pid() -> tuple[int, float]:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(process.pid).create_time()
    process.wait()
    return process.pid, started


def write_record(directory: Path, **data: object) -> Path:
    path = directory / f"{data['pid']}.json"
    path.write_text(json.dumps({"state_dirs": [], "pids": [], **data}))
    return path


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


@pytest.mark.integration  # processes it kills
def test_a_dead_sessions_processes_and_dirs_are_swept(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    mark = str(tmp_path / "old.json")
    recorded = subprocess.Popen(SLEEP)
    marked = subprocess.Popen(SLEEP, env={**os.environ, MARK_ENV: mark})
    stranger = subprocess.Popen(SLEEP)  # its PID recorded with another create time: reused
    sleepers += [recorded, marked, stranger]
    state_dir = tmp_path / "state"
    (state_dir / "pg").mkdir(parents=True)
    pid, started = dead_pid()
    path = write_record(
        tmp_path,
        pid=pid,
        started=started,
        mark=mark,
        state_dirs=[str(state_dir)],
        pids=[
            [recorded.pid, psutil.Process(recorded.pid).create_time()],
            [stranger.pid, psutil.Process(stranger.pid).create_time() - 100],
        ],
    )
    lines = sweep_dead_sessions(tmp_path)
    assert recorded.wait(timeout=10) == -9
    assert marked.wait(timeout=10) == -9
    assert stranger.poll() is None
    assert not state_dir.exists()
    assert not path.exists()
    assert f"session {pid}: {state_dir} removed" in lines


def test_a_live_sessions_record_is_left_alone(tmp_path: Path) -> None:
    me = psutil.Process()
    path = write_record(tmp_path, pid=me.pid, started=me.create_time(), state_dirs=[str(tmp_path)])
    assert sweep_dead_sessions(tmp_path) == []
    assert path.exists()


def test_the_registry_must_be_this_users_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv(REGISTRY_ENV, str(shared))
    with pytest.raises(RuntimeError, match="mode 0700"):
        registry_dir()
    (tmp_path / "link").symlink_to(tmp_path / "private")
    (tmp_path / "private").mkdir(mode=0o700)
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "link"))
    with pytest.raises(RuntimeError, match="no symlink"):
        registry_dir()
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "new"))
    assert registry_dir().stat().st_mode & 0o777 == 0o700
