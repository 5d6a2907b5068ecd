"""What ``harness compare`` and ``--baseline`` accept for a run, resolved to a run directory:

- a path to a run directory (one with a summary.json);
- ``latest``: the newest run in the history (of the same scenario, when one is known);
- ``latest-pass``: the newest of those whose badge is PASS;
- a git ref (a branch, a tag, ``HEAD~1``, a hash): the newest run recorded at that commit.

``exclude`` leaves one run out (the run being judged is never its own baseline). A name that
resolves to nothing is bad input: one line saying what was looked for and where.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import BadInputError
from harness.history.git import resolve_ref
from harness.history.index import HistoryIndex
from harness.history.row import SUMMARY_FILE, HistoryRow

__all__ = ["resolve_run"]


def resolve_run(
    spec: str,
    reports: Path,
    *,
    scenario: str | None = None,
    exclude: str | None = None,
    what: str = "run",
) -> Path:
    """The run directory ``spec`` names (see the module docstring). ``what`` starts the error
    messages (``BASELINE``)."""
    path = Path(spec)
    if path.is_dir():
        if not (path / SUMMARY_FILE).is_file():
            raise BadInputError(f"{what}: {spec} has no {SUMMARY_FILE} (not a finished run)")
        return path
    index = HistoryIndex(reports)
    of = f" of scenario {scenario}" if scenario else ""
    where = f"in the history of {reports}"
    # A row whose run directory has gone since (cleaned up, not in this CI cache) names nothing.
    rows = [
        row
        for row in index.rows(scenario, kind="run")
        if row.run != exclude and (reports / row.run / SUMMARY_FILE).is_file()
    ]
    if spec == "latest":
        return _first(rows, reports, f"{what}: no run{of} {where}")
    if spec == "latest-pass":
        passed = [row for row in rows if row.passed]
        return _first(passed, reports, f"{what}: no passing run{of} {where}")
    commit = resolve_ref(spec)
    if commit is None:
        raise BadInputError(
            f"{what}: {spec!r} is not a run directory, latest, latest-pass or a git ref"
        )
    at = [row for row in rows if row.git_commit == commit]
    return _first(at, reports, f"{what}: no run{of} at commit {commit[:12]} ({spec}) {where}")


def _first(rows: list[HistoryRow], reports: Path, message: str) -> Path:
    if not rows:
        raise BadInputError(message)
    return reports / rows[0].run
