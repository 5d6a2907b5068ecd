"""Judging a recorded run end to end: a synthetic run store written the way the master writes
it, read back into verdicts, recoveries, and how the run ended."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness.verdict
from harness.record import EventKind, RunDir, RunStatus
from harness.record.buckets import AttemptRecord, Bucket
from harness.scenario import Scenario, parse_scenario
from harness.verdict import judge
from harness.verdict.rundata import RunData, Span

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000

SCENARIO = """
name: judged
load:
  locustfile: users.py
  phases:
    - {name: warmup, duration: 20s, users: 10, spawn_rate: 10}
    - {name: spike, duration: 40s, users: 50, spawn_rate: 50}
faults:
  - {name: kill-app-1, action: kill, target: app-1, at: 25s, for: 10s}
  - {name: restart-app-2, action: restart, target: app-2, at: 45s}
slos:
  - {name: no-500s, expr: "count(status == 500) == 0"}
  - {name: spike-503s, expr: "ratio(status == 503) < 10% during phase spike"}
  - {name: recovers, expr: "recovery_time(kill-app-1) < 5s"}
  - {name: polite-clients, expr: "retry_after_compliance >= 99%"}
guards:
  - "abort if ratio(status >= 500) > 50% for 15s"
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    (tmp_path / "users.py").write_text("# users\n")
    return parse_scenario(textwrap.dedent(SCENARIO), tmp_path / "judged.yaml")


def healthy(at_s: float, *, n: int = 20, statuses: dict[int, int] | None = None) -> Bucket:
    b = Bucket(IDX0 + round(at_s * 10))
    b.statuses = statuses or {200: n}
    total = sum(b.statuses.values())
    b.latency.record(0.05, total)
    b.attempts = b.done = total
    return b


def traffic(*, outage_until: float = 37.0, until: float = 60.0) -> list[Bucket]:
    """20 responses per 100 ms; the kill (25 s) is an outage of 502s until ``outage_until``;
    in the spike one response in twenty is a 503 (5%)."""
    out = []
    for i in range(round(until * 10)):
        t = i / 10
        if 25.0 <= t < outage_until:
            out.append(healthy(t, statuses={502: 20}))
        elif t >= 20.0:
            out.append(healthy(t, statuses={200: 19, 503: 1}))
        else:
            out.append(healthy(t))
    return out


def polite_retries() -> list[AttemptRecord]:
    records = []
    for i in range(10):
        t = T0 + 21 + i
        records.append(AttemptRecord(f"w1-{i}", 1, t, 503, 0.1, None))
        records.append(AttemptRecord(f"w1-{i}", 2, t + 0.1 + 1.05, 200, 0.1, 1.0))
    return records


def record_run(
    tmp_path: Path,
    *,
    buckets: list[Bucket],
    attempts: list[AttemptRecord] | None = None,
    status: RunStatus | None = RunStatus.COMPLETED,
    breach: bool = False,
    spike_late_s: float = 0.0,
) -> RunDir:
    """A run store as the master writes it. ``status`` None: the writer dies without finishing
    (a crash). ``spike_late_s``: the master marked the spike that late."""
    run = RunDir.create(tmp_path / "reports", "judged", clock=lambda: T0 - 5)
    writer = run.writer(clock=lambda: T0)
    writer.set_meta("load_started_at", T0)
    spike_at = T0 + 20 + spike_late_s
    writer.event(EventKind.PHASE_START, "warmup", {"index": 0}, t=T0)
    writer.event(EventKind.PHASE_END, "warmup", {"index": 0}, t=spike_at)
    writer.event(EventKind.PHASE_START, "spike", {"index": 1}, t=spike_at)
    writer.event(EventKind.FAULT_JOURNALED, "kill-app-1", {}, t=T0 + 25.0)
    writer.event(EventKind.FAULT_INJECTED, "kill-app-1", {}, t=T0 + 25.02)
    writer.event(EventKind.FAULT_REVERTED, "kill-app-1", {}, t=T0 + 35.01)
    writer.event(EventKind.FAULT_INJECTED, "restart-app-2", {}, t=T0 + 45.0)
    writer.event(EventKind.FAULT_REVERTED, "restart-app-2", {"self_healing": True}, t=T0 + 45.0)
    if breach:
        writer.event(
            EventKind.GUARD_BREACH, "storm", {"detail": "ratio(status >= 500) > 50%: held"}
        )
    writer.upsert_buckets([b.to_dict() for b in buckets])
    writer.add_attempts(attempts if attempts is not None else polite_retries())
    if status is None:
        writer.close()  # no finish: the store says running, and no writer holds it
        return run
    writer.event(EventKind.PHASE_END, "spike", {"index": 1}, t=T0 + 60)
    writer.finish(status, t=T0 + 61)
    writer.close()
    return run


