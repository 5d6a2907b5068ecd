"""Helpers shared by every test tier."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Generator
from pathlib import Path
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


# --- the unit tier collects only its own directory ---------------------------------------------

UNIT_DIR = Path(__file__).resolve().parent / "unit"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m unit`` alone, skip the other tiers' directories: importing their modules was
    most of the unit tier's collection time, only to deselect every test in them. Safe because
    no unit test lives elsewhere, which every full collection checks (below)."""
    if config.option.markexpr != "unit":
        return None
    path = collection_path.resolve()
    if path == UNIT_DIR or UNIT_DIR in path.parents or path in UNIT_DIR.parents:
        return None
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = [
        item.nodeid
        for item in items
        if item.get_closest_marker("unit") and UNIT_DIR not in item.path.resolve().parents
    ]
    if misplaced:
        raise pytest.UsageError(
            f"unit tests outside {UNIT_DIR} (`-m unit` collects only there): {misplaced[:5]}"
        )


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which turns -n into workers
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``-m unit`` alone runs on every CPU (up to four), through pytest-xdist: the tier every
    change runs is CPU-bound, and one process left the other core of a small machine idle.
    ``-n 0`` keeps it in one process (as ``--pdb`` does); ``-n N`` picks the count. Never for the
    other tiers, whose tests time real load and share one stack per session."""
    if config.option.markexpr != "unit" or getattr(config.option, "numprocesses", 0) is not None:
        return  # another selection, -n given, or pytest-xdist not installed (or -p no:xdist)
    if hasattr(config, "workerinput") or "PYTEST_XDIST_WORKER" in os.environ:
        return  # a worker: it runs its share itself (asking for workers here would never end)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cpus or 1) > 1:
        config.option.numprocesses = min(cpus or 1, 4)


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
