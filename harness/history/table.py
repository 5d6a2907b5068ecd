"""``harness history``: the rows as a Rich table that fits 100 columns, or as JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Final

from rich.table import Table

from harness.history.row import HistoryRow
from harness.verdict.units import measured, number

__all__ = ["history_json", "history_table"]

# Three significant digits: a history is read for its trend, and every column must fit in 100.
_DIGITS: Final = 3


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{number(value, _DIGITS)}ms"
    return measured(value, unit, _DIGITS)


def _recovery(row: HistoryRow) -> str:
    """The slowest recovery of the run: the figure a gate cares about first."""
    times = [v for k, v in row.figures.items() if k.startswith("recovery:")]
    if not times:
        return "-"
    if any(v is None for v in times):
        return "never"
    return measured(max(v for v in times if v is not None), "s", _DIGITS)


def _capacity(row: HistoryRow) -> str:
    values = [v for k, v in row.figures.items() if k.startswith("capacity:") and v is not None]
    return "-" if not values else " / ".join(number(v, _DIGITS) for v in values)


def history_table(rows: Sequence[HistoryRow], title: str) -> Table:
    """Newest first: when (UTC), scenario, commit, badge, whole-run throughput, p99, 503 share,
    slowest recovery, capacity. Long scenario and run names are cut, never wrapped."""
    table = Table(title=title, title_justify="left")
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("scenario", max_width=22, overflow="ellipsis", no_wrap=True)
    table.add_column("commit", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for column in ("rps", "p99", "503", "recovery", "capacity/s"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        rps = row.figure("total:rps")
        table.add_row(
            _when(row.started_at),
            row.scenario,
            (row.git_commit or "-")[:8],
            row.outcome,
            "-" if rps is None else number(rps, _DIGITS),
            "-" if row.kind == "capacity" else _value(row.figure("total:p99_ms"), "ms"),
            "-" if row.kind == "capacity" else _value(row.figure("total:ratio_503"), "%"),
            _recovery(row),
            _capacity(row),
        )
    return table


def history_json(rows: Sequence[HistoryRow]) -> list[dict[str, Any]]:
    """The rows as plain JSON values, newest first (figures and SLOs as stored)."""
    out = []
    for row in rows:
        data = asdict(row)
        data["figures"] = dict(row.figures)
        data["slos"] = {k: dict(v) for k, v in row.slos.items()}
        data["passed"] = row.passed
        out.append(data)
    return out
