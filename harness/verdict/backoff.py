"""How the clients retried, from the attempt log: Retry-After compliance, backoff growth, jitter,
and the attempt cap.

The attempt log holds every attempt of each logical request that took more than one (see
:class:`harness.record.buckets.AttemptRecord`). A *wait* is the time between the arrival of one
attempt's response (``t + latency``) and the start of the next attempt: what the client itself
chose, undistorted by how slow the response was. Waits are only taken between attempts both in
the log with consecutive numbers, so a record dropped by the worker's limit leaves a gap rather
than a made-up wait.

Definitions (the architecture's, made exact):

- Retry-After compliance: of the retries that follow a response carrying Retry-After (503, or
  429), the share whose wait is at least that Retry-After, less :data:`RETRY_AFTER_SLACK_S`.
  A retry counts in a window by its own start time.
- Backoff growth: the median, over logical requests starting in the window, of the ratios of
  successive waits. Only the client's *own* waits count: a wait that followed a Retry-After is
  the server's choice (a constant ``Retry-After: 1`` would read as no growth). A ratio needs a
  first wait of at least :data:`MIN_WAIT_S`; below that, a retry was immediate and its "growth"
  is scheduling noise.
- Jitter spread: the coefficient of variation (population stdev ÷ mean) of the client's own
  waits before first retries. Full jitter over ``[0, b)`` gives about 0.58; no jitter gives 0.
  Waits averaging under :data:`MIN_WAIT_S` are immediate retries: spread 0, not noise.
- Attempt cap: 1 - (logical requests with more attempts than the cap ÷ logical requests done).

A metric without a value says which kind of nothing it is (:data:`~.metrics.Missing`): *no data*
when the window holds no traffic at all, or retries the attempt log does not hold (a locustfile
that retries without reporting its attempts); *n/a* when what the metric looks at never happened
and that is no failure: no retry at all, no retry that followed a Retry-After (compliance), no
two successive waits of the client's own (growth: a service that sends Retry-After with every
503 dictates every wait), no first retry of the client's own (spread); *fail* when the missing
value is itself the failure: retries at once, so no backoff to grow.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from typing import Final

from harness.record.buckets import AttemptRecord, Bucket
from harness.verdict.metrics import Measurement
from harness.verdict.rundata import Span
from harness.verdict.units import count, measured

__all__ = [
    "MIN_WAIT_S",
    "RETRY_AFTER_SLACK_S",
    "attempt_cap_respected",
    "backoff_growth",
    "by_request",
    "jitter_spread",
    "retry_after_compliance",
]

# A client's timer may fire a hair early relative to the wall clock its records use (gevent's
# loop caches "now"); 10 ms is far below any Retry-After (whole seconds) and above that noise.
RETRY_AFTER_SLACK_S: Final = 0.01
# Waits shorter than this are immediate retries, not backoff.
MIN_WAIT_S: Final = 0.01


def by_request(attempts: Iterable[AttemptRecord]) -> dict[str | int, list[AttemptRecord]]:
    """The attempt log grouped by logical request, each ordered by attempt number."""
    grouped: dict[str | int, list[AttemptRecord]] = {}
    for record in attempts:
        grouped.setdefault(record.logical_id, []).append(record)
    for records in grouped.values():
        records.sort(key=lambda r: r.attempt)
    return grouped


def _steps(records: Sequence[AttemptRecord]) -> Iterable[tuple[AttemptRecord, AttemptRecord]]:
    """(previous, retry) for consecutive attempt numbers both present in the log."""
    for previous, retry in itertools.pairwise(records):
        if retry.attempt == previous.attempt + 1:
            yield previous, retry


def _wait(previous: AttemptRecord, retry: AttemptRecord) -> float:
    return retry.t - (previous.t + previous.latency)


def _inside(span: Span, t: float) -> bool:
    return span.start <= t < span.end


def _why_nothing(
    grouped: dict[str | int, list[AttemptRecord]], span: Span, buckets: Sequence[Bucket]
) -> Measurement | None:
    """A "no data" measurement when the window has no traffic, or retries the attempt log
    lacks; else None (the metric's own reason for having nothing to measure applies)."""
    logged = any(_inside(span, r.t) for records in grouped.values() for r in records)
    if logged:
        return None
    if not any(bucket.responses for bucket in buckets):
        return Measurement(None, "no requests in the window")
    retries = sum(bucket.retries for bucket in buckets)
    if retries:
        return Measurement(
            None, f"{retries} retries in the window, none of them in the attempt log"
        )
    return None


def _retry_census(grouped: dict[str | int, list[AttemptRecord]], span: Span) -> tuple[int, int]:
    """(retries starting in the window, those of them that followed a Retry-After)."""
    retries = after_ra = 0
    for records in grouped.values():
        for record in records:
            if record.attempt > 1 and _inside(span, record.t):
                retries += 1
                after_ra += record.retry_after_followed is not None
    return retries, after_ra


def _not_applicable(grouped: dict[str | int, list[AttemptRecord]], span: Span, what: str) -> str:
    retries, after_ra = _retry_census(grouped, span)
    if not retries:
        return "no request was retried in the window"
    if retries == after_ra:
        return (
            f"all {retries} retries in the window followed a Retry-After: their waits were the "
            f"server's, not the client's {what}"
        )
    return f"{retries} retries in the window, {after_ra} of them after a Retry-After"


def retry_after_compliance(
    grouped: dict[str | int, list[AttemptRecord]], span: Span, buckets: Sequence[Bucket] = ()
) -> Measurement:
    total = complied = 0
    worst = 0.0  # how early the earliest retry was
    for records in grouped.values():
        for previous, retry in _steps(records):
            asked = retry.retry_after_followed
            if asked is None or not _inside(span, retry.t):
                continue
            total += 1
            early = asked - _wait(previous, retry)
            if early <= RETRY_AFTER_SLACK_S:
                complied += 1
            else:
                worst = max(worst, early)
    if not total:
        nothing = _why_nothing(grouped, span, buckets)
        if nothing is not None:
            return nothing
        carried = sum(bucket.retry_after_503 for bucket in buckets)
        why = (
            f"{carried} responses carried Retry-After, and no retry followed one"
            if carried
            else "no retry followed a response with Retry-After in the window"
        )
        return Measurement(None, why, "n/a")
    evidence = (
        f"{count(complied)} of {count(total)} retries waited out the Retry-After they followed"
    )
    if worst:
        evidence += f" (the earliest came {measured(worst, 's')} early)"
    return Measurement(complied / total, evidence)


def backoff_growth(
    grouped: dict[str | int, list[AttemptRecord]], span: Span, buckets: Sequence[Bucket] = ()
) -> Measurement:
    ratios: list[float] = []
    immediate = 0
    for records in grouped.values():
        if not records or not _inside(span, records[0].t):
            continue
        own: list[tuple[int, float]] = [
            (retry.attempt, _wait(previous, retry))
            for previous, retry in _steps(records)
            if retry.retry_after_followed is None
        ]
        for (n, first), (m, second) in itertools.pairwise(own):
            if m == n + 1:
                if first >= MIN_WAIT_S:
                    ratios.append(second / first)
                else:
                    immediate += 1
    if not ratios and immediate:
        return Measurement(
            None,
            f"{immediate} retries followed an immediate one (a wait under "
            f"{measured(MIN_WAIT_S, 'ms')}): no backoff to grow",
            "fail",
        )
    if not ratios:
        nothing = _why_nothing(grouped, span, buckets)
        if nothing is not None:
            return nothing
        return Measurement(
            None,
            "no logical request in the window has two successive waits of its own "
            f"(without Retry-After): {_not_applicable(grouped, span, 'backoff')}",
            "n/a",
        )
    return Measurement(
        statistics.median(ratios), f"median of {len(ratios)} ratios of successive waits"
    )


def jitter_spread(
    grouped: dict[str | int, list[AttemptRecord]], span: Span, buckets: Sequence[Bucket] = ()
) -> Measurement:
    waits = []
    for records in grouped.values():
        if len(records) < 2 or not _inside(span, records[0].t):
            continue
        first, second = records[0], records[1]
        if first.attempt == 1 and second.attempt == 2 and second.retry_after_followed is None:
            waits.append(_wait(first, second))
    if not waits:
        nothing = _why_nothing(grouped, span, buckets)
        if nothing is not None:
            return nothing
        return Measurement(
            None,
            "no first retry of the client's own (without Retry-After) in the window: "
            + _not_applicable(grouped, span, "jitter"),
            "n/a",
        )
    if len(waits) < 2:
        # One sample: the thing happened, too little of it to say how much it spreads.
        return Measurement(
            None,
            f"{len(waits)} first retries without Retry-After in the window; a spread needs 2",
        )
    mean = statistics.fmean(waits)
    if mean < MIN_WAIT_S:
        return Measurement(0.0, f"first retries were immediate (mean wait {measured(mean, 'ms')})")
    return Measurement(
        statistics.pstdev(waits) / mean,
        f"over {len(waits)} first retries, mean wait {measured(mean, 's')}",
    )


def attempt_cap_respected(
    grouped: dict[str | int, list[AttemptRecord]],
    buckets: Sequence[Bucket],
    span: Span,
    cap: int | None,
) -> Measurement:
    if cap is None:
        # A mistake in the scenario or the run, not an absence of traffic: no_data cannot pass it.
        return Measurement(
            None,
            "the attempt cap is unknown: write attempt_cap_respected(N), or have the run "
            "record max_attempts",
            "fail",
        )
    done = sum(bucket.done for bucket in buckets)
    if not done:
        return Measurement(None, "no logical request finished in the window")
    over = []
    for records in grouped.values():
        if records and _inside(span, min(r.t for r in records)):
            most = max(r.attempt for r in records)
            if most > cap:
                over.append(most)
    evidence = f"{count(len(over))} of {count(done)} logical requests used more than {cap} attempts"
    if over:
        evidence += f" (the most: {max(over)})"
    return Measurement(max(0.0, 1 - len(over) / done), evidence)
