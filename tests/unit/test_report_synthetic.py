"""A synthetic run directory whose every number is known, and the verdict doubles the report
tests use (until harness.verdict lands, and independent of it after).

The run, in seconds since the start of its first phase (T0)::

    phases   warmup 0-10 (10 users) · spike 10-30 (50 users) · cooldown 30-40 (10 users)
    faults   kill-app-1 injected 12, reverted 18 · slow-db injected 25, reverted 28
    per 100 ms bucket (so per second: x10)
      warmup, cooldown    2 x 200 (20 ms)                      -> 20/s
      spike               5 x 200 (20 ms)                      -> 50/s
      12.0-14.0 outage    3 x no response (1 s) + 2 x 503      -> 50/s, 503 share 40%
      14.0-15.0 silence   no bucket at all                     -> 0/s, no ratio
      15.0-18.0 recovery  4 x 200 + 1 x 503, 1 retry, 4 done   -> 50/s, 20%, amplification 1.25
      20.0-20.1           + 1 x 302, 1 x 404, 1 x 500          -> second 20: 53/s
      25.0-28.0 slow-db   5 x 200 at 800 ms                    -> 50/s, p99 800 ms
    the run directory was created 5 s before the load (started_at = T0 - 5); it ends at 40.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.record import EventKind, RunDir, RunStatus, RunWriter
from harness.record.buckets import AttemptRecord, Bucket, SerializedBucket
from harness.scenario import parse_scenario

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z, the start of the first phase
CREATED = T0 - 5.0
ENDED = T0 + 40.5
PHASES = (("warmup", 0.0, 10.0, 10), ("spike", 10.0, 30.0, 50), ("cooldown", 30.0, 40.0, 10))
FAULTS = (
    ("kill-app-1", 12.0, 18.0, "kill app-1 (SIGKILL)"),
    ("slow-db", 25.0, 28.0, "latency 800ms on app-db"),
)
SCENARIO_YAML = """
name: flash-sale
description: A sale opens and a backend dies mid-spike.
load:
  locustfile: shop_locustfile.py
  phases:
    - {name: warmup, duration: 10s, users: 10, spawn_rate: 10}
    - {name: spike, duration: 20s, users: 50, spawn_rate: 50}
    - {name: cooldown, duration: 10s, users: 10, spawn_rate: 50}
faults:
  - {name: kill-app-1, action: kill, target: app-1, at: 12s, for: 6s}
  - name: slow-db
    action: toxic
    target: app-db
    at: 25s
    for: 3s
    params: {type: latency, latency: 800}
slos:
  - {name: spike-503, expr: "ratio(status == 503) < 5% during phase spike"}
  - {name: no-500s, expr: "count(status == 500) == 0"}
  - {name: p99-warmup, expr: "p99(latency) < 100ms during phase warmup"}
  - {name: recovery, expr: "recovery_time(kill-app-1) < 10s"}
