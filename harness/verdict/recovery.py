"""Recovery after a fault: when the service was back to its baseline, and what it cost.

The architecture's definition, made exact (every constant is a :class:`RecoveryPolicy` field).
A *failed* answer is the one definition of :mod:`harness.record.outcome` (no response, 5xx, or a
status the scenario declares failed); every other answer is *good*, a 409 included.

- **Reference point**: the instant of the fault's revert (its ``fault_reverted`` event, a
  timestamp, not a bucket edge); for a self-healing fault (``restart``: the stack heals itself,
  nothing is reverted) its injection.
- **Baseline**: the first phase, or the one named (``recovery_time(F, baseline warmup)``), minus
  the time any fault disturbed it (from each fault's injection to its reference point plus the
  stable window). Its *good ratio* (good ÷ answers, status 0 included), its p95 latency and its
  rate (answers per second of the undisturbed time, silent buckets counted).
- **Bounds**: a one-second window is within bounds when it holds **enough answers**, good ratio
  >= baseline - max(2 points, 5% of baseline) and p95 <= max(2 x baseline p95, baseline p95 +
  100 ms). Enough answers: at least a quarter of what the baseline rate puts in a window, and at
  least 3 (fewer when the baseline itself has fewer than 3 a window). Silence, a lone answer or
  a trickle while clients still wait out a Retry-After is never evidence of recovery. A quarter
  because clients that were sleeping out a Retry-After (or a backoff) of up to a second come back
  spread over that second: the first second after a true recovery holds about half the
  baseline's answers, and the minimum must not delay a true recovery; the floor of 3 keeps a
  single stray answer from making a ratio. The ratio tolerance takes the looser of an absolute
  and a relative margin because a one-second window of a few dozen answers is noisy by a couple
  of points on its own; the latency bound is relative, with a floor so a 5 ms baseline does not
  make 11 ms a failure.
- **Smoothing**: every check looks at one second of buckets (ten 100 ms buckets), slid one bucket
  at a time, so noise is averaged over a second while the answer keeps 100 ms resolution.
- **Good bucket**: a 100 ms bucket with answers whose good ratio on its own is within the ratio
  bound (with a 100% baseline: no failed answer at all).
- **Recovered**: at the first good bucket ``F`` at or after the reference point from which a
  stretch ``[F, F + stable window)`` (default 5 s) has every one-second window within bounds. A
  bucket of 503s, a silent bucket, or a window half silent can never start it. ``F`` is then
  moved back over the unbroken run of answered buckets just before it that hold nothing failed
  and a p95 in bounds: clients returning from a ``Retry-After`` come back over a second, so the
  windows' answer count may hold only a few buckets after the good answers began.
  No such stretch before the end of the run: never recovered, which fails ``recovery_time``,
  never a missing value that passes.
- **Recovery time**: from the reference instant to the edge the buckets place the recovery at,
  so that the error is at most one bucket and centred on zero. Let ``P`` be the bucket before
  ``F``. ``P`` held failed and good answers: the edge is inside ``P``, reported at its middle
  (``start(F) - 50 ms``, error within ±50 ms). ``P`` held failed answers only: the edge is
  between its last failure and ``F``'s first good answer, ``[start(P), end(F))``, reported at
  their middle, ``start(F)`` (error within ±100 ms). ``P`` silent: the edge lies somewhere in the
  silence, which nothing measured; ``start(F)``, the first evidence, is reported (late by at
  most the silence, never early by more than a bucket). Never before the reference point.
- **First impact**: the first bucket after the injection that tips a one-second window out of
  bounds (or, when the window is out for silence, the first silent bucket), before the recovery
  (before the end of the run when it never recovered): what the service does once it has
  recovered, the next fault's impact say, is not this fault's. ``time_to_first_impact`` is from
  the injection to it (None: no impact seen).
- **Failed requests**: failed answers from the injection to the recovery (to the end of the run
  when it never recovered).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

from harness.record.buckets import BUCKET_SECONDS, BUCKETS_PER_SECOND, Bucket, bucket_start
from harness.record.histogram import Histogram
from harness.record.outcome import failed_count
from harness.verdict.metrics import status_counts
from harness.verdict.rundata import FaultTimes, RunData, Span, first_bucket
from harness.verdict.units import measured

__all__ = [
    "Bounds",
    "FaultRecovery",
    "RecoveryPolicy",
    "analyse_fault",
    "baseline_bounds",
    "min_answers",
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
    answered_share: float = 0.25
    """A window needs at least this share of the answers the baseline rate puts in it..."""
    min_answers: int = 3
    """...and at least this many (or as many as the baseline has, when it has fewer)."""

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
    rate: float = 0.0
    """Baseline answers per second (undisturbed time, silent buckets counted)."""
    min_answers: int = 1
    """Answers a one-second window needs before its ratio and p95 mean anything."""
    failed_statuses: frozenset[int] = frozenset()
    """Statuses the scenario declares failed, besides no response and 5xx."""

    def _good_enough(self, counts: dict[int, int]) -> bool:
        total = sum(counts.values())
        good = total - failed_count(counts, self.failed_statuses)
        # The same tolerance for float noise as the SLO comparisons: 95/100 is not below 0.95.
        return total > 0 and good / total >= self.min_good_ratio - 1e-12

    def within(self, buckets: Sequence[Bucket]) -> bool:
        counts = status_counts(buckets)
        if sum(counts.values()) < self.min_answers or not self._good_enough(counts):
            return False
        latency = Histogram.merged(bucket.latency for bucket in buckets)
        return latency.percentile(_BASELINE_PERCENTILE) <= self.max_p95_s

    def within_alone(self, bucket: Bucket) -> bool:
        """A bucket with nothing failed in it and its p95 in bounds."""
        if failed_count(bucket.statuses, self.failed_statuses):
            return False
        return bucket.latency.percentile(_BASELINE_PERCENTILE) <= self.max_p95_s

    def good_bucket(self, bucket: Bucket) -> bool:
        """A bucket of answers within the ratio bound on its own: where a recovery can start."""
        return self._good_enough(bucket.statuses)

    def describe(self) -> str:
        return (
            f"good ratio >= {measured(self.min_good_ratio, '%')}, p95 <= "
            f"{measured(self.max_p95_s, 'ms')} and >= {self.min_answers} answers a second "
            f"(baseline phase {self.phase}: good {measured(self.good_ratio, '%')}, p95 "
            f"{measured(self.p95_s, 'ms')} over {self.responses} responses)"
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
    # Other faults in force between the injection and the recovery: this recovery may be theirs
    # (filled by the evaluator, see harness.verdict.overlap).
    overlapping: tuple[str, ...] = ()

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
    # Every fault's recovery reads the same baseline: scanned once per run.
    return data.memo(("baseline_bounds", phase, policy), lambda: _bounds(data, phase, policy))


def _bounds(data: RunData, phase: str | None, policy: RecoveryPolicy) -> Bounds | str:
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

    def is_quiet(idx: int) -> bool:
        return not any(lo <= idx < hi for lo, hi in disturbed)

    quiet = [bucket for bucket in data.buckets_in(span) if is_quiet(bucket.idx)]
    counts = status_counts(quiet)
    total = sum(counts.values())
    if not total:
        return f"baseline phase {phase} has no responses outside the faults' windows"
    good_ratio = 1 - failed_count(counts, data.failed_statuses) / total
    p95 = Histogram.merged(bucket.latency for bucket in quiet).percentile(_BASELINE_PERCENTILE)
    lo, hi = span.bucket_range
    quiet_s = sum(1 for idx in range(lo, hi) if is_quiet(idx)) * BUCKET_SECONDS
    rate = total / quiet_s if quiet_s else 0.0
    return Bounds(
        phase=phase,
        good_ratio=good_ratio,
        p95_s=p95,
        responses=total,
        min_good_ratio=good_ratio
        - max(policy.ratio_tolerance, policy.ratio_relative_tolerance * good_ratio),
        max_p95_s=max(policy.p95_factor * p95, p95 + policy.p95_margin_s),
        rate=rate,
        min_answers=min_answers(rate, policy),
        failed_statuses=frozenset(data.failed_statuses),
    )


def min_answers(rate: float, policy: RecoveryPolicy = RecoveryPolicy()) -> int:
    """Answers a one-second window needs, for a baseline of ``rate`` answers a second: a share
    of what the baseline puts in a window, and a floor of a few unless the baseline itself has
    fewer (then what it has: a service is never asked for more traffic than its load sends)."""
    expected = rate * policy.step_buckets / BUCKETS_PER_SECOND
    floor = min(policy.min_answers, math.floor(expected + 1e-9))
    return max(1, floor, math.ceil(policy.answered_share * expected - 1e-9))


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
        if recovered is not None:
            recovered = scan.first_good_answers(recovered, first_bucket(reference))
        since = "injection" if fault.self_healing else "revert"
        if recovered is None:
            left = max(0.0, data.end - reference)
            why = (
                f"never recovered: in the {measured(left, 's')} from the {since} to the end "
                f"of the run, no {measured(policy.stable_s, 's')} stretch had "
                f"{bounds.describe()}"
            )
        else:
            took = max(0.0, _edge(data, recovered, bounds.failed_statuses) - reference)
            why = (
                f"recovered {measured(took, 's')} after the {since}: "
                f"{measured(policy.stable_s, 's')} with {bounds.describe()}"
            )
    failed_until = recovered if recovered is not None else end_idx
    # An impact is this fault's only before it recovered: whatever the service does after that
    # (the next fault, say) is not.
    impact = scan.first_impact(first_bucket(fault.injected_at), failed_until)
    impact_at = None if impact is None else max(fault.injected_at, bucket_start(impact))
    failed = sum(
        failed_count(bucket.statuses, bounds.failed_statuses)
        for bucket in data.buckets_between(first_bucket(fault.injected_at), failed_until)
    )
    return FaultRecovery(
        fault=name,
        self_healing=fault.self_healing,
        injected_at=fault.injected_at,
        reverted_at=fault.reverted_at,
        reference_at=reference,
        bounds=bounds,
        impact_at=impact_at,
        recovered_at=(
            None
            if recovered is None or reference is None
            else max(reference, _edge(data, recovered, bounds.failed_statuses))
        ),
        failed_requests=failed,
        detail=why,
    )


def _edge(data: RunData, first_good: int, declared: Collection[int]) -> float:
    """Where the buckets place the recovery whose first good bucket is ``first_good``, with an
    error of at most one bucket, centred (see the module docstring)."""
    before = data.buckets_between(first_good - 1, first_good)
    if before:
        statuses = before[0].statuses
        failed = failed_count(statuses, declared)
        if 0 < failed < sum(statuses.values()):
            # Failed, then good answers: the edge is inside this bucket; its middle.
            return bucket_start(first_good) - BUCKET_SECONDS / 2
    return bucket_start(first_good)


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
                # it added at its end; unless it is out for silence (too few answers), which
                # began after the last bucket that had answers.
                if sum(bucket.responses for bucket in window) < self.bounds.min_answers:
                    answered = [bucket.idx for bucket in window if bucket.statuses]
                    return answered[-1] + 1 if answered else start
                return start + self.width - 1
            start += 1
        return None

    def first_good_answers(self, stable: int, reference: int) -> int:
        """The first bucket of an unbroken run of good answers that leads into the stable
        stretch at ``stable``: clients returning from a ``Retry-After`` come back over a second,
        so the stretch's count rule may only hold a few buckets after the service is back,
        while the good answers before it already say when it was. The run stops at a silent
        bucket (a trickle in silence is no evidence), at a failed answer and at a bucket whose
        p95 is out of bounds."""
        first = stable
        idx = stable - 1
        while idx >= reference:
            found = self.data.buckets_between(idx, idx + 1)
            if not found or not found[0].responses or not self.bounds.within_alone(found[0]):
                break
            first = idx
            idx -= 1
        return first

    def first_stable(self, reference: int, end: int) -> int | None:
        """The start of the first stretch of ``stable`` buckets whose every window is within
        bounds, at or after ``reference`` and ending by ``end``. A stretch starts on a good
        bucket: the first evidence of recovery, never a bucket of failures or the silence
        before it."""
        needed = self.stable - self.width + 1  # windows that tile the stretch
        streak: int | None = None
        start = reference
        while start + self.width <= end:
            window = self.window(start)
            if not self.bounds.within(window):
                streak = None
            elif streak is None and window[0].idx == start and self.bounds.good_bucket(window[0]):
                streak = start
            if streak is not None and start - streak + 1 >= needed:
                return streak
            start += 1
        return None
