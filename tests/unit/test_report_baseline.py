"""``harness run --baseline``: the run's report is compared with a baseline from the history;
the exit code is 1 when either the SLOs or the comparison fail, and the report says which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import BadInputError
from harness.history import record_run
from harness.report.baseline import check_baseline_spec, with_baseline
from harness.report.data import collect
from harness.report.html import render_html
from tests.unit.history_stores import make_run
from tests.unit.test_report_synthetic import build_run, judgement

pytestmark = pytest.mark.unit


def passing_report(tmp_path: Path) -> tuple[object, object]:
    run = build_run(tmp_path)
    return collect(run, judgement(verdicts=(), recoveries=(), passed=True)), run


def test_a_regression_turns_a_passing_run_into_exit_1_and_says_so(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    # The synthetic spike ran at about 50 answers/s with a p99 of 20 ms: a baseline that did
    # 100/s makes the run's throughput a regression.
    record_run(make_run(reports, "flash-sale-base", scenario="flash-sale", rps=100, at=-1e6))
    report, run = passing_report(tmp_path)
    assert report.exit_code == 0  # type: ignore[attr-defined]
    gated = with_baseline(report, run, "latest-pass")  # type: ignore[arg-type]
    assert gated.exit_code == 1
    assert gated.comparison is not None
    assert gated.comparison.baseline.run == "flash-sale-base"
    assert any(f.label == "spike rps" for f in gated.comparison.regressions)
    assert any("baseline flash-sale-base" in n and "regression" in n for n in gated.notes)
    data = json.loads((run.root / "compare.json").read_text(encoding="utf-8"))
    assert data["regressed"] is True
    page = render_html(gated, {})
    assert "Compared with a baseline" in page
    assert "spike rps" in page


def test_no_baseline_yet_is_a_note_and_the_slos_decide(tmp_path: Path) -> None:
    report, run = passing_report(tmp_path)
    gated = with_baseline(report, run, "latest-pass")  # type: ignore[arg-type]
    assert gated.exit_code == 0
    assert gated.comparison is None
    assert any(
        n.startswith("not compared with a baseline: baseline: no passing run") for n in gated.notes
    )


def test_a_baseline_that_names_nothing_is_refused_before_the_run() -> None:
    check_baseline_spec("latest-pass")
    with pytest.raises(BadInputError, match="--baseline no-such-ref-anywhere: not a run"):
        check_baseline_spec("no-such-ref-anywhere")
