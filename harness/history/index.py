"""The run history: one SQLite file in the reports directory, one row per run directory.

``reports/history.sqlite`` holds what :mod:`~harness.history.row` reads from each run directory
(and capacity directory) under ``reports/``, so a query over many runs does not open every run
store. It is an index, never the record: every row can be read again from its run directory, and
an index that is missing, damaged or of another format is rebuilt from them (:meth:`rebuild`),
which is also what keeping only the run directories between CI jobs relies on.

The file uses SQLite's rollback journal, not WAL: it stays one file, which a CI cache or artifact
can carry alone. Two runs ending at once are serialised by SQLite's lock (with a timeout); a
run directory's row is replaced when it is written again (``harness report`` rebuilding it).

Columns beside the JSON ones are there for people with ``sqlite3`` at hand: the scenario, the
commit, the badge, and the whole-run throughput, p99 and 503 share.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from harness.errors import BadInputError, HarnessError, InfrastructureError
from harness.history.row import SUMMARY_FILE, HistoryRow, read_row

__all__ = ["INDEX_FILE", "INDEX_FORMAT", "HistoryIndex", "previous_runs", "scan"]

INDEX_FILE: Final = "history.sqlite"
INDEX_FORMAT: Final = 1
_BUSY_TIMEOUT_S: Final = 15.0

_SCHEMA: Final = """
CREATE TABLE runs (
    run TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    scenario TEXT NOT NULL,
    scenario_hash TEXT,
    git_commit TEXT,
    git_branch TEXT,
    started_at REAL NOT NULL,
    stack TEXT NOT NULL,
    outcome TEXT NOT NULL,
    passed INTEGER NOT NULL,
    exit_code INTEGER,
    rps REAL,
    p99_ms REAL,
    ratio_503 REAL,
    figures TEXT NOT NULL,
    slos TEXT NOT NULL
);
CREATE INDEX runs_by_scenario ON runs (scenario, started_at)
"""
_COLUMNS: Final = (
    "run, kind, scenario, scenario_hash, git_commit, git_branch, started_at, stack, outcome, "
    "passed, exit_code, rps, p99_ms, ratio_503, figures, slos"
)
# Built from this module's constants only; every value goes through a ``?`` parameter.
_SELECT: Final = "SELECT " + _COLUMNS + " FROM runs"  # noqa: S608
_MARKS: Final = ", ".join("?" * len(_COLUMNS.split(", ")))
_INSERT: Final = f"INSERT OR REPLACE INTO runs ({_COLUMNS}) VALUES ({_MARKS})"  # noqa: S608


class HistoryIndex:
    """The index of the reports directory ``reports``."""

    def __init__(self, reports: Path) -> None:
        self.reports = reports

    @property
    def path(self) -> Path:
        return self.reports / INDEX_FILE

    # --- reading ------------------------------------------------------------------------------

    def rows(
        self, scenario: str | None = None, *, kind: str | None = None, limit: int | None = None
    ) -> list[HistoryRow]:
        """The rows, newest first; of one scenario and kind when given. An index that is
        missing or unreadable is rebuilt from the run directories first."""
        if not self.reports.is_dir():
            return []  # nothing recorded yet; reading never creates the directory
        self.ensure()
        where, args = [], []
        if scenario is not None:
            where.append("scenario = ?")
            args.append(scenario)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, run DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as conn:
            return [_row(record) for record in conn.execute(sql, args)]

    def ensure(self) -> int | None:
        """Rebuild the index when it is missing or unreadable; how many rows that made, or
        None when it was fine."""
        if self.path.is_file() and self._readable():
            return None
        return self.rebuild()

    def _readable(self) -> bool:
        try:
            with self._connect() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute("SELECT run FROM runs LIMIT 1").fetchall()
        except (sqlite3.Error, InfrastructureError):
            return False
        return bool(version == INDEX_FORMAT)

    # --- writing ------------------------------------------------------------------------------

    def add(self, row: HistoryRow) -> None:
        """Insert or replace ``row`` (rebuilding a missing index first, so it is complete)."""
        self.ensure()
        with self._connect() as conn:
            conn.execute(_INSERT, _values(row))

    def rebuild(self) -> int:
        """A new index from every run and capacity directory under ``reports``; the number of
        rows. Written beside and renamed over the old one, so a reader never sees half."""
        rows = list(scan(self.reports))
        try:
            self.reports.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".history-", suffix=".sqlite", dir=self.reports)
            os.close(fd)
        except OSError as exc:
            raise InfrastructureError(
                f"history index {self.path}: cannot write it: {exc.strerror or exc}"
            ) from None
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("BEGIN")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany(
                    _INSERT,
                    [_values(row) for row in rows],
                )
                conn.execute(f"PRAGMA user_version = {INDEX_FORMAT}")
                conn.execute("COMMIT")
            finally:
                conn.close()
            os.replace(tmp, self.path)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise InfrastructureError(
                f"history index {self.path}: cannot write it: {exc}"
            ) from None
        return len(rows)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise InfrastructureError(f"history index {self.path}: {exc}") from None
        try:
            yield conn
        except sqlite3.Error as exc:
            raise InfrastructureError(f"history index {self.path}: {exc}") from None
        finally:
            conn.close()


def scan(reports: Path) -> Iterator[HistoryRow]:
    """The rows of the run and capacity directories directly under ``reports``, skipping what
    is not one (or not finished: no summary.json yet)."""
    try:
        children = sorted(p for p in reports.iterdir() if p.is_dir())
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InfrastructureError(f"reports directory {reports}: {exc.strerror or exc}") from None
    for child in children:
        if not (child / SUMMARY_FILE).is_file():
            continue
        try:
            yield read_row(child)
        except HarnessError:
            continue  # a damaged summary: that run is left out, the others indexed


def _values(row: HistoryRow) -> tuple[Any, ...]:
    return (
        row.run,
        row.kind,
        row.scenario,
        row.scenario_hash,
        row.git_commit,
        row.git_branch,
        row.started_at,
        row.stack,
        row.outcome,
        int(row.passed),
        row.exit_code,
        row.figure("total:rps"),
        row.figure("total:p99_ms"),
        row.figure("total:ratio_503"),
        json.dumps(dict(row.figures), sort_keys=True),
        json.dumps({k: dict(v) for k, v in row.slos.items()}, sort_keys=True),
    )


def _row(record: Sequence[Any]) -> HistoryRow:
    (run, kind, scenario, digest, commit, branch, started, stack, outcome, _, code) = record[:11]
    figures, slos = record[14], record[15]
    try:
        loaded_figures = json.loads(figures)
        loaded_slos = json.loads(slos)
    except ValueError:
        raise BadInputError(f"history index: row {run}: damaged JSON") from None
    return HistoryRow(
        run=run,
        kind=kind,
        scenario=scenario,
        scenario_hash=digest,
        git_commit=commit,
        git_branch=branch,
        started_at=started,
        stack=stack,
        outcome=outcome,
        exit_code=code,
        figures=loaded_figures,
        slos=loaded_slos,
    )


def previous_runs(root: Path, scenario: str, limit: int = 20) -> tuple[HistoryRow, ...]:
    """The latest ``limit`` runs of ``scenario`` in the history beside the run directory
    ``root`` (``root`` itself left out), newest first; none when the history cannot be read
    (a report is never lost for its trends)."""
    try:
        rows = HistoryIndex(root.parent).rows(scenario, kind="run", limit=limit + 1)
    except HarnessError:
        return ()
    return tuple(row for row in rows if row.run != root.name)[:limit]
