"""Not applicable is not no data, for real: the harness's own RetryingHttpUser against a service
that answers 503 with Retry-After to every request for a stretch passes its backoff SLOs as n/a
(the server chose every wait), while a run that sends no request at all fails them as no data."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from run_support import Target, run_harness, the_run, write_scenario

pytestmark = pytest.mark.integration

RETRYING = """\
    from locust import constant, task

    from harness.load.users import RetryingHttpUser


    class Buyer(RetryingHttpUser):
        wait_time = constant(0.05)

        @task
        def browse(self):
            self.logical_request("GET", "/products")
    """

IDLE = """\
    from locust import HttpUser, constant, task


    class Idle(HttpUser):
        wait_time = constant(0.5)

        @task
        def nothing(self):
            pass  # connects nowhere: a load that sends no request at all
    """

SLOS = """\
slos:
  - {name: backs-off, expr: "backoff_growth >= 1.5"}
  - {name: jittered, expr: "jitter_spread > 0.1"}
  - {name: complies, expr: "retry_after_compliance >= 99%"}
  - {name: retry-after-sent, expr: "ratio(retry_after, where status == 503) >= 99%"}
"""


def _run(tmp_path: Path, body: str, users: str) -> tuple[int, str, dict[str, Any], Path]:
    scenario = write_scenario(tmp_path, users_py=users, body=body)
    reports = tmp_path / "reports"
    code, out, err = run_harness(
        scenario, "--reports", str(reports), "--state-dir", str(tmp_path / "state")
    )
    assert reports.is_dir(), f"exit {code}: {out}{err}"
    run = the_run(reports)
    return code, out + err, json.loads(run.summary_json.read_text()), run.junit_xml


def _outcomes(summary: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {slo["name"]: (slo["outcome"], slo["passed"]) for slo in summary["slos"]}


def test_a_polite_client_against_retry_after_everywhere_passes_with_n_a(
    tmp_path: Path, target: Target
) -> None:
    code, output, summary, junit_xml = _run(
        tmp_path,
        textwrap.dedent(f"""\
        stack: {{kind: external, entry_url: "{target.url}", front_proxy: true}}
        load:
          locustfile: users.py
          phases: [{{name: only, duration: 8s, users: 4, spawn_rate: 20}}]
        faults:
          - {{name: wall, action: http-abort, target: edge, at: 2s, for: 3s,
              params: {{status: 503, retry_after: 1s}}}}
        """)
        + SLOS,
        RETRYING,
    )
    assert code == 0, output
    outcomes = _outcomes(summary)
    assert outcomes["backs-off"] == ("n/a", True), summary["slos"]
    assert outcomes["jittered"] == ("n/a", True), summary["slos"]
    assert outcomes["complies"] == ("pass", True)
    assert outcomes["retry-after-sent"] == ("pass", True)
    growth = next(slo for slo in summary["slos"] if slo["name"] == "backs-off")
    assert "followed a Retry-After" in growth["detail"]
    # The terminal says N/A, and JUnit skips the n/a cases with their reason.
    assert "N/A" in output
    junit = ET.parse(junit_xml).getroot()
    skipped = {
        case.get("name"): case.find("skipped")
        for case in junit.iter("testcase")
        if case.find("skipped") is not None
    }
    assert set(skipped) == {"backs-off", "jittered"}
    assert all(
        s is not None and (s.get("message") or "").startswith("n/a: ") for s in skipped.values()
    )


def test_a_run_without_any_request_fails_its_retry_slos_for_want_of_data(
    tmp_path: Path, target: Target
) -> None:
    code, output, summary, _ = _run(
        tmp_path,
        textwrap.dedent(f"""\
        stack: {{kind: external, entry_url: "{target.url}"}}
        load:
          locustfile: users.py
          phases: [{{name: only, duration: 3s, users: 2, spawn_rate: 20}}]
        """)
        + SLOS,
        IDLE,
    )
    assert code == 1, output
    assert target.requests == 0
    assert set(_outcomes(summary).values()) == {("no data", False)}
