"""Metrics computed from buckets alone: ratios, counts, percentiles, availability, amplification.

Shared by the post-run evaluation (a window of the run) and the live guards (the last second or
so): both hand over a sequence of buckets and get a :class:`Measurement` back. A measurement
without a value (no responses to divide by, no latency to rank) says why in ``evidence``; the
caller decides that this fails, never that it passes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from harness.record.buckets import Bucket
from harness.record.histogram import Histogram
from harness.record.outcome import describe_failed, failed_count, is_failed
from harness.verdict.model import (
    Availability,
    CheckValue,
    Count,
    Metric,
    Percentile,
    Predicate,
    Ratio,
    RequestCount,
    RetryAfterShare,
    RetryAmplification,
)
from harness.verdict.units import count

if TYPE_CHECKING:
    from harness.integrity.readings import CheckValues
    from harness.verdict.rundata import NameCounts

__all__ = [
    "Measurement",
    "Missing",
    "check_measurement",
    "count_by_name",
    "is_good",
    "measure_buckets",
    "status_counts",
]


# What a measurement without a value means. "no data": there was nothing to judge by (no
# responses, an attempt log that is empty although requests were retried): the SLO's ``no_data``
# setting decides. "n/a": what the metric looks at never happened, for a reason that is not a
# failure (no retry without Retry-After for backoff growth, no 503 for the Retry-After share):
# shown as n/a with the reason, never a failure. "fail": the missing value is the failure itself
# (a fault that never recovered), whatever ``no_data`` says.
Missing: TypeAlias = Literal["no data", "n/a", "fail"]


@dataclass(frozen=True)
class Measurement:
    """A metric's value (base units), or None, and the evidence for it in words; ``missing``
    says what a None means (see :data:`Missing`)."""

    value: float | None
    evidence: str
    missing: Missing = "no data"


def is_good(status: int, declared: Collection[int] = ()) -> bool:
    """An answer that did not fail: anything but no response, a 5xx or a status the scenario
    declares failed (the one definition, :mod:`harness.record.outcome`). A 409 is good."""
    return not is_failed(status, declared)


def status_counts(buckets: Iterable[Bucket]) -> dict[int, int]:
    """Responses per status code over ``buckets`` (0 = no response)."""
    totals: dict[int, int] = {}
    for bucket in buckets:
        for code, n in bucket.statuses.items():
            totals[code] = totals.get(code, 0) + n
    return totals


def measure_buckets(
    metric: Metric, buckets: Sequence[Bucket], failed_statuses: Collection[int] = ()
) -> Measurement:
    """A per-bucket metric (``metric.per_bucket``) over ``buckets``; ``failed_statuses`` are the
    scenario's own additions to what counts as failed (``availability``)."""
    if isinstance(metric, Ratio | Count):
        return _counting(metric, status_counts(buckets))
    if isinstance(metric, Percentile):
        histogram = Histogram.merged(bucket.latency for bucket in buckets)
        if not histogram.count:
            return Measurement(None, "no attempts, so no latency, in the window")
        return Measurement(
            histogram.percentile(metric.q), f"over {count(histogram.count)} attempts"
        )
    if isinstance(metric, Availability):
        counts = status_counts(buckets)
        total = sum(counts.values())
        if not total:
            return Measurement(None, "no responses in the window")
        bad = failed_count(counts, failed_statuses)
        return Measurement(
            1 - bad / total,
            f"{count(bad)} of {count(total)} responses failed "
            f"({describe_failed(failed_statuses).removeprefix('failed = ')})",
        )
    if isinstance(metric, RetryAfterShare):
        n503 = sum(bucket.statuses.get(503, 0) for bucket in buckets)
        carried = sum(bucket.retry_after_503 for bucket in buckets)
        if not n503:
            if any(bucket.responses for bucket in buckets):
                return Measurement(None, "no 503 responses in the window", "n/a")
            return Measurement(None, "no responses in the window")
        return Measurement(
            carried / n503, f"{count(carried)} of {count(n503)} 503 responses had Retry-After"
        )
    if isinstance(metric, RetryAmplification):
        attempts = sum(bucket.attempts for bucket in buckets)
        done = sum(bucket.done for bucket in buckets)
        if not done:
            return Measurement(None, "no logical request finished in the window")
        return Measurement(
            attempts / done, f"{count(attempts)} attempts for {count(done)} logical requests"
        )
    raise TypeError(f"{metric} is not computed from buckets alone")


def _counting(metric: Ratio | Count, counts: dict[int, int]) -> Measurement:
    total = sum(counts.values())
    if not total:
        return Measurement(None, "no responses in the window")
    where = metric.where
    base = {code: n for code, n in counts.items() if _matches(where, code)}
    matched = sum(n for code, n in base.items() if metric.predicate.matches(code))
    among = sum(base.values())
    scope = f"responses with {where}" if where is not None else "responses"
    if isinstance(metric, Count):
        return Measurement(
            matched, f"{count(matched)} of {count(among)} {scope} match {metric.predicate}"
        )
    if not among:
        # Responses, none of the kind ``where`` asks about: a share of nothing, not a failure.
        return Measurement(None, f"no {scope} in the window", "n/a")
    return Measurement(
        matched / among, f"{count(matched)} of {count(among)} {scope} match {metric.predicate}"
    )


def _matches(predicate: Predicate | None, code: int) -> bool:
    return predicate is None or predicate.matches(code)


def count_by_name(metric: RequestCount, names: Mapping[str, NameCounts]) -> Measurement:
    """``count(P, where name == "N")`` or ``requests(P[, where ...])`` from the per-name totals.

    A name the load never sent counts 0, not "no value": a checkout that was never attempted is
    a count of zero checkouts (the evidence says the name was not seen, for the typo case)."""
    if not names:
        return Measurement(
            None, "the run recorded no per-name totals (a worker of an older harness?)"
        )
    if metric.request_name is not None:
        chosen = (
            {metric.request_name: names[metric.request_name]}
            if metric.request_name in names
            else {}
        )
    else:
        chosen = dict(names)
    counts: dict[int, int] = {}
    for totals in chosen.values():
        for code, n in (totals.final if metric.logical else totals.all).items():
            counts[code] = counts.get(code, 0) + n
    base = {code: n for code, n in counts.items() if _matches(metric.where, code)}
    matched = sum(n for code, n in base.items() if metric.predicate.matches(code))
    what = "logical requests (by their last attempt)" if metric.logical else "responses"
    scope = f' named "{metric.request_name}"' if metric.request_name is not None else ""
    if metric.request_name is not None and not chosen:
        known = ", ".join(sorted(names)[:8])
        return Measurement(0, f'no request named "{metric.request_name}" was sent (names: {known})')
    extra = f" with {metric.where}" if metric.where is not None else ""
    return Measurement(
        matched,
        f"{count(matched)} of {count(sum(base.values()))} {what}{scope}{extra} match "
        f"{metric.predicate}",
    )


def check_measurement(metric: CheckValue, values: CheckValues | None) -> Measurement:
    """A post-run check's reading, or why there is none."""
    if values is None:
        return Measurement(None, f"check {metric.check} was never read")
    value = values.value(metric.stage)
    before = "none" if values.before is None else f"{values.before:g}"
    after = "none" if values.after is None else f"{values.after:g}"
    readings = f"before {before}, after {after}"
    if value is None:
        errors = "; ".join(values.errors) or "not read"
        return Measurement(None, f"check {metric.check}: {readings} ({errors})")
    return Measurement(value, f"check {metric.check}: {readings}")
