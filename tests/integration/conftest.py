"""The local stack for real, once per session, on free ports and in its own state directory.

The stack is brought up with the ``harness up`` command in a child process, as a user would, so
every test that drives it from here (a ``LocalStack`` reading the state file) does so from a
different process than the one that started it. It is always brought down at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from revert_board import BOARD
from run_support import Target, stop_leftover_runs
from stack_support import RunningStack, heal, own_stack


@pytest.fixture(autouse=True)
def _no_run_left_behind() -> Iterator[None]:
    """A test that fails half-way leaves no `harness run` of its own running after it."""
    yield
    stop_leftover_runs()


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    with own_stack("harness-it-stack-") as running:
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The revert matrix (test_revert_matrix.py) with its count of cases, whatever ``-r`` says,
    when any of its cells ran in this session."""
    lines = BOARD.render()
    if lines:
        terminalreporter.section("revert matrix")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def stack(local_stack: RunningStack) -> Iterator[RunningStack]:
    """The session stack, healthy at the start of the test and healed again after it: every
    instance running and ready, no toxics, maintenance off."""
    heal(local_stack)
    yield local_stack
    stop_leftover_runs()  # before healing: a run left going could inject its faults again
    heal(local_stack)


@pytest.fixture
def target() -> Iterator[Target]:
    """A tiny HTTP/1.1 server of the test's own on 127.0.0.1 (run_support.Target)."""
    server = Target()
    yield server
    server.close()
