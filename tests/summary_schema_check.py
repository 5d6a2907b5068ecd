"""A pytest plugin: every ``summary.json`` a test leaves behind matches the published schema
(``harness/report/summary.schema.json``), so no test can pass while the harness writes a summary
a CI's own validator would reject.

After each test, the summaries under the temporary directories it created are validated: its own
``tmp_path``, and any directory a fixture made with ``tmp_path_factory`` while it ran (a module's
shared run). Those shared directories are scanned again after every later test of the same
module, since later tests may write their runs into them, and all of them once more at the first
test of each new module (a session fixture's directory, a module fixture's teardown). A summary
is validated again only when it changed. A mismatch fails the test at teardown, naming the file
and each schema error with its JSON path.

Registered by ``pytest_plugins`` in ``tests/conftest.py``; ``-p summary_schema_check`` loads it
into any other pytest run (the tests of this plugin do so in a pytester run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

__all__ = ["summary_problems"]

SUMMARY = "summary.json"
# A run directory sits a few levels under a temporary directory (tmp/reports/<run>/summary.json);
# deeper is a stack's state (database files), which never holds a summary and costs time to walk.
_MAX_DEPTH = 4
_NOT_A_RUN = "PG_VERSION"  # a PostgreSQL data directory: thousands of files, no summary
_SHOWN_ERRORS = 5


@cache
def _validator() -> Any:
    # deferred: jsonschema and the harness load only once a test has written a summary
    import jsonschema

    from harness.report.summary import schema

    return jsonschema.Draft202012Validator(schema())


def summary_problems(path: Path) -> list[str]:
    """What is wrong with the summary at ``path`` against the schema, one line each ("" none)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{path}: not a JSON document: {exc}"]
    if isinstance(document, dict) and "searches" in document and "slos" not in document:
        # A capacity search's own summary (harness/capacity/report.py): a different document,
        # whose runs each have a run summary of their own, validated here too.
        return []
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    lines = [f"{path}: at {e.json_path}: {e.message[:300]}" for e in errors[:_SHOWN_ERRORS]]
    if len(errors) > _SHOWN_ERRORS:
        lines.append(f"{path}: ... and {len(errors) - _SHOWN_ERRORS} more schema errors")
    return lines


def _summaries_under(root: Path, depth: int = _MAX_DEPTH) -> Iterator[Path]:
    try:
        entries = list(os.scandir(root))
    except OSError:  # removed by its test, or not readable: nothing to check there
        return
    if any(e.name == _NOT_A_RUN for e in entries):
        return
    for entry in entries:
        if entry.name == SUMMARY and entry.is_file(follow_symlinks=False):
            yield Path(entry.path)
        elif depth > 0 and entry.is_dir(follow_symlinks=False):
            yield from _summaries_under(Path(entry.path), depth - 1)


@dataclass
class _Tracker:
    basetemp: Path
    # fixture directories later tests may write into -> the test module they were made in
    shared: dict[Path, Path] = field(default_factory=dict)
    module: Path | None = None  # the module of the last test checked
    checked: dict[Path, tuple[int, int]] = field(default_factory=dict)  # path -> (mtime, size)

    def children(self) -> set[str]:
        # Paths as strings: the base directory holds one directory per test so far, and making
        # a Path of each, twice per test, cost the unit tier more than any test did.
        try:
            return {
                e.path
                for e in os.scandir(self.basetemp)
                # not the "<name>current" links pytest keeps to the newest of each name
                if e.is_dir(follow_symlinks=False)
            }
        except OSError:
            return set()

    def problems(self, created: set[str], own: Path | None, module: Path) -> list[str]:
        fresh = {Path(path) for path in created}
        for root in fresh - {own}:
            self.shared.setdefault(root, module)
        if module == self.module:
            # Rescanning every shared directory after every test cost the unit tier more than
            # the rest of this check: after a test, its own module's are enough.
            roots = fresh | {root for root, made_in in self.shared.items() if made_in == module}
        else:
            roots = fresh | set(self.shared)
            self.module = module
        lines: list[str] = []
        for root in sorted(roots):
            for path in _summaries_under(root):
                try:
                    stat = path.stat()
                except OSError:
                    continue
                seen = (stat.st_mtime_ns, stat.st_size)
                if self.checked.get(path) == seen:
                    continue
                found = summary_problems(path)
                if found:
                    lines += found
                else:  # a bad one is reported again by every test that leaves it in place
                    self.checked[path] = seen
        return lines


_TRACKER = pytest.StashKey[_Tracker]()
# Only a test with one of these among its fixtures (its own or its fixtures', at any depth) can
# make a directory under the base temporary directory; listing that directory before and after
# every other test as well was most of this plugin's cost.
_TEMP_DIR_FIXTURES = frozenset(
    {"tmp_path", "tmpdir", "tmp_path_factory", "tmpdir_factory", "pytester", "testdir"}
)


@pytest.fixture(autouse=True)
def _every_summary_matches_its_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    # Autouse fixtures are set up first, so this teardown runs after the test's other
    # function-scoped fixtures: what they write on their way out is checked too.
    makes_dirs = not _TEMP_DIR_FIXTURES.isdisjoint(request.fixturenames)
    stash = request.config.stash
    if _TRACKER not in stash:
        # looked up here, not asked for: asking would put it among every test's fixtures
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        stash[_TRACKER] = _Tracker(factory.getbasetemp())
    tracker = stash[_TRACKER]
    before = tracker.children() if makes_dirs else set()
    yield
    own = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    created = tracker.children() - before if makes_dirs else set()
    problems = tracker.problems(created, own, request.node.path)
    if problems:
        pytest.fail(
            "summary.json does not match harness/report/summary.schema.json:\n"
            + "\n".join(problems),
            pytrace=False,
        )
