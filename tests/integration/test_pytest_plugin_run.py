"""The pytest plugin for real: a user's test file, run by pytest in a subprocess, against the
session's local stack (free ports, its own state directory), through the same engine as
``harness run``. One check passes with a backend killed mid-run; one fails on an impossible SLO,
and its failure names that SLO, what was observed, and the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stack_support import RunningStack

# In a test module, not a conftest: pytest refuses ``pytest_plugins`` in a non-root conftest.
pytest_plugins = ["pytester"]

pytestmark = pytest.mark.integration

SHOP_LOCUSTFILE = Path(__file__).parents[2] / "scenarios" / "shop_locustfile.py"
# About 30 s: two runs (6 s and 3 s of load, plus the Locust start and the report each).
INNER_TIMEOUT_S = 120.0

CHECKS = """
SHOP = {locustfile!r}


def test_the_shop_answers_no_500_with_a_backend_killed(harness_run):
    outcome = harness_run(
        phases=[{{"name": "base", "duration": "6s", "users": 8, "spawn_rate": 8}}],
        faults=[
            {{"name": "kill-app-1", "action": "kill", "target": "app-1", "at": "2s", "for": "2s"}}
        ],
        slos=["count(status == 500) == 0"],
        locustfile=SHOP,
        user_classes=["ShopUser"],
    )
    assert outcome.passed, outcome.failed_slos
    assert outcome.summary["faults"][0]["name"] == "kill-app-1"


def test_an_impossible_slo_fails(harness_run):
    outcome = harness_run(
        phases=[{{"name": "base", "duration": "3s", "users": 4, "spawn_rate": 8}}],
        slos=[{{"name": "impossible", "expr": "count(status == 200) == 0"}}],
        locustfile=SHOP,
        user_classes=["ShopUser"],
    )
    assert outcome.passed, outcome.failed_slos
"""


def test_resilience_checks_run_as_pytest_tests_against_the_local_stack(
    stack: RunningStack, pytester: pytest.Pytester
) -> None:
    pytester.makeini(
        """
        [pytest]
        harness_reports = run-reports
        """
    )
    pytester.makepyfile(test_checks=CHECKS.format(locustfile=str(SHOP_LOCUSTFILE)))
    result = pytester.runpytest_subprocess(
        "--harness-stack=local",
        f"--harness-state-dir={stack.harness.state_dir}",
        "-p",
        "no:cacheprovider",
        timeout=INNER_TIMEOUT_S,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_an_impossible_slo_fails _*",
            "E*AssertionError: run FAIL (exit 1): 1 of 1 SLO(s) failed",
            "E*  impossible: observed *, needs == 0 (whole run)",
            "E*report: run-reports/test_an_impossible_slo_fails-*/report.html",
        ]
    )

    # The same run directories as `harness run` writes, under the ini file's reports directory.
    runs = sorted(p for p in (pytester.path / "run-reports").iterdir() if p.is_dir())
    assert len(runs) == 2
    assert runs[0].name.startswith("test_an_impossible_slo_fails-")
    assert runs[1].name.startswith("test_the_shop_answers_no_500_with_a_backend_killed-")
    for run in runs:
        for name in ("summary.json", "junit.xml", "report.html"):
            assert (run / name).is_file(), run / name
    failed = json.loads((runs[0] / "summary.json").read_text())
    assert failed["outcome"] == "FAIL"
    (impossible,) = failed["slos"]
    assert impossible["name"] == "impossible"
    assert impossible["observed"] > 0
    passed = json.loads((runs[1] / "summary.json").read_text())
    assert passed["outcome"] == "PASS", passed

    # The stack was up before the checks: the plugin used it and left it up.
    assert stack.harness.stack().status().healthy
