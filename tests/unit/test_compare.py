"""``harness compare``: a regression beyond tolerance is flagged, a change within tolerance or
within the run-to-run noise of the history is not, and every output says the same."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from harness.cli.entry import main
from harness.compare import compare_rows, estimate_noise
from harness.compare.gate import compare_with_history, scenario_regression
from harness.errors import BadInputError
from harness.history import HistoryIndex, read_row, record_run
from harness.history.row import row_from_summary
from harness.record import RunDir
from harness.scenario import parse_scenario
from harness.scenario.regression import Regression, flag_tolerances
from tests.unit.history_stores import make_run

pytestmark = pytest.mark.unit

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def status(comparison: object, key: str) -> str:
    for figure in comparison.figures:  # type: ignore[attr-defined]
        if figure.key == key:
            return str(figure.status)
    raise AssertionError(f"no figure {key}")


def recorded(reports: Path, name: str, **figures: object) -> Path:
    root = make_run(reports, name, **figures)  # type: ignore[arg-type]
    assert record_run(root) is None
    return root


def test_p99_up_by_more_than_its_tolerance_is_a_regression(tmp_path: Path) -> None:
    base = read_row(make_run(tmp_path, "base", p99_ms=200))
    run = read_row(make_run(tmp_path, "run", at=60, p99_ms=300))  # +50%, tolerance 20%
    comparison = compare_rows(base, run)
    assert status(comparison, "phase:spike:p99_ms") == "regression"
    assert status(comparison, "phase:spike:rps") == "ok"
    assert comparison.regressed


def test_each_kind_has_its_own_tolerance(tmp_path: Path) -> None:
    base = read_row(make_run(tmp_path, "base", rps=100, ratio_503=0.01, recovery_s=2.0))
    within = read_row(make_run(tmp_path, "a", rps=91, ratio_503=0.029, recovery_s=2.9))
    beyond = read_row(make_run(tmp_path, "b", rps=89, ratio_503=0.031, recovery_s=3.1))
    ok, bad = compare_rows(base, within), compare_rows(base, beyond)
    for key in ("phase:spike:rps", "phase:spike:ratio_503", "recovery:kill-app-1"):
        assert status(ok, key) == "ok", key
        assert status(bad, key) == "regression", key


def test_a_fault_that_never_recovers_is_a_regression(tmp_path: Path) -> None:
    base = read_row(make_run(tmp_path, "base", recovery_s=2.0))
    run = read_row(make_run(tmp_path, "run", recovery_s=None))
    assert status(compare_rows(base, run), "recovery:kill-app-1") == "regression"
    assert status(compare_rows(run, base), "recovery:kill-app-1") == "improved"


def test_noise_is_twice_the_spread_of_the_passing_runs(tmp_path: Path) -> None:
    values = [200.0, 260.0, 180.0, 250.0, 190.0]
    for n, p99 in enumerate(values):
        recorded(tmp_path, f"h{n}", at=n, p99_ms=p99)
    recorded(tmp_path, "broken", at=10, outcome="FAIL", p99_ms=5000)  # never in the noise
    rows = HistoryIndex(tmp_path).rows("ci-gate")
    noise = estimate_noise(rows, ["phase:spike:p99_ms"])
    assert noise.of("phase:spike:p99_ms") == pytest.approx(2 * statistics.stdev(values))
    assert "broken" not in noise.runs
    # Fewer than three runs: no noise known.
    assert estimate_noise(rows[:2], ["phase:spike:p99_ms"]).of("phase:spike:p99_ms") is None


def test_a_change_within_the_noise_is_not_a_regression(tmp_path: Path) -> None:
    for n, p99 in enumerate([200.0, 260.0, 180.0, 250.0, 190.0]):  # noise about 70 ms
        recorded(tmp_path, f"h{n}", at=n, p99_ms=p99)
    base = read_row(tmp_path / "h0")
    run = read_row(recorded(tmp_path, "run", at=100, p99_ms=245))  # +45 ms: over 20%, in noise
    comparison = compare_with_history(base, run, tmp_path, Regression())
    assert status(comparison, "phase:spike:p99_ms") == "noise"
    assert not comparison.regressed
    # Far outside the noise, the same history does not excuse it.
    worse = read_row(recorded(tmp_path, "worse", at=101, p99_ms=400))
    assert compare_with_history(base, worse, tmp_path, Regression()).regressed


def test_compare_command_exits_1_on_a_regression_and_writes_json_and_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = recorded(tmp_path, "base", p99_ms=200)
    run = recorded(tmp_path, "run", at=60, p99_ms=300)
    assert main(["compare", str(base), str(run)]) == 1
    out = capsys.readouterr().out
    assert "regression" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    data = json.loads((run / "compare.json").read_text(encoding="utf-8"))
    assert data["regressed"] is True
    assert data["baseline"]["run"] == "base"
    p99 = next(f for f in data["figures"] if f["key"] == "phase:spike:p99_ms")
    assert (p99["baseline"], p99["run"], p99["delta"], p99["status"]) == (
        200,
        300,
        100,
        "regression",
    )
    suite = ET.parse(run / "compare.xml").getroot().find("testsuite")
    assert suite is not None
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert "spike p99" in failed
    assert "<table>" in (run / "compare.html").read_text(encoding="utf-8")


def test_a_run_against_itself_exits_0(tmp_path: Path) -> None:
    run = recorded(tmp_path, "run")
    assert main(["compare", str(run), str(run)]) == 0


def test_latest_pass_and_latest_by_name(tmp_path: Path) -> None:
    recorded(tmp_path, "good", p99_ms=200)
    recorded(tmp_path, "bad", at=60, outcome="FAIL", p99_ms=900)
    code = main(["compare", "latest-pass", "latest", "--reports", str(tmp_path), "--json"])
    assert code == 1  # latest (bad) against latest-pass (good)


def test_a_tolerance_flag_wins(tmp_path: Path) -> None:
    base = recorded(tmp_path, "base", p99_ms=200)
    run = recorded(tmp_path, "run", at=60, p99_ms=300)
    assert main(["compare", str(base), str(run), "--tolerance", "latency=60%"]) == 0


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("latency", "expected KIND=VALUE"),
        ("latency=20", "expected a percentage like 20%"),
        ("speed=20%", "unknown kind 'speed'"),
        ("recovery=soon", "expected a duration like 1s"),
    ],
)
def test_bad_tolerance_flags_are_one_line_errors(flag: str, message: str) -> None:
    with pytest.raises(Exception, match=message) as caught:
        flag_tolerances((flag,))
    assert "\n" not in str(caught.value)


def test_a_name_that_resolves_to_nothing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = recorded(tmp_path, "run")
    assert main(["compare", "latest-pass", str(run)]) == 2  # the only pass is the run itself
    err = capsys.readouterr().err
    assert err.startswith("harness: BASELINE: no passing run of scenario ci-gate")
    assert err.count("\n") == 1


def test_the_scenario_regression_section_reads_and_rejects() -> None:
    section = Regression.model_validate({"latency": "30%", "recovery": "2s"})
    assert section.tolerances()["latency"] == pytest.approx(0.3)
    assert section.tolerances()["recovery"] == 2.0
    assert section.tolerances()["throughput"] == pytest.approx(0.1)  # the default
    with pytest.raises(ValueError, match="expected a percentage like 20%"):
        Regression.model_validate({"latency": "30"})


def test_capacity_searches_compare_by_their_capacity(tmp_path: Path) -> None:
    def search(capacity: float) -> dict[str, object]:
        found = {"label": "healthy", "capacity": capacity}
        return {"scenario": "cap", "model": "open", "searches": [found]}

    base = row_from_summary(tmp_path / "cap-1", search(100.0))
    same = row_from_summary(tmp_path / "cap-2", search(95.0))
    lower = row_from_summary(tmp_path / "cap-3", search(80.0))
    assert base.kind == "capacity"
    assert base.figures == {"capacity:healthy": 100.0}
    assert status(compare_rows(base, same), "capacity:healthy") == "ok"
    assert status(compare_rows(base, lower), "capacity:healthy") == "regression"


def test_the_regression_section_is_read_from_the_scenario_file_and_the_run(
    tmp_path: Path,
) -> None:
    text = (SCENARIOS / "ci_gate.yaml").read_text(encoding="utf-8")
    where = SCENARIOS / "ci_gate.yaml"
    scenario = parse_scenario(text + "\nregression: {latency: 30%, recovery: 2s}\n", where)
    assert scenario.regression is not None
    with pytest.raises(BadInputError, match=r"ci_gate.yaml: regression.latency: expected a perc"):
        parse_scenario(text + "\nregression: {latency: 30}\n", where)
    # The run directory keeps the resolved scenario; the comparison reads its section there.
    run = RunDir.create(tmp_path, "ci-gate")
    with run.writer() as writer:
        writer.set_scenario(scenario.to_dict())
    tolerances = scenario_regression(run.root).tolerances()
    assert tolerances["latency"] == pytest.approx(0.3)
    assert tolerances["recovery"] == 2.0
    assert tolerances["share"] == pytest.approx(0.02)
