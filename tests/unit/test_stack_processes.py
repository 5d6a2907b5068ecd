"""Detached processes: found by PID *and* start time, paused, stopped however they resist."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from harness.errors import StackError
from harness.stack.base import Endpoint, ProcessState
from harness.stack.processes import (
    ProcessRecord,
    find,
    log_tail,
    send,
    spawn,
    start_time,
    state_of,
    stop,
    strays,
)

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.

NOWHERE = Endpoint("127.0.0.1", 0)
SLEEPER = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
# Ignores SIGTERM, as a hung server might.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)",
]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ProcessRecord]]:
    """Records spawned by a test, all killed afterwards whatever the test did."""
    records: list[ProcessRecord] = []
    yield records
    for record in records:
        send(record, signal.SIGKILL)
    stop(records, grace_s=2.0)


def _spawn(tmp_path: Path, started: list[ProcessRecord], argv: list[str]) -> ProcessRecord:
    record = spawn("p", "test", argv, endpoint=NOWHERE, log=tmp_path / f"p{len(started)}.log")
    started.append(record)
    return record


def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def test_a_spawned_process_leads_its_own_session(
    tmp_path: Path, started: list[ProcessRecord]
) -> None:
    record = _spawn(tmp_path, started, SLEEPER)
    assert state_of(record) is ProcessState.ALIVE
    # Its own session and group: it outlives us, and group signals reach only its family.
    assert os.getsid(record.pid) == record.pid
    assert os.getpgid(record.pid) == record.pid


def test_a_reused_pid_is_not_ours(tmp_path: Path, started: list[ProcessRecord]) -> None:
    record = _spawn(tmp_path, started, SLEEPER)
    impostor = dataclasses.replace(record, started=record.started - 10)
    assert find(impostor) is None
    assert state_of(impostor) is ProcessState.DEAD
    assert send(impostor, signal.SIGKILL) is False
    assert state_of(record) is ProcessState.ALIVE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="boot time from /proc/stat")
def test_a_process_stays_ours_when_the_wall_clock_boot_time_moves(
    tmp_path: Path, started: list[ProcessRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc/stat's btime is whole seconds of wall-clock time: a clock step, or a slew across a
    # second boundary, moves it by a second while every process keeps running.
    record = _spawn(tmp_path, started, SLEEPER)
    boot_time = psutil.boot_time()
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: boot_time + 1.0)
    assert find(record) is not None
    assert state_of(record) is ProcessState.ALIVE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/stat")
def test_start_time_counts_from_boot_even_for_a_name_with_spaces_and_parentheses(
    tmp_path: Path, started: list[ProcessRecord]
) -> None:
    renamed = [
        sys.executable,
        "-c",
        "import time\n"
        "open('/proc/self/comm', 'w').write('a) b (c) d')\n"
        "print('renamed', flush=True)\n"
        "time.sleep(60)",
    ]
    record = _spawn(tmp_path, started, renamed)
    _until(lambda: "renamed" in (tmp_path / "p0.log").read_text())
    process = psutil.Process(record.pid)
    assert process.name() == "a) b (c) d"
    # psutil's wall-clock start is the boot time plus the same ticks.
    assert start_time(record.pid) == pytest.approx(process.create_time() - psutil.boot_time())
    assert start_time(record.pid) == record.started


def test_start_time_of_a_pid_that_is_gone_is_no_such_process() -> None:
    gone = psutil.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(psutil.NoSuchProcess):
        start_time(gone.pid)


def test_sigstop_shows_as_paused_and_sigcont_as_alive(
    tmp_path: Path, started: list[ProcessRecord]
) -> None:
    record = _spawn(tmp_path, started, SLEEPER)
    send(record, signal.SIGSTOP)
    _until(lambda: state_of(record) is ProcessState.PAUSED)
    send(record, signal.SIGCONT)
    _until(lambda: state_of(record) is ProcessState.ALIVE)


def test_stop_ends_a_paused_process(tmp_path: Path, started: list[ProcessRecord]) -> None:
    record = _spawn(tmp_path, started, SLEEPER)
    send(record, signal.SIGSTOP)
    _until(lambda: state_of(record) is ProcessState.PAUSED)
    stop([record], grace_s=2.0)
    assert state_of(record) is ProcessState.DEAD
    assert not psutil.pid_exists(record.pid)  # reaped, not left a zombie


@pytest.mark.integration  # waits out the grace
def test_stop_kills_a_process_that_ignores_its_stop_signal(
    tmp_path: Path, started: list[ProcessRecord]
) -> None:
    record = _spawn(tmp_path, started, STUBBORN)
    # The handler only counts once the child has run that far.
    _until(lambda: "ready" in record.log.read_text())
    stop([record], grace_s=0.3)
    assert state_of(record) is ProcessState.DEAD


def test_stopping_a_dead_process_is_a_no_op(tmp_path: Path, started: list[ProcessRecord]) -> None:
    record = _spawn(tmp_path, started, SLEEPER)
    stop([record], grace_s=2.0)
    stop([record], grace_s=2.0)
    assert state_of(record) is ProcessState.DEAD


def test_a_program_that_cannot_start_is_a_stack_error(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="p: could not start /nonexistent/binary"):
        spawn("p", "test", ["/nonexistent/binary"], endpoint=NOWHERE, log=tmp_path / "p.log")


def test_log_tail_shows_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)))
    tail = log_tail(log, lines=3)
    assert tail.splitlines() == ["    line 37", "    line 38", "    line 39"]
    assert "no log" in log_tail(tmp_path / "absent.log")


def test_strays_are_marked_processes_no_record_names(
    tmp_path: Path, started: list[ProcessRecord]
) -> None:
    marked = spawn(
        "marked", "test", SLEEPER, endpoint=NOWHERE, log=tmp_path / "m.log", env={"MARK": "a"}
    )
    started.append(marked)
    other = _spawn(tmp_path, started, SLEEPER)  # unmarked
    assert [s.pid for s in strays("MARK", "a", known=())] == [marked.pid]
    assert strays("MARK", "a", known=[marked]) == []
    assert strays("MARK", "b", known=()) == []
    assert other.pid not in [s.pid for s in strays("MARK", "a", known=())]
