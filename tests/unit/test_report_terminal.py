"""The verdict table at the end of a run: Rich on a terminal, plain text in a log."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from harness.report.data import RunReport, collect
from harness.report.terminal import plain_lines, show

from .test_report_synthetic import build_run, judgement

pytestmark = pytest.mark.unit


@pytest.fixture
def report(tmp_path: Path) -> RunReport:
    return collect(build_run(tmp_path), judgement())


def test_a_pipe_gets_plain_text_without_escape_codes_or_boxes(report: RunReport) -> None:
    out = io.StringIO()
    show(report, Console(file=out, width=200))  # a StringIO is not a terminal
    text = out.getvalue()
    assert "\x1b[" not in text
    assert not set("┏━┃│╭") & set(text)
    lines = text.splitlines()
    assert lines[0].startswith("FAIL  flash-sale  (completed, exit 1, 45.5s)")
    assert any(line.split()[:2] == ["FAIL", "spike-503"] for line in lines)
    assert any(line.split()[:2] == ["PASS", "p99-warmup"] for line in lines)
    assert any(line.split()[:2] == ["SKIP", "recovery"] for line in lines)
    assert any("slow-db" in line and "never recovered" in line for line in lines)


def test_plain_columns_line_up(report: RunReport) -> None:
    lines = plain_lines(report)
    header = next(line for line in lines if line.startswith("RESULT"))
    rows = [line for line in lines if line.split()[:1] in (["FAIL"], ["PASS"], ["SKIP"])][1:]
    column = header.index("OBSERVED")
    for row in rows:
        assert row[column - 2 : column] == "  "  # every row has the gap before the column


def test_a_terminal_gets_a_rich_table(report: RunReport) -> None:
    out = io.StringIO()
    show(report, Console(file=out, force_terminal=True, width=160, color_system="standard"))
    text = out.getvalue()
    assert "\x1b[" in text  # styled
    for name in ("spike-503", "no-500s", "p99-warmup", "kill-app-1", "never recovered"):
        assert name in text


def test_markup_in_names_is_printed_as_is(tmp_path: Path) -> None:
    from .test_report_synthetic import FakeVerdict

    odd = FakeVerdict(
        "[bold]x[/bold]", "count(status == 500) == 0", "whole run", 0.0, 0.0, "==", "", True
    )
    report = collect(build_run(tmp_path), judgement(verdicts=(odd,)))
    out = io.StringIO()
    show(report, Console(file=out, force_terminal=True, width=160))
    assert "[bold]x[/bold]" in out.getvalue()


# --- widths: 100 columns, words whole ------------------------------------------------------------

LONG_NAMES = (
    "clients-wait-out-retry-after",
    "retry-after-on-503s-during-the-spike",
    "cooldown-available-after-every-fault",
)
# A detail as long as the verdict writes them, with a token no line can hold whole.
LONG_DETAIL = (
    "20,981 of 21,004 responses were errors (no response or 5xx) over the window from the "
    "injection of kill-app-1 to the end of the cool-down; the earliest retry came 0.2708s "
    "early and 12 retries followed a 503 without Retry-After " + "x" * 140
)


def long_report(tmp_path: Path) -> RunReport:
    from .test_report_synthetic import FakeVerdict

    verdicts = tuple(
        FakeVerdict(
            name,
            f"ratio(status == 503) < 5% during phase spike  # {name}",
            "phase spike",
            0.04808,
            0.05,
            "<",
            "%",
            i % 2 == 0,
            LONG_DETAIL,
        )
        for i, name in enumerate(LONG_NAMES)
    )
    return collect(
        build_run(tmp_path, error="the Locust master exited " + "(signal 9) " * 30),
        judgement(verdicts=verdicts),
    )


def _words_whole(lines: list[str]) -> None:
    for name in LONG_NAMES:
        assert any(name in line for line in lines), f"{name} broken across lines"
    for line in lines:
        # No fragment of a name on a line of its own: a name is on its line whole or not at all.
        for name in LONG_NAMES:
            for cut in range(6, len(name) - 5):
                head, tail = name[:cut], name[cut:]
                assert not (line.rstrip(" │┃").endswith(head) and name not in line), (line, name)
                assert not (line.lstrip(" │┃").startswith(tail) and name not in line), (line, name)


def test_the_rich_table_fits_100_columns_and_keeps_slo_names_whole(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    show(long_report(tmp_path), console)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    _words_whole(lines)
    assert any("4.808%" in line and "< 5%" in line for line in lines)


def test_piped_lines_are_at_most_100_characters_and_keep_words_whole(tmp_path: Path) -> None:
    out = io.StringIO()
    show(long_report(tmp_path), Console(file=out, width=400))  # a pipe, however wide it says
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    _words_whole(lines)
    # The detail wraps at spaces under its own column; a token longer than a line is cut.
    assert any(line.rstrip().endswith("…") for line in lines)
    assert any("0.2708s" in line for line in lines)


def test_plain_text_wraps_the_detail_under_its_column(tmp_path: Path) -> None:
    from .test_report_synthetic import SPIKE_503

    spike = replace(SPIKE_503, detail=LONG_DETAIL)
    lines = plain_lines(collect(build_run(tmp_path), judgement(verdicts=(spike,))), width=100)
    assert max(len(line) for line in lines) <= 100
    header = next(line for line in lines if line.startswith("RESULT"))
    column = header.index("DETAIL")
    first = next(i for i, line in enumerate(lines) if line.startswith("FAIL    spike-503"))
    assert lines[first][column:].startswith("20,981 of 21,004")
    follow = lines[first + 1]
    assert not follow[:column].strip()
    assert follow[column] != " "


def test_the_totals_line_counts_what_the_slos_count(report: RunReport) -> None:
    lines = plain_lines(report)
    totals = report.totals
    assert f"totals: {totals.attempts:,} attempts" in "\n".join(lines)
