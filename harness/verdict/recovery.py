"""Recovery after a fault: when the service was back to its baseline, and what it cost.

The architecture's definition, made exact (every constant is a :class:`RecoveryPolicy` field):

- **Reference point**: the fault's revert (its ``fault_reverted`` event); for a self-healing fault
  (``restart``: the stack heals itself, nothing is reverted) its injection.
- **Baseline**: the first phase, or the one named (``recovery_time(F, baseline warmup)``), minus
  the time any fault disturbed it (from each fault's injection to its reference point plus the
  stable window). Its *good ratio* (2xx and 3xx ÷ responses, status 0 included) and its p95
  latency.
- **Bounds**: good ratio >= baseline - max(2 points, 5% of baseline), and
  p95 <= max(2 x baseline p95, baseline p95 + 100 ms). The ratio tolerance takes the looser of an
  absolute and a relative margin because a one-second window of a few dozen responses is noisy
  by a couple of points on its own; the latency bound is relative, with a floor so a 5 ms
  baseline does not make 11 ms a failure.
- **Smoothing**: every check looks at one second of buckets (ten 100 ms buckets), slid one bucket
  at a time, so noise is averaged over a second while the answer keeps 100 ms resolution. A
  second without any response is out of bounds: silence is not recovery.
- **Recovered**: at the start ``s`` of the first stretch ``[s, s + stable window)`` (default 5 s),
  at or after the reference point, in which every one-second window is within bounds, ``s``
  being a bucket with responses (a window half silent, half good is not evidence that the
  silent half had recovered). Recovery time is ``s - reference``. No such stretch before the
  end of the run: never recovered, which fails ``recovery_time``, never a missing value that
  passes.
- **First impact**: the first bucket after the injection that tips a one-second window out of
  bounds (or, when the window is out for silence, the first silent bucket), before the recovery
  (before the end of the run when it never recovered): what the service does once it has
  recovered, the next fault's impact say, is not this fault's. ``time_to_first_impact`` is from
  the injection to it (None: no impact seen).
- **Failed requests**: responses that were not good (status 0, 4xx, 5xx) from the injection to
  the recovery (to the end of the run when it never recovered).

For an outage whose edges fall on bucket boundaries this finds the recovery within one bucket
(100 ms) of the truth: the first clean one-second window starts where the outage ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from harness.record.buckets import BUCKETS_PER_SECOND, Bucket, bucket_start
from harness.record.histogram import Histogram
from harness.verdict.metrics import is_good, status_counts
from harness.verdict.rundata import FaultTimes, RunData, Span, first_bucket
from harness.verdict.units import format_value

__all__ = [
    "Bounds",
    "FaultRecovery",
    "RecoveryPolicy",
    "analyse_fault",
    "baseline_bounds",
    "reference_point",
]

_BASELINE_PERCENTILE: Final = 95.0


@dataclass(frozen=True)
class RecoveryPolicy:
    """The constants of the recovery definition (see the module docstring)."""

    step_s: float = 1.0
    """Smoothing: each check aggregates this much time (whole buckets)."""
    stable_s: float = 5.0
    """How long every check must stay within bounds to count as recovered."""
    ratio_tolerance: float = 0.02
    """Absolute drop of the good ratio allowed below the baseline (2 percentage points)..."""
    ratio_relative_tolerance: float = 0.05
    """...or this share of the baseline ratio, whichever is looser."""
    p95_factor: float = 2.0
    p95_margin_s: float = 0.1
    """p95 may reach max(p95_factor x baseline, baseline + p95_margin_s)."""

    def __post_init__(self) -> None:
        if self.step_s < 1 / BUCKETS_PER_SECOND or self.stable_s < self.step_s:
            raise ValueError("RecoveryPolicy: need 100 ms <= step_s <= stable_s")

    @property
    def step_buckets(self) -> int:
        return max(1, round(self.step_s * BUCKETS_PER_SECOND))

    @property
    def stable_buckets(self) -> int:
        return max(self.step_buckets, round(self.stable_s * BUCKETS_PER_SECOND))


@dataclass(frozen=True)
class Bounds:
    """The baseline a phase set, and the bounds a recovered service stays within."""

    phase: str
    good_ratio: float
    p95_s: float
    responses: int
    min_good_ratio: float
    max_p95_s: float

    def within(self, buckets: Sequence[Bucket]) -> bool:
        counts = status_counts(buckets)
        total = sum(counts.values())
        if not total:
            return False
        good = sum(n for code, n in counts.items() if is_good(code))
        # The same tolerance for float noise as the SLO comparisons: 95/100 is not below 0.95.
        if good / total < self.min_good_ratio - 1e-12:
            return False
        latency = Histogram.merged(bucket.latency for bucket in buckets)
        return latency.percentile(_BASELINE_PERCENTILE) <= self.max_p95_s

    def describe(self) -> str:
        return (
            f"good ratio >= {format_value(self.min_good_ratio, '%')} and p95 <= "
            f"{format_value(self.max_p95_s, 'ms')} (baseline phase {self.phase}: good "
            f"{format_value(self.good_ratio, '%')}, p95 {format_value(self.p95_s, 'ms')} over "
            f"{self.responses} responses)"
        )


@dataclass(frozen=True)
class FaultRecovery:
    """How one fault played out. Times are unix seconds; None where the thing never happened,
    with ``detail`` saying why in words a report can show as is."""

    fault: str
    self_healing: bool
    injected_at: float | None
    reverted_at: float | None
    reference_at: float | None
    bounds: Bounds | None
    impact_at: float | None
    recovered_at: float | None
    failed_requests: int | None
    detail: str

    @property
    def recovered(self) -> bool:
        return self.recovered_at is not None

    @property
    def recovery_time(self) -> float | None:
        """Seconds from the reference point to the recovery; None: never recovered."""
        if self.recovered_at is None or self.reference_at is None:
            return None
        return max(0.0, self.recovered_at - self.reference_at)

    @property
    def time_to_first_impact(self) -> float | None:
        """Seconds from the injection to the first impact; None: no impact seen."""
        if self.impact_at is None or self.injected_at is None:
            return None
        return max(0.0, self.impact_at - self.injected_at)


def reference_point(fault: FaultTimes) -> float | None:
    """What recovery is measured from: the revert, or the injection of a self-healing fault."""
    return fault.injected_at if fault.self_healing else fault.reverted_at


def baseline_bounds(
    data: RunData, phase: str | None = None, policy: RecoveryPolicy = RecoveryPolicy()
) -> Bounds | str:
    """The bounds from ``phase`` (default: the first), or why there are none."""
    if phase is None:
        if not data.phases:
            return "the run has no phases to take a baseline from"
        phase = data.phases[0][0]
    known, span = data.phase(phase)
    if not known:
        return f'no phase "{phase}" to take a baseline from'
    if span is None:
        return f"baseline phase {phase} never ran"
    disturbed = [_disturbed(fault, data.end, policy) for fault in data.faults]
    quiet = [
        bucket
        for bucket in data.buckets_in(span)
        if not any(lo <= bucket.idx < hi for lo, hi in disturbed)
    ]
    counts = status_counts(quiet)
    total = sum(counts.values())
    if not total:
        return f"baseline phase {phase} has no responses outside the faults' windows"
    good_ratio = sum(n for code, n in counts.items() if is_good(code)) / total
    p95 = Histogram.merged(bucket.latency for bucket in quiet).percentile(_BASELINE_PERCENTILE)
    return Bounds(
        phase=phase,
        good_ratio=good_ratio,
        p95_s=p95,
        responses=total,
        min_good_ratio=good_ratio
        - max(policy.ratio_tolerance, policy.ratio_relative_tolerance * good_ratio),
        max_p95_s=max(policy.p95_factor * p95, p95 + policy.p95_margin_s),
    )


def _disturbed(fault: FaultTimes, run_end: float, policy: RecoveryPolicy) -> tuple[int, int]:
    if fault.injected_at is None:
        return (0, 0)
    reference = reference_point(fault)
    end = (reference if reference is not None else run_end) + policy.stable_s
    return Span(fault.injected_at, end).bucket_range


def analyse_fault(
    data: RunData,
    name: str,
    *,
    baseline: str | None = None,
    policy: RecoveryPolicy = RecoveryPolicy(),
) -> FaultRecovery:
    """Impact, recovery and failed requests of fault ``name`` against phase ``baseline``."""
    fault = data.fault(name)
    if fault is None:
        return _nothing(name, f'no fault "{name}" in this run')
    if fault.injected_at is None:
        return _nothing(name, f"{name} was never injected", fault)
    bounds = baseline_bounds(data, baseline, policy)
    if isinstance(bounds, str):
        return _nothing(name, bounds, fault)
    scan = _Scan(data, bounds, policy)
    end_idx = first_bucket(data.end)

    reference = reference_point(fault)
    recovered: int | None = None
    if reference is None:
        why = f"never recovered: {name} was never reverted (no fault_reverted event)"
    else:
        recovered = scan.first_stable(first_bucket(reference), end_idx)
        since = "injection" if fault.self_healing else "revert"
        if recovered is None:
            left = max(0.0, data.end - reference)
            why = (
                f"never recovered: in the {format_value(left, 's')} from the {since} to the end "
                f"of the run, no {format_value(policy.stable_s, 's')} stretch had "
                f"{bounds.describe()}"
            )
        else:
            took = max(0.0, bucket_start(recovered) - reference)
            why = (
                f"recovered {format_value(took, 's')} after the {since}: "
                f"{format_value(policy.stable_s, 's')} with {bounds.describe()}"
            )
    failed_until = recovered if recovered is not None else end_idx
    # An impact is this fault's only before it recovered: whatever the service does after that
    # (the next fault, say) is not.
    impact = scan.first_impact(first_bucket(fault.injected_at), failed_until)
    impact_at = None if impact is None else max(fault.injected_at, bucket_start(impact))
    failed = sum(
        n
        for bucket in data.buckets_between(first_bucket(fault.injected_at), failed_until)
        for code, n in bucket.statuses.items()
        if not is_good(code)
    )
    return FaultRecovery(
        fault=name,
        self_healing=fault.self_healing,
        injected_at=fault.injected_at,
        reverted_at=fault.reverted_at,
        reference_at=reference,
        bounds=bounds,
        impact_at=impact_at,
        recovered_at=None if recovered is None else bucket_start(recovered),
        failed_requests=failed,
        detail=why,
    )


def _nothing(name: str, why: str, fault: FaultTimes | None = None) -> FaultRecovery:
    return FaultRecovery(
        fault=name,
        self_healing=fault is not None and fault.self_healing,
        injected_at=None if fault is None else fault.injected_at,
        reverted_at=None if fault is None else fault.reverted_at,
        reference_at=None,
        bounds=None,
        impact_at=None,
        recovered_at=None,
        failed_requests=None,
        detail=why,
    )


class _Scan:
    """One-second windows over the run, slid a bucket at a time (see the module docstring)."""

    def __init__(self, data: RunData, bounds: Bounds, policy: RecoveryPolicy) -> None:
        self.data = data
        self.bounds = bounds
        self.width = policy.step_buckets
        self.stable = policy.stable_buckets

    def window(self, start: int) -> Sequence[Bucket]:
        return self.data.buckets_between(start, start + self.width)

    def first_impact(self, injected: int, end: int) -> int | None:
        """The bucket where the service first left its bounds, from the injection on."""
        # The first window ends on the injection bucket: an impact in it shows at once.
        start = injected - self.width + 1
        while start + self.width <= end:
            window = self.window(start)
            if not self.bounds.within(window):
                # The window before was within bounds, so what tipped this one is the bucket
                # it added at its end; unless it is out for silence, which began at its start.
                silent = not any(bucket.statuses for bucket in window)
                return start if silent else start + self.width - 1
            start += 1
        return None

    def first_stable(self, reference: int, end: int) -> int | None:
        """The start of the first stretch of ``stable`` buckets whose every window is within
        bounds, at or after ``reference`` and ending by ``end``. A stretch starts on a bucket
        with responses: the first evidence of recovery, not the silence before it."""
        needed = self.stable - self.width + 1  # windows that tile the stretch
        streak: int | None = None
        start = reference
        while start + self.width <= end:
            window = self.window(start)
            if not self.bounds.within(window):
                streak = None
            elif streak is None and window[0].idx == start and window[0].statuses:
                streak = start
            if streak is not None and start - streak + 1 >= needed:
                return streak
            start += 1
        return None
