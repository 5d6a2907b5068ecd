"""Helpers shared by every test tier."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import NoReturn

import pytest
import session_cleanup

pytest_plugins = ["summary_schema_check"]  # every summary.json a test writes matches its schema

_TRUTHY = frozenset({"1", "true", "yes", "on"})


def require_or_skip(reason: str, env_var: str) -> NoReturn:
    """Skip because something a test needs is missing, unless ``env_var`` says it is required.

    Locally a missing Toxiproxy binary, Docker engine or Prometheus binary is a reason to skip;
    in CI, which sets ``HARNESS_REQUIRE_TOXIPROXY=1``, ``HARNESS_REQUIRE_DOCKER=1`` and
    ``HARNESS_REQUIRE_PROMETHEUS=1``, the same absence must fail the run instead of letting a
    green build hide that nothing was tested.
    """
    if os.environ.get(env_var, "").strip().lower() in _TRUTHY:
        pytest.fail(f"{reason} (required because {env_var} is set)", pytrace=False)
    pytest.skip(f"{reason} (set {env_var}=1 to make this a failure)")


@pytest.fixture(name="require_or_skip", scope="session")
def require_or_skip_fixture() -> Callable[[str, str], NoReturn]:
    """:func:`require_or_skip` as a fixture, so tests in any directory can use it without
    importing this conftest (which pytest does not support reliably)."""
    return require_or_skip


# --- a session that leaves nothing behind (tests/session_cleanup.py) -----------------------------

_SWEPT = pytest.StashKey[list[str]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Sweep what killed sessions left, open this session's record, mark every process the
    tests start with it, and make SIGTERM stop the session the way Ctrl-C does: fixtures torn
    down, stacks stopped (by default SIGTERM ends Python at once, finalizers not run)."""
    directory = session_cleanup.registry_dir()
    session.config.stash[_SWEPT] = session_cleanup.sweep_dead_sessions(directory)
    record = session_cleanup.SessionRecord(directory)
    session_cleanup.set_current(record)
    os.environ[session_cleanup.MARK_ENV] = str(record.path)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        # A session started in the background of a non-interactive shell has SIGINT ignored,
        # and every process it starts inherits that (Python leaves an ignored SIGINT ignored):
        # a test that stops a child with SIGINT would watch it sleep through. Ctrl-C as usual.
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Once: a second SIGTERM during the teardown must not cut it short (a third party that
    # insists has SIGKILL, and the next session sweeps).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, object, object]:
    """After every fixture's teardown, even one that raised (the teardown runs in this hook):
    stop whatever is still marked as this session's. Innermost, so the summary can say it."""
    try:
        return (yield)
    finally:
        _close_record(session)


def _close_record(session: pytest.Session) -> None:
    record = session_cleanup.current()
    if record is None:
        return
    left = record.close()
    session_cleanup.set_current(None)
    if left:
        session.config.stash[_SWEPT] = [
            *session.config.stash.get(_SWEPT, []),
            *(f"left by this session: {line}" for line in left),
        ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    swept = terminalreporter.config.stash.get(_SWEPT, [])
    if swept:
        terminalreporter.section("swept (left running by a test session)")
        for line in swept:
            terminalreporter.write_line(line)
