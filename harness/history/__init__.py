"""The run history of a reports directory: a SQLite index with a row per run and capacity
search (:mod:`~.index`), the row read from a run directory's files (:mod:`~.row`), the one
call that records a finished run (:mod:`~.record`), and the resolution of names such as
``latest-pass`` or a git ref to a run (:mod:`~.resolve`).

Sits above the report (it reads what the report wrote) and below the run, which calls
:func:`record_run` once at its end.
"""

from __future__ import annotations

from harness.history.git import GitInfo, git_info, resolve_ref
from harness.history.index import INDEX_FILE, HistoryIndex, previous_runs
from harness.history.record import record_run
from harness.history.resolve import resolve_run
from harness.history.row import HistoryRow, figure_kind, read_row

__all__ = [
    "INDEX_FILE",
    "GitInfo",
    "HistoryIndex",
    "HistoryRow",
    "figure_kind",
    "git_info",
    "previous_runs",
    "read_row",
    "record_run",
    "resolve_ref",
    "resolve_run",
]
