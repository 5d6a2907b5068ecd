"""The plugin that validates every summary.json the suite writes (tests/summary_schema_check.py)
bites: a test that leaves a summary the schema rejects fails, naming the file and the error, and
one that leaves a valid summary passes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from summary_schema_check import summary_problems

from harness.record import RunDir, RunStatus
from harness.report import judge_stored, write_reports

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]
pytest_plugins = ["pytester"]


def written_summary(tmp_path: Path) -> Path:
    """A real summary.json, as the harness writes it for a run that recorded nothing."""
    run = RunDir.create(tmp_path, "s")
    with run.writer() as writer:
        writer.finish(RunStatus.CRASHED, detail={"error": "boom"})
    judgement, notes = judge_stored(run)
    return write_reports(run, judgement, notes=notes).summary_json


def test_a_summary_the_harness_writes_has_no_problems(tmp_path: Path) -> None:
    assert summary_problems(written_summary(tmp_path)) == []


def test_a_summary_off_its_schema_is_named_with_its_json_path(tmp_path: Path) -> None:
    path = written_summary(tmp_path)
    summary = json.loads(path.read_text())
    summary["exit_code"] = "3"
    del summary["totals"]
    bad = tmp_path / "elsewhere.json"  # not a summary.json: this test itself must pass
    bad.write_text(json.dumps(summary))
    problems = summary_problems(bad)
    assert problems == [
        f"{bad}: at $: 'totals' is a required property",
        f"{bad}: at $.exit_code: '3' is not one of [0, 1, 2, 3, 4, 130]",
    ]
    bad.write_text("{")
    assert summary_problems(bad)[0].startswith(f"{bad}: not a JSON document:")


INNER_TESTS = """
import json
from pathlib import Path


def test_leaves_a_bad_summary(tmp_path: Path) -> None:
    run = tmp_path / "reports" / "s-20261206T000000Z"
    run.mkdir(parents=True)
    summary = json.loads(Path(GOOD).read_text())
    summary["exit_code"] = "three"
    (run / "summary.json").write_text(json.dumps(summary))


def test_leaves_a_good_summary(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(Path(GOOD).read_text())


def test_leaves_nothing() -> None:
    pass
"""


def test_a_test_that_leaves_a_bad_summary_fails_with_the_path_and_the_error(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    good = written_summary(tmp_path)
    pytester.makepyfile(test_inner=f"GOOD = {str(good)!r}\n" + textwrap.dedent(INNER_TESTS))
    inner_tmp = pytester.path / "inner-tmp"  # under this test's directory: cleaned up below
    result = pytester.runpytest(
        "-p", "summary_schema_check", "-p", "no:cacheprovider", f"--basetemp={inner_tmp}"
    )
    try:
        result.assert_outcomes(passed=3, errors=1)
        text = result.stdout.str()
        assert "ERROR at teardown of test_leaves_a_bad_summary" in text
        assert "summary.json does not match harness/report/summary.schema.json" in text
        assert "s-20261206T000000Z/summary.json: at $.exit_code: 'three' is not one of" in text
        assert "test_leaves_a_good_summary" not in text.split("short test summary")[-1]
    finally:
        # This test's own check would find the inner run's bad summary under its directory.
        for path in pytester.path.rglob("summary.json"):
            path.unlink()
