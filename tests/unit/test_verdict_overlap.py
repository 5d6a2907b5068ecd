"""Faults that confound each other's recovery: the warning before the run (overlap, none, edges
touching), the faults a recovery result names after it, and the scenario that ships."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.record.buckets import Bucket
from harness.scenario import Scenario, load_scenario, parse_scenario
from harness.verdict import parse_checks
from harness.verdict.judge import judge_data
from harness.verdict.overlap import overlap_warnings, overlapping_faults
from harness.verdict.rundata import FaultTimes, RunData, Span

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0
IDX0 = 17_000_000_000

SCENARIO = """
name: overlaps
load:
  locustfile: users.py
  phases:
    - {{name: warmup, duration: 10s, users: 10, spawn_rate: 10}}
    - {{name: spike, duration: 30s, users: 50, spawn_rate: 50}}
faults:
  - {{name: kill-app-1, action: kill, target: app-1, at: {kill_at}, for: 6s}}
  - {{name: slow-db, action: db-throttle, at: {slow_at}, for: 6s, params: {{latency: 50}}}}
slos:
  - {{name: kill-recovers, expr: "recovery_time(kill-app-1) < {allowed}"}}
"""


def scenario(tmp_path: Path, *, kill_at: str, slow_at: str, allowed: str = "4s") -> Scenario:
    (tmp_path / "users.py").write_text("# users\n")
    text = SCENARIO.format(kill_at=kill_at, slow_at=slow_at, allowed=allowed)
    return parse_scenario(textwrap.dedent(text), tmp_path / "overlaps.yaml")


def warnings(sc: Scenario) -> list[str]:
    return overlap_warnings(sc, parse_checks(sc).slos)


def test_a_fault_in_force_while_the_judged_one_is_warns_naming_both(tmp_path: Path) -> None:
    # slow-db 14..20 s inside kill-app-1's 12..18 s.
    lines = warnings(scenario(tmp_path, kill_at="12s", slow_at="14s"))
    assert lines == [
        'slo "kill-recovers": fault kill-app-1 (12s-18s + 4s to recover + 5s stable) overlaps '
        "slow-db (14s-20s); its recovery may be theirs"
    ]


def test_a_fault_starting_inside_the_recovery_allowance_warns(tmp_path: Path) -> None:
    # kill-app-1 ends at 18 s; its SLO allows 4 s of recovery; slow-db starts at 21 s.
    assert len(warnings(scenario(tmp_path, kill_at="12s", slow_at="21s"))) == 1


def test_a_fault_starting_inside_the_stable_stretch_warns(tmp_path: Path) -> None:
    # Recovered by 22 s at the latest, which takes until 27 s of good answers to prove: a fault
    # at 26.5 s would push the recovery later.
    assert len(warnings(scenario(tmp_path, kill_at="12s", slow_at="26.5s"))) == 1


def test_a_fault_starting_as_the_stable_stretch_ends_does_not_warn(tmp_path: Path) -> None:
    # Edges touching: kill-app-1 is judged until 18 + 4 + 5 = 27 s, slow-db starts at 27 s.
    assert warnings(scenario(tmp_path, kill_at="12s", slow_at="27s")) == []


def test_a_fault_ending_as_the_judged_one_starts_does_not_warn(tmp_path: Path) -> None:
    # slow-db 6..12 s, kill-app-1 from 12 s: touching, not overlapping.
    assert warnings(scenario(tmp_path, kill_at="12s", slow_at="6s")) == []


def test_faults_apart_do_not_warn(tmp_path: Path) -> None:
    assert warnings(scenario(tmp_path, kill_at="12s", slow_at="32s")) == []


def test_only_faults_a_recovery_slo_judges_are_warned_about(tmp_path: Path) -> None:
    # Overlapping, but no SLO judges slow-db's recovery: one warning, about kill-app-1's.
    lines = warnings(scenario(tmp_path, kill_at="12s", slow_at="14s"))
    assert all("fault kill-app-1" in line for line in lines)


@pytest.mark.integration  # the harness command
def test_validate_prints_the_warning_on_stderr_and_still_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "overlaps.yaml"
    text = SCENARIO.format(kill_at="12s", slow_at="14s", allowed="4s")
    path.write_text(textwrap.dedent(text))
    (tmp_path / "users.py").write_text(
        "from locust import HttpUser, task\n\n\n"
        "class ShopUser(HttpUser):\n    @task\n    def index(self):\n"
        '        self.client.get("/")\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("valid: ")
    warned = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert len(warned) == 1, done.stderr
    assert warned[0].startswith(f"{path}: warning: ")
    assert "kill-app-1" in warned[0]
    assert "slow-db" in warned[0]


def test_the_ci_gate_scenario_does_not_confound_its_recoveries() -> None:
    sc = load_scenario(REPO / "scenarios" / "ci_gate.yaml")
    assert warnings(sc) == []


# --- after the run -------------------------------------------------------------------------


def run(faults: tuple[FaultTimes, ...]) -> RunData:
    buckets = []
    for i in range(400):
        b = Bucket(IDX0 + i)
        b.statuses = {200: 10}
        b.latency.record(0.02, 10)
        b.attempts = b.done = 10
        buckets.append(b)
    return RunData(
        start=T0,
        end=T0 + 40,
        buckets=tuple(buckets),
        phases=(("warmup", Span(T0, T0 + 10)), ("spike", Span(T0 + 10, T0 + 40))),
        faults=faults,
    )


def fault(name: str, start: float, end: float) -> FaultTimes:
    return FaultTimes(
        name, "kill", Span(T0 + start, T0 + end), injected_at=T0 + start, reverted_at=T0 + end
    )


def test_the_faults_in_force_before_a_recovery_are_named() -> None:
    data = run((fault("kill-app-1", 14, 22.6), fault("slow-db", 12, 26)))
    assert overlapping_faults(data, "kill-app-1", T0 + 26.6) == ("slow-db",)
    # A fault that starts once the other has recovered does not confound it.
    data = run((fault("kill-app-1", 12, 18), fault("slow-db", 23, 29)))
    assert overlapping_faults(data, "kill-app-1", T0 + 18.5) == ()
    # ...but one that starts before it recovered does.
    assert overlapping_faults(data, "kill-app-1", T0 + 24.0) == ("slow-db",)


def test_the_judgement_carries_the_overlap_on_the_recovery_and_in_the_slo_detail(
    tmp_path: Path,
) -> None:
    sc = scenario(tmp_path, kill_at="12s", slow_at="14s")
    data = run((fault("kill-app-1", 12, 18), fault("slow-db", 14, 20)))
    judged = judge_data(data, sc)
    by_fault = {r.fault: r for r in judged.recoveries}
    assert by_fault["kill-app-1"].overlapping == ("slow-db",)
    assert by_fault["slow-db"].overlapping == ("kill-app-1",)
    (verdict,) = judged.verdicts
    assert "not this fault's alone: slow-db also in force" in verdict.detail