def test_a_run_that_meets_every_slo_passes(tmp_path: Path, scenario: Scenario) -> None:
    run = record_run(tmp_path, buckets=traffic())
    judgement = judge(RunDir.open(run.root), scenario)
    assert [v.name for v in judgement.verdicts] == [
        "no-500s",
        "spike-503s",
        "recovers",
        "polite-clients",
    ]
    assert all(v.passed for v in judgement.verdicts), [str(v) for v in judgement.verdicts]
    assert judgement.passed
    assert not judgement.aborted
    assert not judgement.incomplete
    assert judgement.status is RunStatus.COMPLETED
    spike = judgement.verdicts[1]
    # 5% 503s for the 28 s of the spike outside the outage, whose 502s dilute them: 3.5%.
    assert spike.observed == pytest.approx(0.035)
    recovers = judgement.verdicts[2]
    # The revert event is at 35.01 s; the outage ends at 37 s: 1.99 s, to the bucket.
    assert recovers.observed == pytest.approx(2.0, abs=0.1)


def test_a_faults_recovery_is_reported_against_the_baseline_its_slo_names(
    tmp_path: Path, scenario: Scenario
) -> None:
    # The spike runs slower than the warm-up: judged against the warm-up the kill never
    # recovers; against the spike's own quiet seconds it does. The fault table must show the
    # recovery the SLO judged, not another one.
    slow_spike = []
    for b in traffic():
        if b.idx >= IDX0 + 200:
            slow = Bucket(b.idx)
            slow.statuses = dict(b.statuses)
            slow.latency.record(0.3, sum(b.statuses.values()))
            slow.attempts = slow.done = b.attempts
            b = slow
        slow_spike.append(b)
    run = record_run(tmp_path, buckets=slow_spike)
    data = scenario.to_dict()
    data["slos"] = [{"name": "recovers", "expr": "recovery_time(kill-app-1, baseline spike) < 5s"}]
    judgement = judge(run, Scenario.from_dict(data))
    (verdict,) = judgement.verdicts
    kill = judgement.recoveries[0]
    assert verdict.passed, verdict
    assert kill.recovery_time == verdict.observed
    assert "baseline phase spike" in kill.detail
    # Without an SLO naming a baseline, the first phase is the baseline, as before.
    plain = judge(run, scenario).recoveries[0]
    assert not plain.recovered
    assert "baseline phase warmup" in plain.detail


def test_one_failing_slo_fails_the_run(tmp_path: Path, scenario: Scenario) -> None:
    run = record_run(tmp_path, buckets=traffic(outage_until=45.0))
    judgement = judge(run, scenario)
    failed = [v.name for v in judgement.verdicts if not v.passed]
    assert failed == ["recovers"]
    assert not judgement.passed
    assert judgement.verdicts[2].observed == pytest.approx(10.0, abs=0.1)


