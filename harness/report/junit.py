"""``junit.xml``: the run as test results a CI already knows how to show and gate on.

Shape (the common JUnit schema that Jenkins, GitLab and the GitHub test-report actions read)::

    <testsuites name="harness" tests= failures= errors= skipped= time=>
      <testsuite name=SCENARIO tests= failures= errors= skipped= time= timestamp=>
        <properties> run, status, outcome, exit_code (the process's), stack, notes </properties>
        <testcase classname=SCENARIO name="run completed">   <failure> unless it completed, or
                                                             when its exit code is not 0 or 1
        <testcase classname=SCENARIO name=SLO NAME>          one per SLO:
            pass                         no child
            fail                         <failure message="observed 7.5% > threshold 5%">
                                         (also a missing value that is the failure itself:
                                         a fault that never recovered)
            no data, no_data: fail       <error message="no data: ...">; an SLO that cannot be
                                         measured must not pass, and is not a measured failure
            no data, no_data: pass       <skipped message="no data: ...">
            n/a                          <skipped message="n/a: REASON">: nothing was
                                         verified, so not a pass; nor a failure
            not judged                   <skipped message="not judged">

Text goes through ElementTree, which escapes markup; characters XML 1.0 cannot carry at all
(control characters from an error message) are replaced first, so the file always parses.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Final

from harness.exit_codes import ExitCode
from harness.report import fmt
from harness.report.data import RunReport
from harness.report.model import Outcome, VerdictLike, verdict_outcome

__all__ = ["RUN_COMPLETED", "render_junit"]

RUN_COMPLETED: Final = "run completed"
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _sub(parent: ET.Element, tag: str, attrs: dict[str, str], text: str = "") -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text:
        element.text = _clean(text)
    return element


def _message(v: VerdictLike) -> str:
    observed, threshold = fmt.measured_pair(v.observed, v.threshold, v.unit)
    if v.observed is None:  # "n/a" is an outcome of its own: no value is "none" else
        observed = "n/a" if verdict_outcome(v) == "n/a" else "none"
    window = f" ({v.window_label})" if v.window_label else ""
    return f"observed {observed}, expected {v.comparator} {threshold}{window}"


def _slo_case(suite: ET.Element, classname: str, v: VerdictLike) -> str:
    """Add one SLO's test case; which child it got ("" when it passed)."""
    case = _sub(suite, "testcase", {"classname": classname, "name": v.name, "time": "0"})
    body = "\n".join(part for part in (f"expression: {v.expression}", v.detail) if part)
    outcome = verdict_outcome(v)
    if outcome == "pass":
        return ""
    if outcome == "n/a" or (outcome == "no data" and v.passed):
        # Skipped, not passed: nothing was verified, and a CI lists skips with their reason
        # while never failing the build on one.
        _sub(case, "skipped", {"message": f"{outcome}: {v.detail or _message(v)}"})
        return "skipped"
    if outcome == "no data":
        _sub(case, "error", {"message": f"no data: {_message(v)}", "type": "NoData"}, body)
        return "error"
    _sub(case, "failure", {"message": _message(v), "type": "SLOFailed"}, body)
    return "failure"


def _run_case(suite: ET.Element, classname: str, report: RunReport) -> str:
    case = _sub(
        suite,
        "testcase",
        {"classname": classname, "name": RUN_COMPLETED, "time": _seconds(report.duration)},
    )
    if report.outcome in (Outcome.ABORTED, Outcome.INCOMPLETE):
        message = f"run {report.outcome.value.lower()}: status {report.status.value}"
        if report.error:
            message += f": {report.error}"
        _sub(case, "failure", {"message": message, "type": report.outcome.value}, message)
        return "failure"
    if report.exit_code not in (ExitCode.OK, ExitCode.FAILED):
        # The SLOs were judged, but the run itself failed (faults left in force, a verdict not
        # reached): a CI listing the test cases must not see all green beside a failing exit.
        message = f"run exit {report.exit_code}: {report.error or '; '.join(report.notes)}"
        _sub(case, "failure", {"message": message, "type": "RunFailed"}, message)
        return "failure"
    return ""


def _seconds(value: float | None) -> str:
    return f"{max(value or 0.0, 0.0):.3f}"


def _properties(suite: ET.Element, report: RunReport, notes: Iterable[str]) -> None:
    props = _sub(suite, "properties", {})
    pairs = [
        ("run", report.run_name),
        ("status", report.status.value),
        ("outcome", report.outcome.value),
        ("exit_code", str(report.exit_code)),
        ("stack", report.stack),
    ]
    pairs += [("note", note) for note in notes]
    for name, value in pairs:
        _sub(props, "property", {"name": name, "value": value})


def render_junit(report: RunReport) -> bytes:
    """The whole file, UTF-8, with an XML declaration."""
    classname = report.scenario
    suite = ET.Element("testsuite")
    _properties(suite, report, report.notes)
    kinds = [_run_case(suite, classname, report)]
    kinds += [_slo_case(suite, classname, v) for v in report.judgement.verdicts]
    for slo in report.unjudged:
        case = _sub(suite, "testcase", {"classname": classname, "name": slo.name, "time": "0"})
        reason = "; ".join(report.notes) or "the verdict did not judge this SLO"
        _sub(case, "skipped", {"message": f"not judged: {reason}"})
        kinds.append("skipped")
    counts = {
        "tests": str(len(kinds)),
        "failures": str(kinds.count("failure")),
        "errors": str(kinds.count("error")),
        "skipped": str(kinds.count("skipped")),
        "time": _seconds(report.duration),
    }
    suite.attrib.update(
        {
            "name": _clean(report.scenario),
            **counts,
            # The schema's timestamp is ISO 8601 without a zone; it is UTC.
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(report.started_at)),
        }
    )
    # ElementTree keeps attribute insertion order; name first reads best in a diff.
    root = ET.Element("testsuites", {"name": "harness", **counts})
    root.append(suite)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