"""


# --- verdict doubles: the shape harness.verdict promises --------------------------------------


@dataclass(frozen=True)
class FakeVerdict:
    name: str
    expression: str
    window_label: str
    observed: float | None
    threshold: float
    comparator: str
    unit: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class FakeRecovery:
    fault: str
    injected_at: float
    reverted_at: float | None
    reference_at: float
    recovered_at: float | None
    recovery_time_s: float | None
    time_to_first_impact_s: float | None
    failed_requests: int


@dataclass(frozen=True)
class FakeJudgement:
    verdicts: tuple[FakeVerdict, ...] = ()
    recoveries: tuple[FakeRecovery, ...] = ()
    passed: bool = True
    aborted: bool = False
    incomplete: bool = False


# Values in base units, as the verdict holds them: 12% is 0.12, 20 ms is 0.02.
SPIKE_503 = FakeVerdict(
    "spike-503",
    "ratio(status == 503) < 5% during phase spike",
    "phase spike",
    0.12,
    0.05,
    "<",
    "%",
    False,
    "110 of 1000 attempts",
)
NO_500S = FakeVerdict(
    "no-500s", "count(status == 500) == 0", "whole run", 1.0, 0.0, "==", "", False
)
P99_WARMUP = FakeVerdict(
    "p99-warmup",
    "p99(latency) < 100ms during phase warmup",
    "phase warmup",
    0.02,
    0.1,
    "<",
    "ms",
    True,
)
KILL_RECOVERY = FakeRecovery("kill-app-1", T0 + 12, T0 + 18, T0 + 18, T0 + 22.2, 4.2, 0.1, 150)


@dataclass(frozen=True)
class VerdictModuleRecovery:
    """The shape harness.verdict.recovery.FaultRecovery has in the tree today: properties
    without the ``_s``, no ``reverted_at``, a ``detail``, and None where nothing was measured."""

    fault: str
    injected_at: float | None
    reference_at: float | None
    recovered_at: float | None
    failed_requests: int | None
    detail: str

    @property
    def recovery_time(self) -> float | None:
        if self.recovered_at is None or self.reference_at is None:
            return None
        return self.recovered_at - self.reference_at

    @property
    def time_to_first_impact(self) -> float | None:
        return 0.3 if self.injected_at is not None else None


SLOW_DB_RECOVERY = VerdictModuleRecovery(
    "slow-db", T0 + 25, T0 + 28, None, 0, "never recovered: no 5s stretch within bounds"
)


def judgement(**overrides: Any) -> FakeJudgement:
    """The synthetic run's verdict: two SLOs fail, one passes, "recovery" is left unjudged."""
    values: dict[str, Any] = {
        "verdicts": (SPIKE_503, NO_500S, P99_WARMUP),
        "recoveries": (KILL_RECOVERY, SLOW_DB_RECOVERY),
        "passed": False,
    }
    return FakeJudgement(**(values | overrides))


# --- the run -----------------------------------------------------------------------------------


def make_bucket(
    idx: int,
    statuses: Mapping[int, int],
    latency: Mapping[int, float],
    *,
    retries: int = 0,
    failed_codes: tuple[int, ...] = (0,),
) -> SerializedBucket:
    bucket = Bucket(idx)
    for code, n in statuses.items():
        bucket.statuses[code] = n
        bucket.latency.record(latency.get(code, 0.05), n)
        bucket.attempts += n
        if code == 503:
            bucket.retry_after_503 += n
    bucket.retries = retries
    bucket.done = bucket.attempts - retries
    bucket.failed = sum(statuses.get(c, 0) for c in failed_codes)
    return bucket.to_dict()


def statuses_at(s: float) -> dict[int, int] | None:
    """The statuses of the bucket starting ``s`` seconds after T0 (None: no bucket)."""
    if 14.0 <= s < 15.0:
        return None
    if 12.0 <= s < 14.0:
        return {0: 3, 503: 2}
    if 15.0 <= s < 18.0:
        return {200: 4, 503: 1}
    if 10.0 <= s < 30.0:
        extra = {302: 1, 404: 1, 500: 1} if s == 20.0 else {}
        return {200: 5, **extra}
    return {200: 2}


def buckets() -> list[SerializedBucket]:
    out = []
    first = round(T0 * 10)
    for tenth in range(400):
        s = tenth / 10
        statuses = statuses_at(s)
        if statuses is None:
            continue
        ok_latency = 0.8 if 25.0 <= s < 28.0 else 0.02
        latency = {200: ok_latency, 503: 0.002, 0: 1.0}
        retries = 1 if 15.0 <= s < 18.0 else 0
        out.append(make_bucket(first + tenth, statuses, latency, retries=retries))
    return out


def clock_at(t: float) -> Any:
    return lambda: t


def _phase_events(writer: RunWriter, upto: float) -> None:
    for index, (name, start, end, users) in enumerate(PHASES):
        if start >= upto:
            return
        detail = {"index": index, "users": users, "spawn_rate": 10.0}
        # Observed on time: a test of a late master makes its own events.
        started = {**detail, "planned": T0 + start}
        writer.event(EventKind.PHASE_START, name, started, t=T0 + start)
        if end <= upto:
            ended = {**detail, "planned": T0 + end}
            writer.event(EventKind.PHASE_END, name, ended, t=T0 + end)


