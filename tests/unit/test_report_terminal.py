"""The verdict table at the end of a run: Rich on a terminal, plain text in a log."""

from __future__ import annotations

import io
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
    assert lines[0].startswith("FAIL  flash-sale  (completed, exit 1, 45.5 s)")
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
