"""Run directories of known content for the history and comparison tests: a summary.json
written as the report writes it (the keys history reads), and a provenance.json."""

from __future__ import annotations

import copy
import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from harness.report import write_reports
from tests.unit.fake_plots import plots_not_drawn
from tests.unit.test_report_synthetic import build_run, judgement

T0 = 1_760_000_000.0


@cache
def _template() -> dict[str, Any]:
    """A summary.json the report writer wrote (the synthetic run's): every key the schema
    asks for is there, and the figures are then set to the test's own."""
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(Path(tmp))
        with plots_not_drawn():  # only summary.json is read
            write_reports(run, judgement())
        loaded: dict[str, Any] = json.loads(run.summary_json.read_text(encoding="utf-8"))
    return loaded


def phase(
    base: dict[str, Any], name: str, *, rps: float, p99_ms: float, ratio_503: float
) -> dict[str, Any]:
    return {
        **base,
        "name": name,
        "rps": rps,
        "p50_ms": p99_ms / 4,
        "p95_ms": p99_ms / 2,
        "p99_ms": p99_ms,
        "ratio_503": ratio_503,
    }


def make_run(
    reports: Path,
    name: str,
    *,
    scenario: str = "ci-gate",
    at: float = 0.0,
    outcome: str = "PASS",
    rps: float = 100.0,
    p99_ms: float = 200.0,
    ratio_503: float = 0.01,
    recovery_s: float | None = 2.0,
    commit: str | None = "a" * 40,
) -> Path:
    """A finished run directory ``reports/name`` whose figures are exactly these."""
    root = reports / name
    root.mkdir(parents=True)
    summary = copy.deepcopy(_template())
    stats = phase(summary["phases"][0], "spike", rps=rps, p99_ms=p99_ms, ratio_503=ratio_503)
    slo = summary["slos"][0]
    summary.update(
        scenario=scenario,
        run=name,
        outcome=outcome,
        passed=outcome == "PASS",
        exit_code=0 if outcome == "PASS" else 1,
        started_at=T0 + at,
        slos=[{**slo, "name": "spike-503", "observed": ratio_503, "outcome": "pass"}],
        recoveries=[
            {
                **summary["recoveries"][0],
                "fault": "kill-app-1",
                "recovery_time_s": recovery_s,
                "recovered": recovery_s is not None,
            }
        ],
        phases=[stats],
        totals={**stats, "name": "total"},
    )
    (root / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    provenance = {"git_commit": commit, "git_branch": "main", "recorded_at": T0 + at}
    (root / "provenance.json").write_text(json.dumps(provenance), encoding="utf-8")
    return root
