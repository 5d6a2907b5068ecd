"""Numbers over a stretch of the run (a phase, or the whole run), for the tables and the JSON.

A bucket counts in a window when its start falls in ``[start, end)`` once both ends are rounded
to the nearest bucket boundary: the rule of ``harness.verdict`` (see its ``rundata`` module), so
the phase table, the JSON and a ``during phase X`` SLO count the same buckets. Ratios and
percentiles are None when the window had no attempt: a table shows "n/a", the JSON says null,
and nobody reads a 0 that was never measured. ``failed`` is the one definition of
:mod:`harness.record.outcome` (no response, 5xx, or a status the scenario declares failed), over
every attempt, as recovery's failed requests and ``availability`` count it: a 409 is not failed.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

from harness.record.buckets import BUCKETS_PER_SECOND, Bucket
from harness.record.histogram import Histogram
from harness.record.outcome import failed_count
from harness.report.series import PhaseSpan

__all__ = ["WindowStats", "phase_stats", "window_stats"]

_EDGE_ROUNDING_S: Final = 0.5 / BUCKETS_PER_SECOND


@dataclass(frozen=True)
class WindowStats:
    """Totals and rates of one window. ``start`` and ``end`` are seconds since the run's start;
    rates are per second of the window, latencies in milliseconds, ratios in 0..1."""

    name: str
    start: float
    end: float
    users: int | None  # the phase's target user count; None for the whole run
    attempts: int  # every HTTP attempt, retries included
    requests: int  # logical requests that finished (their last attempt started here)
    failed: int  # attempts that failed: no response, 5xx or a declared status (record.outcome)
    retries: int
    status_503: int
    status_5xx: int  # 500-599, 503 included
    errors: int  # no response (status 0)
    rps: float  # attempts per second
    ratio_503: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    retry_amplification: float | None  # attempts / requests

    @property
    def duration(self) -> float:
        return self.end - self.start


def window_stats(
    buckets: Sequence[Bucket],
    name: str,
    start: float,
    end: float,
    *,
    origin: float,
    users: int | None = None,
    failed_statuses: Collection[int] = (),
) -> WindowStats:
    """Stats of ``buckets`` (in index order) whose start is in ``[origin+start, origin+end)``."""
    # Edges rounded to the nearest bucket boundary, as the verdict's windows are: a phase that
    # began 1 ms after a boundary still owns the bucket starting on it. (A key, not a list of
    # every start: a long run has 18,000 buckets and a report asks for several windows.)
    lo = bisect.bisect_left(buckets, start - _EDGE_ROUNDING_S, key=lambda b: b.start - origin)
    hi = bisect.bisect_left(buckets, end - _EDGE_ROUNDING_S, key=lambda b: b.start - origin)
    chosen = buckets[lo:hi]
    attempts = sum(b.attempts for b in chosen)
    requests = sum(b.done for b in chosen)
    s503 = sum(b.count(503) for b in chosen)
    latency = Histogram.merged(b.latency for b in chosen)
    duration = end - start

    p50, p95, p99 = (
        (v * 1000.0 for v in latency.percentiles((50, 95, 99))) if latency else (None,) * 3
    )

    return WindowStats(
        name=name,
        start=start,
        end=end,
        users=users,
        attempts=attempts,
        requests=requests,
        failed=sum(failed_count(b.statuses, failed_statuses) for b in chosen),
        retries=sum(b.retries for b in chosen),
        status_503=s503,
        status_5xx=sum(n for b in chosen for c, n in b.statuses.items() if 500 <= c < 600),
        errors=sum(b.count(0) for b in chosen),
        rps=attempts / duration if duration > 0 else 0.0,
        ratio_503=s503 / attempts if attempts else None,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        retry_amplification=attempts / requests if requests else None,
    )


def phase_stats(
    buckets: Sequence[Bucket],
    phases: Sequence[PhaseSpan],
    *,
    origin: float,
    failed_statuses: Collection[int] = (),
) -> tuple[WindowStats, ...]:
    """One :class:`WindowStats` per phase."""
    return tuple(
        window_stats(
            buckets,
            p.name,
            p.start,
            p.end,
            origin=origin,
            users=p.users,
            failed_statuses=failed_statuses,
        )
        for p in phases
    )
