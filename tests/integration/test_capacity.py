"""``harness capacity`` on the local shop, for real: it finds a breaking point, two searches
agree, and with one backend down the capacity is lower.

The answer is known: ``scenarios/capacity.yaml`` gives each of the three shop instances 4
database connections and holds the database link at 100 ms, so an instance serves at most
4 / 100 ms = 40 requests/s: 120/s healthy, 80/s with app-1 killed (past it, the shop sheds with
503). The search must break at or below those bounds and not far under them (the rest of the
machine's work may cost a step).

The stack is this module's own (the session stack runs the shop with other settings, and the
harness refuses to reuse a stack whose settings differ from the scenario's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_support import run_dirs
from stack_support import Harness, own_stack

from harness.record import RunDir

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "capacity.yaml"
# Close below the bounds, so each search is a few steps: the early stop ends it at the break.
FLAGS = ("--start", "60", "--step", "10", "--hold", "3s")
HEALTHY_BOUND = 120.0  # 3 instances x 4 connections / 100 ms
DEGRADED_BOUND = 80.0  # 2 instances


@pytest.fixture(scope="module")
def capacity_harness() -> Iterator[Harness]:
    env = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))["stack"]["env"]
    with own_stack("harness-it-capacity-", env) as running:
        yield running.harness


def _capacity(harness: Harness, scenario: Path, reports: Path, *flags: str) -> dict[str, Any]:
    done = harness.run(
        "capacity", str(scenario), "--reports", str(reports), *FLAGS, *flags, timeout_s=150
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
    (root,) = run_dirs(reports)
    assert (root / "capacity.png").stat().st_size > 0
    assert f"report: {root / 'report.html'}" in done.stdout
    summary: dict[str, Any] = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    summary["stdout"] = done.stdout
    return summary


def _healthy_only(tmp_path: Path) -> Path:
    data = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    data["capacity"]["faults"] = []
    data["load"]["locustfile"] = str(SCENARIO.parent / data["load"]["locustfile"])
    path = tmp_path / "healthy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_capacity_search_is_repeatable_and_lower_with_a_backend_down(
    capacity_harness: Harness, tmp_path: Path
) -> None:
    first = _capacity(capacity_harness, SCENARIO, tmp_path / "first")
    second = _capacity(capacity_harness, _healthy_only(tmp_path), tmp_path / "second")

    healthy, degraded = first["searches"]
    (again,) = second["searches"]
    assert healthy["faults"] == []
    assert degraded["faults"] == ["kill-app-1"]
    for search in (healthy, again, degraded):
        assert search["found"], search
        steps = search["steps"]
        # The early stop: the run ended at the first step that broke, far short of --max.
        assert [s["held"] for s in steps] == [True] * (len(steps) - 1) + [False]
        assert search["breaking"] == steps[-1]["offered"] < 200
        end = [e for e in RunDir.open(Path(search["run_dir"])).events() if e.kind == "run_end"]
        assert "ended_early" in end[-1].detail, end[-1].detail

    for search in (healthy, again):
        assert 0.7 * HEALTHY_BOUND <= search["capacity"] <= HEALTHY_BOUND, search
    spread = abs(healthy["capacity"] - again["capacity"]) / max(
        healthy["capacity"], again["capacity"]
    )
    assert spread <= 0.15, (healthy["capacity"], again["capacity"])

    assert degraded["capacity"] is not None
    assert degraded["capacity"] <= DEGRADED_BOUND
    assert degraded["capacity"] < min(healthy["capacity"], again["capacity"])

    # The terminal: a table of the steps and the result line of each search.
    out = first["stdout"]
    assert "capacity search: healthy" in out
    assert "capacity search: with kill-app-1 held" in out
    assert f"healthy: capacity {healthy['capacity']:g}/s (broke at" in out
