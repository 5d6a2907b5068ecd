"""junit.xml: parses, and shows a CI the counts and the messages it gates on."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.record import RunStatus
from harness.report import write_reports
from harness.report.data import RunReport, collect
from harness.report.junit import RUN_COMPLETED, render_junit
from harness.report.model import Unjudged

from .test_report_synthetic import NO_500S, P99_WARMUP, SPIKE_503, FakeVerdict, build_run, judgement

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]

# What the common JUnit schema (Jenkins' junit-4.xsd, read by GitHub and GitLab test reporters
# alike) allows where: children in order, and the attributes each element may carry.
SUITE_ATTRS = {"name", "tests", "failures", "errors", "skipped", "time", "timestamp"}
CASE_ATTRS = {"name", "classname", "time"}
CASE_CHILDREN = {"skipped", "error", "failure"}


def parse(data: bytes) -> ET.Element:
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(data)


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in root.iter("testcase")}


def outcome_of(case: ET.Element) -> str:
    children = [child.tag for child in case]
    assert len(children) <= 1, children
    return children[0] if children else "passed"


def report_of(tmp_path: Path, **overrides: object) -> RunReport:
    return collect(build_run(tmp_path), judgement(**overrides))


def test_junit_xml_parses_and_counts_what_failed(tmp_path: Path) -> None:
    paths = write_reports(build_run(tmp_path), judgement())
    root = parse(paths.junit_xml.read_bytes())
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    by_name = cases(root)
    assert {n: outcome_of(c) for n, c in by_name.items()} == {
        RUN_COMPLETED: "passed",
        "spike-503": "failure",
        "no-500s": "failure",
        "p99-warmup": "passed",
        "recovery": "skipped",  # in the scenario, not judged by the fake verdict
    }
    for element in (root, suite):
        assert element.attrib["tests"] == "5"
        assert element.attrib["failures"] == "2"
        assert element.attrib["errors"] == "0"
        assert element.attrib["skipped"] == "1"
    assert {c.attrib["classname"] for c in by_name.values()} == {"flash-sale"}


def test_a_failure_says_observed_against_threshold(tmp_path: Path) -> None:
    root = parse(render_junit(report_of(tmp_path)))
    failure = cases(root)["spike-503"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "observed 12%, expected < 5% (phase spike)"
    assert failure.attrib["type"] == "SLOFailed"
    assert "ratio(status == 503) < 5% during phase spike" in (failure.text or "")


def test_an_slo_without_a_measurement_is_an_error_when_failed_and_skipped_when_passed(
    tmp_path: Path,
) -> None:
    no_data = FakeVerdict(
        "p99-spike",
        "p99(latency) < 1s",
        "phase spike",
        None,
        1.0,
        "<",
        "s",
        False,
        "no responses in phase spike",
    )
    vacuous = FakeVerdict(
        "amp", "retry_amplification < 2", "whole run", None, 2.0, "<", "", True, "no requests"
    )
    root = parse(render_junit(report_of(tmp_path, verdicts=(no_data, vacuous, P99_WARMUP))))
    by_name = cases(root)
    error = by_name["p99-spike"].find("error")
    assert error is not None
    assert error.attrib["message"].startswith("no data:")
    assert outcome_of(by_name["amp"]) == "skipped"
    # skipped: "amp", and the three SLOs of the scenario this verdict left out
    assert root.attrib["errors"] == "1"
    assert root.attrib["skipped"] == "4"


@pytest.mark.parametrize(
    ("finish", "upto", "verdict_flags"),
    [
        (RunStatus.ABORTED, 20.0, {"aborted": True}),
        (None, 20.0, {"incomplete": True}),  # crashed
        (RunStatus.INTERRUPTED, 20.0, {"incomplete": True}),
    ],
)
def test_run_completed_fails_when_the_run_did_not_complete(
    tmp_path: Path, finish: RunStatus | None, upto: float, verdict_flags: dict[str, bool]
) -> None:
    run = build_run(tmp_path, upto=upto, finish=finish, error="boom")
    report = collect(run, judgement(verdicts=(P99_WARMUP,), passed=False, **verdict_flags))
    root = parse(render_junit(report))
    failure = cases(root)[RUN_COMPLETED].find("failure")
    assert failure is not None
    assert failure.attrib["message"].startswith(f"run {report.outcome.value.lower()}: status ")
    if finish is not None:  # a crashed run never recorded its error
        assert failure.attrib["message"].endswith(": boom")
    assert root.attrib["failures"] == "1"


def test_every_slo_is_skipped_with_the_reason_when_nothing_was_judged(tmp_path: Path) -> None:
    note = "SLOs not judged: the verdict module is not available"
    report = collect(
        build_run(tmp_path), Unjudged(passed=True, aborted=False, incomplete=False), notes=(note,)
    )
    root = parse(render_junit(report))
    assert root.attrib["tests"] == "5"
    assert root.attrib["skipped"] == "4"
    skipped = cases(root)["spike-503"].find("skipped")
    assert skipped is not None
    assert note in skipped.attrib["message"]


def test_markup_and_control_characters_come_out_as_well_formed_xml(tmp_path: Path) -> None:
    nasty = FakeVerdict(
        'a<b>&"c"\x00\x1b',
        "count(status == 500) == 0",
        "whole\x07run",
        1.0,
        0.0,
        "==",
        "",
        False,
        "detail with ]]> and \x0b",
    )
    root = parse(render_junit(report_of(tmp_path, verdicts=(nasty, NO_500S))))
    names = set(cases(root))
    assert 'a<b>&"c"\ufffd\ufffd' in names


def test_the_file_fits_the_common_junit_schema(tmp_path: Path) -> None:
    root = parse(render_junit(report_of(tmp_path, verdicts=(SPIKE_503, P99_WARMUP))))
    assert set(root.attrib) <= SUITE_ATTRS | {"name"}
    for suite in root:
        assert suite.tag == "testsuite"
        assert {"name", "tests"} <= set(suite.attrib) <= SUITE_ATTRS
        tags = [child.tag for child in suite]
        # properties first, then the test cases
        assert tags[0] == "properties"
        assert set(tags[1:]) == {"testcase"}
        for prop in suite.find("properties") or ():
            assert set(prop.attrib) == {"name", "value"}
        for case in suite.iter("testcase"):
            assert set(case.attrib) == CASE_ATTRS
            float(case.attrib["time"])
            for child in case:
                assert child.tag in CASE_CHILDREN
                assert set(child.attrib) <= {"message", "type"}
        int(suite.attrib["tests"])
        float(suite.attrib["time"])
