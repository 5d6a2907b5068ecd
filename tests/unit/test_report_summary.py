"""summary.json: the documented keys, plain JSON numbers, the run's numbers."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.record import RunStatus
from harness.report import summary as summary_module
from harness.report import write_reports
from harness.report.data import collect
from harness.report.model import Unjudged
from harness.report.summary import KEYS, json_unit, schema, summary

from .test_report_synthetic import CREATED, ENDED, T0, build_run, judgement

validator = jsonschema.Draft202012Validator(schema())

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]

SLO_KEYS = {
    "name",
    "expression",
    "window",
    "observed",
    "threshold",
    "comparator",
    "unit",
    "written_unit",
    "passed",
    "outcome",
    "judged",
    "detail",
    "worst_window",
}
RECOVERY_KEYS = {
    "fault",
    "injected_at",
    "reverted_at",
    "reference_at",
    "recovered_at",
    "recovered",
    "recovery_time_s",
    "time_to_first_impact_s",
    "failed_requests",
    "detail",
    "overlapping",
}
FAULT_KEYS = {
    "name",
    "description",
    "injected_s",
    "reverted_s",
    "reverted",
    "manual",
    "who",
    "reverted_by",
    "scheduled_s",
    "scheduled_revert_s",
}
STATS_KEYS = {
    "name",
    "start_s",
    "end_s",
    "duration_s",
    "users",
    "attempts",
    "requests",
    "failed",
    "retries",
    "status_503",
    "status_5xx",
    "no_response",
    "rps",
    "ratio_503",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "retry_amplification",
}


def load(tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    paths = write_reports(build_run(tmp_path, **kwargs), judgement())
    # parse_constant: NaN or Infinity in the file would be invalid JSON for most readers.
    data: dict[str, Any] = json.loads(
        paths.summary_json.read_text(encoding="utf-8"),
        parse_constant=lambda c: pytest.fail(f"{c} in summary.json"),
    )
    return data


def documented_keys(section_indent: int) -> set[str]:
    """The words the module docstring lists at ``section_indent``, before their description."""
    doc = summary_module.__doc__ or ""
    return set(re.findall(rf"^ {{{section_indent}}}([a-z_]+)(?:\[\])?\s", doc, re.MULTILINE))


def test_summary_has_exactly_the_documented_top_level_keys(tmp_path: Path) -> None:
    data = load(tmp_path)
    assert tuple(data) == KEYS
    assert set(KEYS) == documented_keys(4)


def test_every_slo_recovery_fault_and_phase_has_its_documented_keys(tmp_path: Path) -> None:
    data = load(tmp_path)
    assert [s["name"] for s in data["slos"]] == ["spike-503", "no-500s", "p99-warmup", "recovery"]
    for slo in data["slos"]:
        assert set(slo) == SLO_KEYS
    for rec in data["recoveries"]:
        assert set(rec) == RECOVERY_KEYS
    for fault in data["faults"]:
        assert set(fault) == FAULT_KEYS
    for stats in [*data["phases"], data["totals"]]:
        assert set(stats) == STATS_KEYS


def test_summary_values_of_the_synthetic_run(tmp_path: Path) -> None:
    data = load(tmp_path)
    assert data["format"] == 2
    assert (data["scenario"], data["status"], data["outcome"]) == (
        "flash-sale",
        "completed",
        "FAIL",
    )
    assert (data["passed"], data["exit_code"]) == (False, 1)
    assert (data["started_at"], data["ended_at"], data["origin"]) == (CREATED, ENDED, T0)
    assert data["duration_s"] == pytest.approx(45.5)
    spike = data["slos"][0]
    # Stored in the unit "unit" names (a share as a ratio), shown in the one written.
    assert (spike["observed"], spike["threshold"], spike["comparator"]) == (0.12, 0.05, "<")
    assert (spike["unit"], spike["written_unit"]) == ("ratio", "%")
    p99 = data["slos"][2]
    assert (p99["observed"], p99["threshold"], p99["unit"], p99["written_unit"]) == (
        0.02,
        0.1,
        "s",
        "ms",
    )
    assert (data["slos"][1]["unit"], data["slos"][1]["written_unit"]) == ("number", "")
    assert spike["passed"] is False
    assert spike["judged"] is True
    unjudged = data["slos"][3]
    assert unjudged["judged"] is False
    assert unjudged["passed"] is None
    assert (unjudged["unit"], unjudged["written_unit"], unjudged["observed"]) == (None, None, None)
    kill, slow = data["recoveries"]
    assert kill["recovered"] is True
    assert kill["recovery_time_s"] == 4.2
    # the verdict module's own shape: recovery_time without _s, no reverted_at
    assert slow["recovered"] is False
    assert slow["recovery_time_s"] is None
    assert slow["detail"].startswith("never recovered")
    assert slow["reverted_at"] == T0 + 28  # from the events, where the verdict gives none
    assert [f["name"] for f in data["faults"]] == ["kill-app-1", "slow-db"]
    assert data["faults"][0]["injected_s"] == pytest.approx(12.0)
    warmup = data["phases"][0]
    assert (warmup["name"], warmup["users"], warmup["attempts"]) == ("warmup", 10, 200)
    assert warmup["ratio_503"] == 0.0


def test_a_crashed_run_summary_is_incomplete_with_nulls_not_nans(tmp_path: Path) -> None:
    run = build_run(tmp_path, upto=14.5, finish=None, with_buckets=False)
    data = summary(collect(run, Unjudged(passed=True, aborted=False, incomplete=True)))
    assert (data["status"], data["outcome"], data["exit_code"]) == ("crashed", "INCOMPLETE", 3)
    assert data["ended_at"] is None
    assert data["duration_s"] is None
    for stats in data["phases"]:
        assert stats["attempts"] == 0
        assert stats["ratio_503"] is None
        assert stats["p99_ms"] is None
    json.dumps(data, allow_nan=False)
    for value in _numbers(data):
        assert math.isfinite(value)


def test_an_interrupted_run_exits_130(tmp_path: Path) -> None:
    run = build_run(tmp_path, upto=20.0, finish=RunStatus.INTERRUPTED)
    data = summary(collect(run, judgement()))
    assert (data["outcome"], data["exit_code"]) == ("INCOMPLETE", 130)


def _numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, float):
        return [value]
    return []


# --- the published schema ----------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema_shipped_in_the_package() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["format"]["const"] == summary_module.FORMAT
    assert tuple(schema()["required"]) == KEYS


@pytest.mark.parametrize(
    "build",
    [
        {},
        {"upto": 20.0, "finish": RunStatus.INTERRUPTED},
        {"upto": 14.5, "finish": None, "with_buckets": False},
        {"finish": RunStatus.ABORTED, "error": "503s held for 1s"},
        {"revert": False},
    ],
    ids=["completed", "interrupted", "crashed", "aborted", "never-reverted"],
)
def test_every_summary_of_a_known_store_validates_against_the_schema(
    tmp_path: Path, build: dict[str, Any]
) -> None:
    data = summary(collect(build_run(tmp_path, **build), judgement()))
    validator.validate(data)
    unjudged = summary(collect(build_run(tmp_path / "u", **build), Unjudged(False, False, False)))
    validator.validate(unjudged)


def test_the_schema_refuses_a_summary_that_breaks_the_contract(tmp_path: Path) -> None:
    data = load(tmp_path)
    validator.validate(data)
    for broken in (
        {**data, "format": 1},
        {**data, "exit_code": 5},
        {**data, "surprise": True},
        {**data, "slos": [{**data["slos"][0], "unit": ""}]},
        {**data, "totals": {**data["totals"], "attempts": -1}},
    ):
        assert not validator.is_valid(broken)


def test_every_schema_field_has_a_description_naming_what_it_holds() -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                assert sub.get("description"), f"{where}.{key} has no description"
                walk(sub, f"{where}.{key}")
            for key, sub in node.get("$defs", {}).items():
                walk(sub, f"{where}.$defs.{key}")

    walk(schema(), "summary")


@pytest.mark.parametrize(
    ("written", "stored"),
    [("%", "ratio"), ("ms", "s"), ("s", "s"), ("m", "s"), ("h", "s"), ("", "number")],
)
def test_a_value_is_stored_in_the_unit_its_unit_field_names(written: str, stored: str) -> None:
    assert json_unit(written) == stored
