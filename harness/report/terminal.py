"""The verdict at the end of ``harness run`` (and ``harness report``): a Rich table on a terminal,
plain aligned text otherwise (CI logs, pipes), where box drawing and colour codes only get in the
way of grep.

Both fit the width they are given (:data:`PLAIN_WIDTH` for a pipe) and break lines only at spaces:
a name (an SLO's, a fault's) is never split mid-word; the free text of the last column (the
detail) wraps under itself, and a value too long for any line is cut with an ellipsis.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.compare import comparison_table
from harness.report import fmt
from harness.report.data import RunReport
from harness.report.model import Outcome, verdict_outcome

__all__ = ["PLAIN_WIDTH", "check_rows", "plain_lines", "show", "totals_line"]

# A CI log is read in a browser or a pager: lines no wider than a laptop terminal.
PLAIN_WIDTH: Final = 100
# The least room the last column gets beside the others before it moves under its row.
_MIN_LAST: Final = 24
_GAP: Final = "  "

_STYLE: Final = {
    Outcome.PASS: "bold white on green",
    Outcome.FAIL: "bold white on red",
    Outcome.ABORTED: "bold white on dark_orange3",
    Outcome.INCOMPLETE: "bold white on magenta",
}


def _verdict_rows(report: RunReport) -> list[tuple[str, str, str, str, str, str]]:
    """(result, SLO, window, observed, threshold, detail) per SLO, judged or not."""
    rows = []
    for v in report.judgement.verdicts:
        result = verdict_outcome(v).upper()
        if result == "NO DATA" and v.passed:
            result = "NO DATA (PASS)"  # the SLO's no_data: pass
        observed, threshold = fmt.measured_pair(v.observed, v.threshold, v.unit)
        if v.observed is None:  # "n/a" is an outcome of its own: no value is "none" else
            observed = "n/a" if result == "N/A" else "none"
        rows.append(
            (result, v.name, v.window_label, observed, f"{v.comparator} {threshold}", v.detail)
        )
    rows += [("SKIP", s.name, "", fmt.NA, "", "not judged") for s in report.unjudged]
    return rows


def _recovery_rows(report: RunReport) -> list[tuple[str, str, str, str]]:
    """(fault, first impact, recovery, failed requests) per assessed fault."""
    return [
        (
            # Another fault in force before it recovered: the time may be that fault's.
            f"{r.fault} [overlaps {', '.join(r.overlapping)}]" if r.overlapping else r.fault,
            "no impact seen"
            if r.time_to_first_impact_s is None
            else fmt.duration(r.time_to_first_impact_s),
            fmt.duration(r.recovery_time_s) if r.recovered_at is not None else "never recovered",
            fmt.count(r.failed_requests),
        )
        for r in report.recoveries
    ]


def _headline(report: RunReport) -> str:
    return (
        f"{report.outcome.value}  {report.scenario}  ({report.status.value}, "
        f"exit {report.exit_code}, {fmt.duration(report.duration)})"
    )


def totals_line(report: RunReport) -> str:
    """The run's counts, from the record and over the window whole-run SLOs judge: the same
    numbers as summary.json's ``totals`` and a ``count(...)`` SLO."""
    t = report.totals
    line = (
        f"totals: {fmt.count(t.attempts)} attempts, {fmt.count(t.requests)} requests, "
        f"{fmt.count(t.failed)} failed, {fmt.count(t.errors)} without response"
        f" ({report.failed_rule})"
    )
    if report.outside_window:
        line += f" ({fmt.count(report.outside_window)} more outside the phases, not judged)"
    return line


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width``, broken at spaces; a word longer than a line is
    cut with an ellipsis rather than split."""
    lines = textwrap.wrap(
        text,
        width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [_clip(line, width) for line in lines] or [""]


def _columns(rows: Sequence[Sequence[str]], header: Sequence[str], width: int) -> list[str]:
    """Aligned columns within ``width``: the last one wraps under itself; when the others leave
    it too little room, it goes on lines of its own under its row."""
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lead = sum(widths) + len(_GAP) * len(widths)
    beside = width - lead >= _MIN_LAST
    lines = []
    for row in table:
        first = _GAP.join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        last = row[-1]
        if beside:
            wrapped = _wrap(last, width - lead) if last else [""]
            lines.append(_clip(f"{first}{_GAP}{wrapped[0]}".rstrip(), width))
            lines += [" " * lead + more for more in wrapped[1:]]
        else:
            lines.append(_clip(first.rstrip(), width))
            if last:
                lines += _wrap(f"    {last}", width, indent="    ")
    return lines


def plain_lines(report: RunReport, width: int = PLAIN_WIDTH) -> list[str]:
    """The same content as :func:`show`, as plain text lines no longer than ``width``."""
    said = [_headline(report), f"load: {report.load_model.text}", totals_line(report)]
    said += [f"aborted by guard: {reason}" for reason in report.aborted_by]
    if report.error:
        said.append(f"error: {report.error}")
    said += [f"note: {note}" for note in report.notes]
    lines = [line for text in said for line in _wrap(text, width, indent="  ")]
    verdicts = _verdict_rows(report)
    if verdicts:
        lines.append("")
        lines += _columns(
            verdicts, ("RESULT", "SLO", "WINDOW", "OBSERVED", "THRESHOLD", "DETAIL"), width
        )
    recoveries = _recovery_rows(report)
    if recoveries:
        lines.append("")
        lines += _columns(
            recoveries, ("FAULT", "FIRST IMPACT", "RECOVERY", "FAILED REQUESTS"), width
        )
    checks = check_rows(report)
    if checks:
        lines.append("")
        lines += _columns(checks, ("CHECK", "BEFORE", "AFTER", "DELTA", "ERROR"), width)
    return lines


def check_rows(report: RunReport) -> list[tuple[str, str, str, str, str]]:
    """One row per post-run check: its readings, and why one is missing."""

    def shown(value: float | None) -> str:
        return "none" if value is None else fmt.number(value)

    return [
        (c.name, shown(c.before), shown(c.after), shown(c.delta), "; ".join(c.errors))
        for c in report.checks
    ]


def _table(title: str, columns: Sequence[tuple[str, str]]) -> Table:
    """A table whose columns keep their words whole: ``"name"`` columns never wrap (Rich
    ellipsizes one only if the row cannot fit otherwise), ``"value"`` columns are right-aligned
    and never wrap, ``"text"`` columns wrap at spaces."""
    table = Table(title=title, title_justify="left")
    for name, kind in columns:
        table.add_column(
            name,
            justify="right" if kind == "value" else "left",
            no_wrap=kind != "text",
            overflow="ellipsis",
            ratio=1 if kind == "text" else None,
        )
    return table


def _rich(report: RunReport, console: Console) -> None:
    headline = Text()
    headline.append(f" {report.outcome.value} ", style=_STYLE[report.outcome])
    headline.append(f"  {_headline(report).split('  ', 1)[1]}")
    console.print(headline)
    console.print(Text(f"load: {report.load_model.text}"))
    console.print(Text(totals_line(report)))
    for reason in report.aborted_by:
        console.print(Text(f"aborted by guard: {reason}", style="dark_orange3"))
    if report.error:
        console.print(Text(f"error: {report.error}", style="red"))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    verdicts = _verdict_rows(report)
    if verdicts:
        table = _table(
            "SLOs",
            [
                ("Result", "name"),
                ("SLO", "name"),
                ("Observed", "value"),
                ("Threshold", "value"),
                ("Detail", "text"),
            ],
        )
        for result, name, window, observed, threshold, detail in verdicts:
            style = {
                "PASS": "green",
                "SKIP": "dim",
                "N/A": "dim",
                "NO DATA (PASS)": "yellow",
            }.get(result, "bold red")
            # The window under the name, not a column of its own: 100 columns leave the detail
            # room to read only without one.
            slo = Text(name)
            if window:
                slo.append(f"\n{window}", style="dim")
            table.add_row(
                Text(result, style=style), slo, Text(observed), Text(threshold), Text(detail)
            )
        console.print(table)
    recoveries = _recovery_rows(report)
    if recoveries:
        table = _table(
            "Recovery",
            [
                ("Fault", "name"),
                ("First impact", "value"),
                ("Recovery", "value"),
                ("Failed requests", "value"),
            ],
        )
        for fault, impact, recovery, failed in recoveries:
            style = "bold red" if recovery == "never recovered" else ""
            table.add_row(Text(fault), Text(impact), Text(recovery, style=style), Text(failed))
        console.print(table)
    checks = check_rows(report)
    if checks:
        table = _table(
            "Checks",
            [
                ("Check", "name"),
                ("Before", "value"),
                ("After", "value"),
                ("Delta", "value"),
                ("Error", "text"),
            ],
        )
        for row in checks:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)


def show(report: RunReport, console: Console | None = None) -> None:
    """Print the verdict: Rich when ``console`` writes to a terminal (in its width), plain text
    lines of at most :data:`PLAIN_WIDTH` otherwise."""
    console = console or Console()
    if console.is_terminal:
        _rich(report, console)
    else:
        # Through the console's file, not print(): tests and callers redirect that one.
        console.file.write("\n".join(plain_lines(report)) + "\n")
    if report.comparison is not None:  # harness run --baseline: the figures side by side
        console.print(comparison_table(report.comparison), width=min(console.width, 100))
