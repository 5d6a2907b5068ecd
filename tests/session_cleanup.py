"""What a test session starts outside pytest's own temporary directories, recorded so that nothing
outlives it: not when it ends, not when it is stopped by SIGTERM or Ctrl-C, and not even when it is
killed outright (the next session sweeps what the record names).

The records live in a directory of this user's only (mode 0700, refused otherwise), one JSON file
per session (``<pid>.json``, mode 0600)::

    {"pid": 123, "started": <its create time>, "mark": "<path of this file>",
     "state_dirs": ["/tmp/harness-it-stack-…"], "pids": [[4567, <create time>], …],
     "compose_projects": ["harness-test-123"]}

Every process a test starts inherits ``$PYTEST_HARNESS_SESSION`` (the record's path): the mark by
which the session finds what it started, whatever the tests scrubbed from the environment they
hand on (``HARNESS_*`` is). Processes are found by the session's own records, the PIDs it wrote
(checked against their create time, so a reused PID is left alone) and the mark, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "MARK_ENV",
    "REGISTRY_ENV",
    "SessionRecord",
    "current",
    "processes_marked",
    "registry_dir",
    "set_current",
    "sweep_dead_sessions",
]

REGISTRY_ENV = "HARNESS_TEST_REGISTRY"  # another registry directory (the test of the sweep)
MARK_ENV = "PYTEST_HARNESS_SESSION"


def registry_dir() -> Path:
    """This user's directory of session records, made private if new; refused if it is not."""
    base = Path(
        os.environ.get(REGISTRY_ENV) or Path(tempfile.gettempdir()) / f"harness-tests-{os.getuid()}"
    )
    with contextlib.suppress(FileExistsError):
        base.mkdir(mode=0o700, parents=True)
    info = os.lstat(base)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(
            f"{base}: not a directory of this user's only (mode 0700, no symlink); remove it"
        )
    return base


class SessionRecord:
    """This session's record: what it started, written as it goes."""

    def __init__(self, directory: Path) -> None:
        me = psutil.Process()
        self.path = directory / f"{me.pid}.json"
        self.data: dict[str, Any] = {
            "pid": me.pid,
            "started": me.create_time(),
            "mark": str(self.path),
            "state_dirs": [],
            "pids": [],
            "compose_projects": [],
        }
        self._write()

    def add_state_dir(self, path: Path) -> None:
        self.data["state_dirs"].append(str(path))
        self._write()

    def forget_state_dir(self, path: Path) -> None:
        with contextlib.suppress(ValueError):
            self.data["state_dirs"].remove(str(path))
        self._write()

    def add_pids(self, pids: list[int]) -> None:
        known = {pid for pid, _ in self.data["pids"]}
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                if pid not in known:
                    self.data["pids"].append([pid, psutil.Process(pid).create_time()])
        self._write()

    def add_compose_project(self, project: str) -> None:
        self.data["compose_projects"].append(project)
        self._write()

    def forget_compose_project(self, project: str) -> None:
        with contextlib.suppress(ValueError):
            self.data["compose_projects"].remove(project)
        self._write()

    def close(self) -> list[str]:
        """The session is over: stop what it left, remove its record. What was left, said."""
        left = sweep(self.data, exclude=os.getpid())
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return left

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(tmp, flags, 0o600), "w", encoding="utf-8") as handle:
            json.dump(self.data, handle)
        os.replace(tmp, self.path)


def sweep_dead_sessions(directory: Path) -> list[str]:
    """Sweep what earlier sessions that are gone left (killed before they could): each line
    says what was stopped or removed."""
    done: list[str] = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            alive = _same_process(int(data["pid"]), float(data["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # another session writing its record, or not one of ours
        if alive:
            continue
        done += [f"session {data['pid']}: {line}" for line in sweep(data)]
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return done


def sweep(data: dict[str, Any], exclude: int | None = None) -> list[str]:
    """Stop and remove what one session record names."""
    done: list[str] = []
    for project in data.get("compose_projects", []):
        if _compose_down(str(project)):
            done.append(f"compose project {project} taken down")
    for state_dir in map(Path, data.get("state_dirs", [])):
        # The stack's own way down first (it reverts nothing: the session is over).
        with contextlib.suppress(Exception):  # whatever it thinks, the kills below decide
            from harness.stack.local import LocalStack

            if (state_dir / "stack.json").exists():
                LocalStack(state_dir).down()
    recorded = [
        pid
        for pid, started in data.get("pids", [])
        if pid != exclude and _same_process(int(pid), float(started))
    ]
    marked = [pid for pid in processes_marked(str(data.get("mark", ""))) if pid != exclude]
    for pid in _kill(sorted(set(recorded) | set(marked))):
        done.append(f"process {pid} killed")
    for state_dir in map(Path, data.get("state_dirs", [])):
        if state_dir.exists():
            shutil.rmtree(state_dir, ignore_errors=True)
            done.append(f"{state_dir} removed")
    return done


def processes_marked(mark: str) -> list[int]:
    """PIDs of live processes whose environment carries this session's mark."""
    if not mark:
        return []
    found = []
    for process in psutil.process_iter(["pid", "environ", "status"]):
        environ = process.info["environ"] or {}
        if environ.get(MARK_ENV) == mark and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(int(process.info["pid"]))
    return found


def _same_process(pid: int, started: float) -> bool:
    try:
        process = psutil.Process(pid)
        return (
            abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def _kill(pids: list[int]) -> list[int]:
    killed = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _compose_down(project: str) -> bool:
    """``docker compose down`` of a project a killed session left; False when Docker is not
    there (then nothing of it can be running either)."""
    down: Callable[[], None]
    try:
        from harness.stack.compose import ComposeStack, ComposeStackConfig

        down = ComposeStack(ComposeStackConfig(project=project)).down
    except Exception:  # no Docker SDK, a config that no longer parses: nothing to take down
        return False
    try:
        down()
    except Exception:  # no engine answers: nothing of the project runs
        return False
    return True


_current: list[SessionRecord] = []


def current() -> SessionRecord | None:
    """The running session's record (None outside a session that keeps one)."""
    return _current[-1] if _current else None


def set_current(record: SessionRecord | None) -> None:
    _current.clear()
    if record is not None:
        _current.append(record)