def test_recoveries_are_reported_for_every_fault(tmp_path: Path, scenario: Scenario) -> None:
    judgement = judge(record_run(tmp_path, buckets=traffic()), scenario)
    kill, restart = judgement.recoveries
    assert kill.fault == "kill-app-1"
    assert kill.injected_at == T0 + 25.02
    assert kill.reverted_at == kill.reference_at == T0 + 35.01
    # The buckets from the one the injection falls in (observed at 25.02 s, 20 ms into the
    # bucket the outage starts in: the nearest boundary is 25.0 s) to the recovery (37.0 s):
    # every failure of the outage, none of the healthy traffic around it.
    assert kill.failed_requests == 120 * 20
    assert restart.fault == "restart-app-2"
    assert restart.self_healing
    assert restart.reference_at == T0 + 45.0
    assert restart.impact_at is None
    assert restart.recovery_time == pytest.approx(0.0, abs=0.1)


def test_a_guard_breach_marks_the_run_aborted(tmp_path: Path, scenario: Scenario) -> None:
    run = record_run(tmp_path, buckets=traffic(), breach=True, status=RunStatus.ABORTED)
    judgement = judge(run, scenario)
    assert judgement.aborted
    assert judgement.abort_reasons == ("ratio(status >= 500) > 50%: held",)
    assert not judgement.passed
    assert all(v.passed for v in judgement.verdicts)


def test_a_crashed_run_is_incomplete(tmp_path: Path, scenario: Scenario) -> None:
    run = record_run(tmp_path, buckets=traffic(until=40.0), status=None)
    judgement = judge(run, scenario)
    assert judgement.status is RunStatus.CRASHED
    assert judgement.incomplete
    assert not judgement.passed


def test_phase_windows_are_where_the_master_observed_them(
    tmp_path: Path, scenario: Scenario
) -> None:
    # The master marked the spike 2 s late: warm-up traffic until 22 s belongs to warm-up.
    buckets = [healthy(i / 10, statuses={200: 10, 503: 10}) for i in range(200, 220)]
    buckets += [healthy(i / 10) for i in range(220, 600)]
    data = RunData.from_run_dir(record_run(tmp_path, buckets=buckets, spike_late_s=2.0), scenario)
    assert data.phase("spike") == (True, Span(T0 + 22.0, T0 + 60))
    assert data.phase("warmup") == (True, Span(T0, T0 + 22.0))
    judgement = judge(record_run(tmp_path, buckets=buckets, spike_late_s=2.0), scenario)
    assert judgement.verdicts[1].observed == 0.0


def test_a_store_without_phase_events_falls_back_to_the_plan(
    tmp_path: Path, scenario: Scenario
) -> None:
    run = RunDir.create(tmp_path / "reports", "judged", clock=lambda: T0)
    with run.writer(clock=lambda: T0 + 60) as writer:
        writer.set_meta("load_started_at", T0)
        writer.upsert_buckets([healthy(1.0).to_dict()])
    data = RunData.from_run_dir(run, scenario)
    assert data.phases == (
        ("warmup", Span(T0, T0 + 20)),
        ("spike", Span(T0 + 20, T0 + 60)),
    )
    assert data.end == T0 + 60
    fault = data.fault("kill-app-1")
    assert fault is not None
    assert fault.injected_at is None
    assert fault.planned == Span(T0 + 25, T0 + 35)


def test_the_package_exports_a_small_public_surface() -> None:
    for name in harness.verdict.__all__:
        assert hasattr(harness.verdict, name), name
    assert sorted(harness.verdict.__all__) == sorted(
        [
            "Checks",
            "FaultRecovery",
            "GuardBreach",
            "GuardEvaluator",
            "Judgement",
            "RecoveryPolicy",
            "Verdict",
            "check_names",
            "judge",
            "parse_checks",
            "parse_guard",
            "parse_slo",
        ]
    )


@pytest.mark.integration  # a Python process
def test_the_verdict_never_imports_locust_or_gevent() -> None:
    code = (
        "import sys, harness.verdict, harness.verdict.judge, harness.verdict.guards\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
