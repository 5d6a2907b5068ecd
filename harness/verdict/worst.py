"""The worst sliding window of a stretch: ``ratio(status == 503) < 5% over any 10s``.

Every window of ``length`` buckets inside the stretch's buckets ``[lo, hi)`` is judged, sliding
one 100 ms bucket at a time: windows ``[s, s + length)`` for ``s = lo .. hi - length``. The
worst is the highest value when the SLO says ``<``/``<=`` and the lowest for ``>``/``>=``.
Of equal values the first stretch of consecutive windows holding it is taken, and its middle
window reported: a burst shorter than the window then sits in the middle of the shaded window.
A window without a value (no responses in it) is skipped: silence is not a bad window, and a
stretch with no value anywhere is measured as a whole, which says why there is none. A stretch
shorter than one window is judged whole, and the evidence says so.

The running totals are integers added and taken away as the window slides, so every window's
numbers are exactly those of its buckets merged; the percentile reads the nearest rank from the
merged latency histogram counts (the rule of :meth:`harness.record.histogram.Histogram.percentile`,
which a test holds this to, window by window). The worst window is then measured again the
ordinary way (:func:`~.metrics.measure_buckets` over its buckets), so its value and evidence are
those a fixed window over the same stretch would give.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from harness.record.buckets import BUCKET_SECONDS, Bucket, bucket_start
from harness.record.histogram import bucket_value
from harness.verdict.metrics import Measurement, measure_buckets
from harness.verdict.model import Comparator, Metric, Percentile
from harness.verdict.units import measured

__all__ = ["WorstWindow", "higher_is_worse", "window_values", "worst_window"]


@dataclass(frozen=True)
class WorstWindow:
    """Where the worst window was (unix seconds, ``start <= t < end``) and its value in base
    units; ``windows`` is how many windows had a value to compare."""

    start: float
    end: float
    value: float
    windows: int


def higher_is_worse(comparator: Comparator) -> bool:
    """``<``/``<=`` limit from above, so the highest window is the worst; ``>``/``>=`` the
    lowest. (The parser refuses ``==`` and ``!=`` with ``over any``.)"""
    return comparator in ("<", "<=")


class _Running:
    """The counts of the buckets inside the window, kept as it slides."""

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.latency: dict[int, int] = {}
        self.latency_n = 0
        self.attempts = 0
        self.done = 0
        self.retry_after_503 = 0

    def add(self, bucket: Bucket, sign: int) -> None:
        for code, n in bucket.statuses.items():
            left = self.statuses.get(code, 0) + sign * n
            if left:
                self.statuses[code] = left
            else:
                del self.statuses[code]
        for index, n in bucket.latency.counts.items():
            left = self.latency.get(index, 0) + sign * n
            if left:
                self.latency[index] = left
            else:
                del self.latency[index]
        self.latency_n += sign * bucket.latency.count
        self.attempts += sign * bucket.attempts
        self.done += sign * bucket.done
        self.retry_after_503 += sign * bucket.retry_after_503

    def percentile(self, q: float) -> float | None:
        """Nearest rank, as :meth:`Histogram.percentile` reads it; None when empty."""
        if self.latency_n <= 0:
            return None
        rank = max(1, math.ceil(q / 100.0 * self.latency_n))
        seen = 0
        for index in sorted(self.latency):
            seen += self.latency[index]
            if seen >= rank:
                return bucket_value(index)
        raise AssertionError("unreachable: the counts add up to less than their total")

    def value(self, metric: Metric, failed_statuses: Collection[int]) -> float | None:
        if isinstance(metric, Percentile):
            return self.percentile(metric.q)
        # Every other per-bucket metric reads only these integers: one bucket holding them.
        merged = Bucket(0)
        merged.statuses = dict(self.statuses)
        merged.attempts = self.attempts
        merged.done = self.done
        merged.retry_after_503 = self.retry_after_503
        return measure_buckets(metric, (merged,), failed_statuses).value


def worst_window(
    metric: Metric,
    buckets: Sequence[Bucket],
    lo: int,
    hi: int,
    length: int,
    comparator: Comparator,
    failed_statuses: Collection[int] = (),
) -> tuple[Measurement, WorstWindow | None]:
    """The worst window of ``length`` buckets among ``buckets`` (the stored ones with
    ``lo <= idx < hi``, in order), measured; None for the window when no window had a value."""
    if hi - lo <= length:
        whole = measure_buckets(metric, buckets, failed_statuses)
        if whole.value is None:
            return whole, None
        shorter = (
            f"the stretch ({measured((hi - lo) * BUCKET_SECONDS, 's')}) is not longer than "
            f"one window, judged whole: "
            if hi - lo < length
            else ""
        )
        found = WorstWindow(bucket_start(lo), bucket_start(hi), whole.value, 1)
        return Measurement(whole.value, shorter + whole.evidence), found
    worse = higher_is_worse(comparator)
    best: float | None = None
    # The first stretch of consecutive windows holding ``best``: its middle window is the one
    # reported, so a burst shorter than the window sits in the middle of it, not at its end.
    first = last = 0
    extending = False
    windows = 0
    for start, value in window_values(metric, buckets, lo, hi, length, failed_statuses):
        windows += 1
        if best is None or (value > best if worse else value < best):
            best, first, last, extending = value, start, start, True
        elif extending and value == best and start == last + 1:
            last = start
        else:
            extending = False
    if best is None:
        return measure_buckets(metric, buckets, failed_statuses), None
    middle = first + (last - first) // 2
    inside = [b for b in buckets if middle <= b.idx < middle + length]
    measured_ = measure_buckets(metric, inside, failed_statuses)
    assert measured_.value is not None  # the same counts had a value while sliding
    found = WorstWindow(
        bucket_start(middle), bucket_start(middle + length), measured_.value, windows
    )
    return measured_, found


def window_values(
    metric: Metric,
    buckets: Sequence[Bucket],
    lo: int,
    hi: int,
    length: int,
    failed_statuses: Collection[int] = (),
) -> Iterator[tuple[int, float]]:
    """(first bucket, value) of every window of ``length`` buckets in ``[lo, hi)`` that has a
    value, in order; ``buckets`` are the stored ones in that range, ordered by index."""
    running = _Running()
    enter = leave = 0  # positions in ``buckets`` of the next to enter and the next to leave
    for start in range(lo, hi - length + 1):
        end = start + length
        while enter < len(buckets) and buckets[enter].idx < end:
            running.add(buckets[enter], +1)
            enter += 1
        while leave < enter and buckets[leave].idx < start:
            running.add(buckets[leave], -1)
            leave += 1
        value = running.value(metric, failed_statuses)
        if value is not None:
            yield start, value
