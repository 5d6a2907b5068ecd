"""The Locust processes of a run, from this process: start the master, point the local workers at
it once it listens, wait for it (forwarding signals), and stop every child on the way out.

Each child runs in a session of its own, so a terminal's Ctrl-C reaches the harness only, which
forwards it to the master (:mod:`harness.run.signals`); the master tells the workers to stop.
Every child is stopped, by PID, before :class:`Children` closes; and should this process die
first (``kill -9``), each child sees its lifeline break and stops by itself
(:mod:`harness.load.lifeline`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, NoReturn

from harness.errors import HarnessError, InfrastructureError
from harness.load.launch import SCENARIO_FILE, MasterArgs, WorkerArgs, read_master_file
from harness.load.lifeline import Lifeline
from harness.record import RunDir
from harness.run.signals import Signals, send_signal
from harness.scenario import Scenario

__all__ = [
    "MASTER_OVERRUN_S",
    "MASTER_START_TIMEOUT_S",
    "MASTER_STOP_GRACE_S",
    "Children",
    "exec_worker",
    "run_locust",
]

MASTER_START_TIMEOUT_S: Final = 60.0  # importing Locust and the locustfile, opening the store
# Past the phases: waiting for workers, stopping, reverting faults, flushing. After a forwarded
# signal the master gets this long to stop before it is killed (and its faults rolled back here).
MASTER_STOP_GRACE_S: Final = 90.0
MASTER_OVERRUN_S: Final = 120.0
WORKER_EXIT_WAIT_S: Final = 10.0
TERM_GRACE_S: Final = 5.0


class Children:
    """The Locust processes of a run, each in its own session; all stopped on the way out, and
    all stopping by themselves should this process die first (their :class:`Lifeline`)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self._lifeline: Lifeline | None = None

    def __enter__(self) -> Children:
        self._lifeline = Lifeline()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_all()
        finally:
            if self._lifeline is not None:
                self._lifeline.close()

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        lifeline = self._lifeline
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            env=lifeline.child_env(env) if lifeline is not None else env,
            # The read end of the lifeline: end-of-file there when this process is gone, even
            # by `kill -9`, and the child stops its load and reverts its faults by itself.
            pass_fds=lifeline.pass_fds if lifeline is not None else (),
            # Its own session: a terminal's Ctrl-C reaches `harness run` only, which forwards it
            # to the master; the workers are told to stop by the master.
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        """Wait a little for the children to leave by themselves, then SIGTERM, then SIGKILL."""
        alive = [p for p in self.processes if p.poll() is None]
        _wait_all(alive, WORKER_EXIT_WAIT_S)
        for process in alive:
            if process.poll() is None:
                send_signal(process, signal.SIGTERM)
        _wait_all(alive, TERM_GRACE_S)
        for process in alive:
            if process.poll() is None:
                send_signal(process, signal.SIGKILL)
                process.wait()


def run_locust(
    children: Children,
    signals: Signals,
    *,
    run_dir: RunDir,
    scenario: Scenario,
    master_args: MasterArgs,
    deadline: float,
    tell: Callable[[str], None],
) -> int | None:
    """Hand the scenario to a new master, start the scenario's local workers once it listens,
    and wait for it to end: its exit code, None when it had to be killed. A Ctrl-C that comes
    before the master can take signals, and an error on the way (told), stop the master the
    graceful way: it reverts its faults itself."""
    master: subprocess.Popen[bytes] | None = None
    try:
        _write_json(run_dir.root / SCENARIO_FILE, scenario.to_dict())
        master = children.start(master_args.argv())
        signals.forward_to(master, ready=lambda: read_master_file(run_dir.root) is not None)
        local_workers = scenario.load.workers
        if local_workers:
            port = _wait_for_master_port(run_dir, master, signals)
            for _ in range(local_workers):
                worker = WorkerArgs(
                    "127.0.0.1", port, scenario.load.locustfile, otel=master_args.otel
                )
                children.start(worker.argv())
        return _wait_for_master(master, deadline, signals, tell)
    except _MasterGone as gone:
        return gone.returncode
    except KeyboardInterrupt:
        # Before the master could take the signal itself: SIGTERM is the same graceful stop
        # (it reverts its faults), and the workers follow it.
        signals.received.append(signal.SIGINT)
        return _stop_master(master)
    except (HarnessError, OSError) as exc:
        tell(str(exc))
        return _stop_master(master)


def exec_worker(args: WorkerArgs) -> NoReturn:
    """Become a Locust worker (``harness worker``): this process is replaced, so signals and the
    exit code are the worker's own."""
    argv = args.argv()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606  # no shell: the argv is ours


def _wait_all(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))


def _wait_for_master_port(
    run_dir: RunDir, master: subprocess.Popen[bytes], signals: Signals
) -> int:
    deadline = time.monotonic() + MASTER_START_TIMEOUT_S
    while True:
        info = read_master_file(run_dir.root)
        if info is not None and isinstance(info.get("port"), int):
            port: int = info["port"]
            return port
        if master.poll() is not None:
            raise _MasterGone(master.returncode)
        signals.deliver_held()
        if time.monotonic() > deadline:
            raise InfrastructureError(
                f"the Locust master did not listen within {MASTER_START_TIMEOUT_S:g}s"
            )
        time.sleep(0.02)


class _MasterGone(Exception):
    """The master exited before it said where it listens (its exit code tells why)."""

    def __init__(self, returncode: int) -> None:
        super().__init__(returncode)
        self.returncode = returncode


def _wait_for_master(
    master: subprocess.Popen[bytes],
    deadline: float,
    signals: Signals,
    tell: Callable[[str], None],
) -> int | None:
    """The master's exit code; None when it had to be killed."""
    while True:
        try:
            return master.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        signals.deliver_held()
        now = time.monotonic()
        if signals.received and signals.first_at is not None:
            if now - signals.first_at > MASTER_STOP_GRACE_S:
                tell("the Locust master did not stop in time after the signal; killing it")
                send_signal(master, signal.SIGKILL)
                master.wait()
                return None
        elif now > deadline:
            tell("the Locust master overran the scenario's time; stopping it")
            signals.escalate(master)


def _stop_master(master: subprocess.Popen[bytes] | None) -> int | None:
    """SIGTERM (a graceful stop), then SIGKILL after the grace; its exit code, None if killed."""
    if master is None:
        return None
    if master.poll() is None:
        send_signal(master, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return master.wait(timeout=MASTER_STOP_GRACE_S)
        send_signal(master, signal.SIGKILL)
        master.wait()
        return None
    return master.returncode


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
