"""Detached processes, identified by PID *and* start time so a reused PID is never signalled.

The stack's processes must outlive the ``harness up`` that started them and be controlled later
from other processes, so the only handle on one is a ``ProcessRecord`` (kept in the state file),
never a ``Popen``. Each process leads its own session (``start_new_session``), so its process
group is its PID: signals go to the whole group, which reaches any worker it forked too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil

from harness.errors import StackError
from harness.stack.base import Endpoint, ProcessState

# Start times are whole clock ticks (10 ms here), so two reads of one process are equal; the
# tolerance only absorbs float rounding, and a PID reused within it is not a case worth more.
_START_TOLERANCE_S = 0.001
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class ProcessRecord:
    """What is needed to find, signal and (if ``argv`` is set) start again one process."""

    name: str
    role: str
    pid: int
    started: float  # start_time(pid) when it was recorded: with the PID, what names the process
    endpoint: Endpoint
    log: Path
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # PostgreSQL treats SIGTERM as "wait for every client to leave"; it wants SIGINT.
    stop_signal: int = signal.SIGTERM


def spawn(
    name: str,
    role: str,
    argv: Sequence[str],
    *,
    endpoint: Endpoint,
    log: Path,
    env: Mapping[str, str] | None = None,
    stop_signal: int = signal.SIGTERM,
) -> ProcessRecord:
    """Start ``argv`` detached, output appended to ``log``; return its record at once."""
    full_env = {**os.environ, **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Never through a symbolic link: the output would land in the file it points at.
        fd = os.open(
            log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        raise StackError(f"{name}: cannot open its log {log}: {exc.strerror}") from None
    with open(fd, "ab") as out:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"{name}: could not start {argv[0]}: {exc}") from exc
    return adopt(
        process,
        name,
        role,
        endpoint=endpoint,
        log=log,
        argv=argv,
        env=env or {},
        stop_signal=stop_signal,
    )


def adopt(
    process: subprocess.Popen[bytes],
    name: str,
    role: str,
    *,
    endpoint: Endpoint,
    log: Path,
    argv: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    stop_signal: int = signal.SIGTERM,
) -> ProcessRecord:
    """Turn a ``Popen`` some helper started into a record, and let go of the ``Popen``.

    The process is meant to outlive this one, so the ``Popen`` must not reap it, nor warn
    ("subprocess is still running") when it is collected: marking it finished does both. If it
    ends while we are still around, ``find`` reaps it.
    """
    try:
        started = start_time(process.pid)
    except psutil.Error as exc:
        raise StackError(f"{name}: exited right after start (pid {process.pid})") from exc
    process.returncode = 0
    return ProcessRecord(
        name=name,
        role=role,
        pid=process.pid,
        started=started,
        endpoint=endpoint,
        log=log,
        argv=tuple(argv),
        env=dict(env or {}),
        stop_signal=stop_signal,
    )


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (someone else's counts: signal 0 is refused, not lost)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_time(pid: int) -> float:
    """When ``pid`` started, in seconds since the machine booted (on Linux): fixed for the life
    of the process, whichever process reads it and whatever the wall clock does.

    Not psutil's ``create_time()``: that adds /proc/stat's ``btime``, the boot time in whole
    seconds of wall-clock time, which moves by a second when the clock is stepped or slewed
    across a second boundary. A record written before such a move then named no live process,
    and a running PostgreSQL showed as dead. Raises ``psutil.NoSuchProcess`` if ``pid`` is gone.
    """
    if not sys.platform.startswith("linux"):
        return float(psutil.Process(pid).create_time())  # elsewhere: the wall-clock start
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError as exc:
        raise psutil.NoSuchProcess(pid) from exc
    # Field 2, the command name, may hold spaces and parentheses: count fields after the last
    # ")". The first of those is field 3 (state); the start time in clock ticks is field 22.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[22 - 3]) / _CLOCK_TICKS


def find(record: ProcessRecord) -> psutil.Process | None:
    """The live process the record names, or None if it ended or its PID was reused."""
    try:
        process = psutil.Process(record.pid)
        if abs(start_time(record.pid) - record.started) > _START_TOLERANCE_S:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            _reap(record.pid)
            return None
    except psutil.Error:
        return None
    return process


def state_of(record: ProcessRecord) -> ProcessState:
    process = find(record)
    if process is None:
        return ProcessState.DEAD
    try:
        status = process.status()
    except psutil.Error:
        return ProcessState.DEAD
    return ProcessState.PAUSED if status == psutil.STATUS_STOPPED else ProcessState.ALIVE


def send(record: ProcessRecord, sig: int) -> bool:
    """Signal the record's process group; False (and nothing sent) if the process is gone."""
    process = find(record)
    if process is None:
        return False
    try:
        # A helper could have started it without a session of its own; then the group is not
        # ours to signal, only the process.
        if os.getpgid(record.pid) == record.pid:
            os.killpg(record.pid, sig)
        else:
            process.send_signal(sig)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False
    return True


