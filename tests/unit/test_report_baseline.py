"""``harness run --baseline``: the run's report is compared with a baseline from the history;
the exit code is 1 when either the SLOs or the comparison fail, and the report says which."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import BadInputError
from harness.history import record_run
from harness.report import rebuild
from harness.report.baseline import check_baseline_spec, recorded_baseline, with_baseline
from harness.report.data import collect
from harness.report.html import render_html
from tests.unit.history_stores import make_run
from tests.unit.test_report_synthetic import build_run, judgement

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]


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


def test_harness_report_rebuilds_a_compared_run_against_the_same_baseline(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    record_run(make_run(reports, "flash-sale-base", scenario="flash-sale", rps=100, at=-1e6))
    report, run = passing_report(tmp_path)
    with_baseline(report, run, "latest-pass")  # type: ignore[arg-type]

    rebuilt, paths = rebuild(run.root)  # type: ignore[attr-defined]
    assert rebuilt.comparison is not None
    assert rebuilt.comparison.baseline.run == "flash-sale-base"
    assert any("baseline flash-sale-base" in n and "regression" in n for n in rebuilt.notes)
    assert "Compared with a baseline" in paths.report_html.read_text(encoding="utf-8")

    shutil.rmtree(reports / "flash-sale-base")
    rebuilt, paths = rebuild(run.root)  # type: ignore[attr-defined]
    assert rebuilt.comparison is None
    assert "Compared with a baseline" not in paths.report_html.read_text(encoding="utf-8")
    assert any("flash-sale-base again: it is no longer in" in n for n in rebuilt.notes)


@pytest.mark.parametrize("name", ["../outside", "/etc", "..", 7])
def test_a_recorded_baseline_that_leaves_the_reports_directory_is_not_followed(
    tmp_path: Path, name: object
) -> None:
    _, run = passing_report(tmp_path)
    compare = run.root / "compare.json"  # type: ignore[attr-defined]
    compare.write_text(json.dumps({"baseline": {"run": name}}), encoding="utf-8")
    assert recorded_baseline(run) == (  # type: ignore[arg-type]
        None,
        f"not compared with a baseline again: {compare}: baseline.run {name!r}",
    )
    compare.write_text("[" * 100_000, encoding="utf-8")
    baseline, note = recorded_baseline(run)  # type: ignore[arg-type]
    assert baseline is None
    assert note is not None
    assert "nested deeper" in note
