"""The master's progress on stderr: in place on a terminal, a short line every few seconds in a
pipe, and messages always whole on a line of their own."""

from __future__ import annotations

import io
import os
import re

import pytest
from rich.console import Console

from harness.load.progress import PIPE_WIDTH, PREFIX, ProgressOutput

pytestmark = pytest.mark.unit

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG_FAULTS = ", ".join(f"fault-number-{i}" for i in range(20))  # about 330 characters


def line_at(second: int) -> str:
    return f"{second:6.1f}s/160.0s  spike 2/3  users 60  rps 523.0  err 0.4%  faults: {LONG_FAULTS}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def screen_of(raw: str) -> list[str]:
    """What a terminal shows: each carriage return or erase-line starts the line over."""
    shown: list[str] = []
    for physical in ANSI.sub("\r", raw).split("\n"):
        shown.append(physical.split("\r")[-1] if "\r" in physical else physical)
    return [s for s in shown if s]


def test_on_a_terminal_160_updates_leave_one_line_cut_to_the_width() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    out = ProgressOutput(buffer, console=console)
    for second in range(1, 161):
        out.update(line_at(second))
    out.close()
    raw = buffer.getvalue()
    assert raw.count("\n") == 1  # the last state, ended once at close
    (shown,) = screen_of(raw)
    assert shown.startswith(PREFIX + " 160.0s/160.0s")
    assert len(shown) <= 100
    assert shown.endswith("…")


def test_on_a_terminal_messages_print_above_the_line_which_stays_last() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    out = ProgressOutput(buffer, console=console)
    out.update(line_at(1))
    out.say("guard breached: ratio(status >= 500) > 90% for 15s")
    out.update(line_at(2))
    out.close()
    out.say("load over after 2.0s: 100 requests, err 0.0%")
    assert screen_of(buffer.getvalue()) == [
        PREFIX + "guard breached: ratio(status >= 500) > 90% for 15s",
        PREFIX + line_at(2)[: 100 - len(PREFIX) - 1] + "…",
        PREFIX + "load over after 2.0s: 100 requests, err 0.0%",
    ]


def test_in_a_pipe_a_short_line_every_five_seconds() -> None:
    read_fd, write_fd = os.pipe()  # a real pipe: not a terminal, as in CI
    clock = FakeClock()
    with os.fdopen(write_fd, "w") as stream:
        out = ProgressOutput(stream, clock=clock)
        assert not out.in_place
        for second in range(1, 161):
            clock.now = float(second)
            out.update(line_at(second))
        out.close()
    with os.fdopen(read_fd) as pipe:
        lines = pipe.read().splitlines()
    assert len(lines) == 32  # 160 s at one line per 5 s, the first at once
    assert all(len(line) <= PIPE_WIDTH for line in lines)
    assert lines[0].startswith(PREFIX + "1.0s/160.0s")
    assert lines[0].endswith("…")
    assert lines[1].startswith(PREFIX + "6.0s/160.0s")  # no padding in a log


def test_in_a_pipe_messages_are_never_cut_nor_held_back() -> None:
    buffer = io.StringIO()  # not a terminal
    clock = FakeClock()
    out = ProgressOutput(buffer, clock=clock)
    out.update("short")
    message = "could not revert a fault: " + "x" * 200
    out.say(message)
    out.update("held back: less than 5 s since the last")
    assert buffer.getvalue().splitlines() == [PREFIX + "short", PREFIX + message]


def test_a_closed_stream_does_not_raise() -> None:
    buffer = io.StringIO()
    out = ProgressOutput(buffer)
    buffer.close()
    out.update("x")
    out.say("y")
    out.close()
