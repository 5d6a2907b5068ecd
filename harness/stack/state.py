"""The state directory: the durable memory of a local stack.

Layout (default ``.harness/`` in the current directory)::

    stack.json     the config the stack was built with and one record per process started
    stack.lock     held (flock) by whoever changes the stack: up, down, restart
    logs/          one log per process, truncated by each ``up``
    pgdata/        the PostgreSQL cluster, kept across ``down``/``up`` so warm starts are fast
    caddy/         Caddy's generated config and its data directory
    toxiproxy.json the proxies Toxiproxy creates at start

``stack.json`` is rewritten (atomically) as soon as each process has a PID, so a harness killed
halfway through ``up`` still leaves a record of everything it started. It holds the shop's admin
token, so it is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import StackError
from harness.private_files import open_private, read_private, write_private
from harness.stack.base import Endpoint
from harness.stack.config import LocalStackConfig
from harness.stack.processes import ProcessRecord, pid_alive

STATE_FILE = "stack.json"
LOCK_FILE = "stack.lock"
# 2: a process's start time counts from boot (processes.start_time), not from the epoch.
FORMAT_VERSION = 2
DEFAULT_STATE_DIR = Path(".harness")
# Written into the state directory by a running game day (harness.gameday.control.CONTROL_FILE):
# the mark that people are using the stack, which then is never reconfigured under them.
GAMEDAY_FILE = "gameday.json"


def gameday_pid(state_dir: Path) -> int | None:
    """The process of the game day using the stack of ``state_dir``; None when none runs (no
    mark, or the mark of a process that is gone)."""
    try:
        # Read leniently on purpose: a mark that is not a private file still says "in use", and
        # a wrong "in use" only makes a run refuse to touch the stack.
        pid = json.loads((Path(state_dir) / GAMEDAY_FILE).read_text(encoding="utf-8"))["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or pid <= 0:
        return None
    return pid if pid_alive(pid) else None


@dataclass(frozen=True)
class StackState:
    """A stack as ``up`` left it: its config and its processes, in start order."""

    config: LocalStackConfig
    processes: tuple[ProcessRecord, ...] = ()

    def with_process(self, record: ProcessRecord) -> StackState:
        """This state with ``record`` added, or replacing the record of the same name."""
        if self.process(record.name) is None:
            return replace(self, processes=(*self.processes, record))
        # In place: the order is the start order, which ``down`` reverses.
        return replace(
            self, processes=tuple(record if p.name == record.name else p for p in self.processes)
        )

    def process(self, name: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.name == name), None)


class StateDir:
    """Paths in a state directory, and reading and writing its state file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def caddy(self) -> Path:
        return self.root / "caddy"

    @property
    def toxiproxy_config(self) -> Path:
        return self.root / "toxiproxy.json"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state directory's lock: one ``up``, ``down`` or ``restart`` at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK_FILE
        try:
            # Never through a link (see harness.private_files); its content does not matter.
            fd = open_private(path, os.O_RDWR | os.O_CREAT, repair_mode=True)
        except OSError as exc:
            raise StackError(f"{path}: cannot open the stack's lock: {exc.strerror}") from None
        with os.fdopen(fd, "r+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> StackState | None:
        """The saved state, or None when no stack was recorded here."""
        try:
            # Only this user's own 0600 file, never through a link: it says which processes to
            # stop and which commands to start again (harness.private_files).
            raw = read_private(self.state_file)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StackError(f"cannot read {self.state_file}: {exc.strerror}") from None
        try:
            return _decode(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise StackError(
                f"{self.state_file} is not a stack state this harness understands ({exc}); "
                "stop its processes by hand and delete it"
            ) from exc

    def save(self, state: StackState) -> None:
        """Write the state atomically (a reader never sees half a file), owner-only."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            write_private(self.state_file, (json.dumps(_encode(state), indent=2) + "\n").encode())
        except OSError as exc:
            raise StackError(f"cannot write {self.state_file}: {exc.strerror}") from None

    def clear(self) -> None:
        self.state_file.unlink(missing_ok=True)


def _encode(state: StackState) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "config": state.config.to_json(),
        "processes": [
            {
                "name": p.name,
                "role": p.role,
                "pid": p.pid,
                "started": p.started,
                "host": p.endpoint.host,
                "port": p.endpoint.port,
                "log": str(p.log),
                "argv": list(p.argv),
                "env": dict(p.env),
                "stop_signal": signal.Signals(p.stop_signal).name,
            }
            for p in state.processes
        ],
    }


def _decode(data: dict[str, Any]) -> StackState:
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"format version {data.get('version')!r}, expected {FORMAT_VERSION}")
    processes = tuple(
        ProcessRecord(
            name=str(p["name"]),
            role=str(p["role"]),
            pid=int(p["pid"]),
            started=float(p["started"]),
            endpoint=Endpoint(str(p["host"]), int(p["port"])),
            log=Path(p["log"]),
            argv=tuple(str(a) for a in p["argv"]),
            env={str(k): str(v) for k, v in p["env"].items()},
            stop_signal=signal.Signals[p["stop_signal"]].value,
        )
        for p in data["processes"]
    )
    return StackState(config=LocalStackConfig.from_json(data["config"]), processes=processes)