def wait_gone(records: Iterable[ProcessRecord], timeout_s: float) -> list[ProcessRecord]:
    """Wait until every record's process has ended; return those still running at the deadline."""
    deadline = time.monotonic() + timeout_s
    left = list(records)
    pause = 0.001  # a SIGKILL takes effect in about a millisecond: a fault is timed from here
    while left:
        left = [r for r in left if find(r) is not None]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
    return left


def stop(records: Sequence[ProcessRecord], grace_s: float = STOP_GRACE_S) -> None:
    """Stop processes together: SIGCONT (a paused one cannot act on SIGTERM), their stop
    signal, then SIGKILL for any still running after ``grace_s``. Dead or reused PIDs are skipped.
    """
    for record in records:
        send(record, signal.SIGCONT)
        send(record, record.stop_signal)
    stubborn = wait_gone(records, grace_s)
    for record in stubborn:
        send(record, signal.SIGKILL)
    still = wait_gone(stubborn, grace_s)
    if still:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in still)
        raise StackError(f"could not stop {names}, even with SIGKILL")


def strays(mark: str, value: str, known: Iterable[ProcessRecord]) -> list[ProcessRecord]:
    """Processes whose environment has ``mark=value`` and that no record in ``known`` names.

    Every process a stack starts carries its mark, so one started just before its starter was
    killed (too late to be recorded) is still found and stopped by the next ``up`` or ``down``.
    """
    # Never ourselves nor whoever started us, even if a user exported the mark by mistake.
    exempt = {record.pid for record in known} | {os.getpid()}
    exempt |= {parent.pid for parent in psutil.Process().parents()}
    found = []
    for process in psutil.process_iter(["pid", "environ"]):
        info = process.info
        environ = info.get("environ") or {}  # None when we may not read it: not ours anyway
        if environ.get(mark) != value or info["pid"] in exempt:
            continue
        try:
            started = start_time(info["pid"])
        except psutil.NoSuchProcess:
            continue  # ended since the listing: nothing to stop
        found.append(
            ProcessRecord(
                name=f"unrecorded pid {info['pid']}",
                role="stray",
                pid=info["pid"],
                started=started,
                endpoint=Endpoint("", 0),
                log=Path(os.devnull),
            )
        )
    return found


def _reap(pid: int) -> None:
    """Collect a dead child of ours, so it does not linger as a zombie. Others' are not ours."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log, indented, for an error message."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return f"    (no log at {log})"
    tail = text.splitlines()[-lines:]
    if not tail:
        return f"    (log {log} is empty)"
    return "\n".join(f"    {line}" for line in tail)


@contextlib.contextmanager
def environ_set(name: str, value: str, *, keep_existing: bool) -> Iterator[None]:
    """``os.environ[name] = value`` for the block (not if already set and ``keep_existing``)."""
    previous = os.environ.get(name)
    if previous is not None and keep_existing:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while starting, so a terminated ``up`` unwinds its
    teardown like an interrupted one. Only the main thread can install a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def layers(records: Sequence[ProcessRecord]) -> Iterator[list[ProcessRecord]]:
    """Records in reverse start order, consecutive ones of the same role together."""
    layer: list[ProcessRecord] = []
    for record in reversed(records):
        if layer and layer[-1].role != record.role:
            yield layer
            layer = []
        layer.append(record)
    if layer:
        yield layer