def _fault_events(writer: RunWriter, upto: float, *, revert: bool = True) -> None:
    for n, (name, at, until, description) in enumerate(FAULTS):
        if at >= upto:
            return
        detail = {"id": f"f{n}", "kind": "x", "target": "t", "description": description}
        writer.event(EventKind.FAULT_JOURNALED, name, detail, t=T0 + at - 0.001)
        writer.event(EventKind.FAULT_INJECTED, name, detail, t=T0 + at)
        if revert and until <= upto:
            writer.event(EventKind.FAULT_REVERTED, name, detail, t=T0 + until)


def build_run(
    base: Path,
    *,
    upto: float = 40.0,
    finish: RunStatus | None = RunStatus.COMPLETED,
    revert: bool = True,
    with_buckets: bool = True,
    error: str | None = None,
) -> RunDir:
    """The synthetic run, recorded up to ``upto`` seconds; ``finish=None`` leaves it as a
    crashed writer would (status running, lock free)."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "shop_locustfile.py").write_text("")
    scenario = parse_scenario(SCENARIO_YAML, base / "flash-sale.yaml")
    run = RunDir.create(base / "reports", scenario.name, clock=clock_at(CREATED))
    writer = run.writer(clock=clock_at(T0 + upto + 0.5))
    writer.set_scenario(scenario.to_dict())
    _phase_events(writer, upto)
    _fault_events(writer, upto, revert=revert)
    if with_buckets:
        limit = round(T0 * 10) + round(upto * 10)
        writer.upsert_buckets(b for b in buckets() if b["idx"] < limit)
        writer.add_attempts(
            [
                AttemptRecord("w1-7", 1, T0 + 15.0, 503, 0.002, None),
                AttemptRecord("w1-7", 2, T0 + 15.6, 200, 0.02, 0.5),
                AttemptRecord("w1-9", 1, T0 + 16.0, 503, 0.002, None),
                AttemptRecord("w1-9", 2, T0 + 16.4, 200, 0.02, 0.5),
            ]
        )
    if finish is not None:
        writer.finish(finish, detail={"error": error} if error else None)
    writer.close()
    return run


@dataclass
class Truth:
    """Per-second expectations, derived from the table in the module docstring."""

    rps: dict[int, float] = field(default_factory=dict)
    ratio_503: dict[int, float] = field(default_factory=dict)


def per_second_truth() -> Truth:
    truth = Truth()
    for second in range(40):
        counts: dict[int, int] = {}
        for tenth in range(10):
            for code, n in (statuses_at(second + tenth / 10) or {}).items():
                counts[code] = counts.get(code, 0) + n
        total = sum(counts.values())
        truth.rps[second] = float(total)
        truth.ratio_503[second] = counts.get(503, 0) / total if total else math.nan
    return truth


# --- the fixture reads back as built -----------------------------------------------------------


def test_the_synthetic_run_reads_back_as_built(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    assert run.status is RunStatus.COMPLETED
    assert run.meta["started_at"] == CREATED
    assert len(run.buckets()) == 390  # 400 tenths, less the silent second
    assert len(run.attempts()) == 4
    kinds = [e.kind for e in run.events()]
    assert kinds.count(EventKind.PHASE_START) == 3
    assert kinds.count(EventKind.FAULT_INJECTED) == 2


def test_a_run_left_without_an_end_reads_as_crashed(tmp_path: Path) -> None:
    run = build_run(tmp_path, upto=20.0, finish=None)
    assert run.status is RunStatus.CRASHED
    assert "ended_at" not in run.meta


def test_the_truth_table_has_the_known_outage_and_503s() -> None:
    truth = per_second_truth()
    assert truth.rps[5] == 20
    assert truth.rps[11] == 50
    assert truth.rps[20] == 53
    assert truth.rps[12] == 50
    assert truth.ratio_503[12] == pytest.approx(0.4)
    assert truth.rps[14] == 0
    assert math.isnan(truth.ratio_503[14])
    assert truth.ratio_503[16] == pytest.approx(0.2)
