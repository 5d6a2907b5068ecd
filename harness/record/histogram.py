"""A sparse, log-bucketed latency histogram: bounded memory, mergeable, about 1% relative error.

Latencies are in seconds. A value ``v`` at or above :data:`MIN_VALUE` (0.1 ms) goes to bucket
``1 + floor(log(v / MIN_VALUE) / log(GAMMA))`` with ``GAMMA = 1 + 2 * EPS``; everything below
0.1 ms (and NaN) shares bucket 0, and everything at or above :data:`MAX_VALUE` (an hour, far past
any request timeout) shares the top bucket. A bucket answers with its geometric midpoint, so any
value read back from a bucket (a percentile, the min, the max) is within ``sqrt(GAMMA) - 1``
(0.995%) of a sample that fell into it. Percentiles use the nearest-rank definition: the answer
is the bucket that holds the ``ceil(q/100 * n)``-th smallest sample, so the only error is the
bucket's width. Memory is one dict entry per distinct bucket: at most :data:`TOP_INDEX` + 1
(about 880) whatever the number of samples; 0.1 ms..10 min needs about 790.

The bucket scheme (``EPS``, ``MIN_VALUE``, ``MAX_VALUE``) is part of the serialized format: data
written with one scheme must not be read with another, so changing a constant here means a new
format version in :mod:`harness.record.buckets`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

EPS: Final = 0.01
GAMMA: Final = 1.0 + 2.0 * EPS
MIN_VALUE: Final = 1e-4  # 0.1 ms: below this, latency differences are noise of the client itself
MAX_VALUE: Final = 3600.0

_LOG_MIN: Final = math.log(MIN_VALUE)
_INV_LOG_GAMMA: Final = 1.0 / math.log(GAMMA)
# One past the last regular bucket: values just under MAX_VALUE keep a bucket of their own
# instead of sharing the overflow bucket, which stands for MAX_VALUE.
TOP_INDEX: Final = 2 + math.floor((math.log(MAX_VALUE) - _LOG_MIN) * _INV_LOG_GAMMA)


def bucket_index(value: float) -> int:
    """The bucket of a latency in seconds. Never raises: NaN and negatives go to bucket 0."""
    # ``value >= MIN_VALUE`` is False for NaN too, so NaN cannot reach math.log.
    if value >= MIN_VALUE:
        if value < MAX_VALUE:
            # int() truncates, which is floor here: the argument is >= 0 up to rounding, and a
            # rounding of -1e-16 still truncates to 0, the right bucket.
            return 1 + int((math.log(value) - _LOG_MIN) * _INV_LOG_GAMMA)
        return TOP_INDEX
    return 0


def bucket_value(index: int) -> float:
    """The value a bucket stands for: its geometric midpoint (half of MIN_VALUE for bucket 0)."""
    if index <= 0:
        return MIN_VALUE / 2
    if index >= TOP_INDEX:
        return MAX_VALUE
    return math.exp(_LOG_MIN + (index - 0.5) / _INV_LOG_GAMMA)


class Histogram:
    """Counts of latencies (seconds) per log bucket. ``record`` is O(1); nothing is per sample."""

    __slots__ = ("_count", "counts")

    def __init__(self) -> None:
        # Public on purpose: the bucket recorder increments it directly in its hot path.
        self.counts: dict[int, int] = {}
        self._count = 0

    def record(self, value: float, n: int = 1) -> None:
        """Add ``n`` samples of ``value`` seconds."""
        # bucket_index() inlined: this runs on every request, and the call costs a third of it.
        # A test holds the two in agreement.
        if value >= MIN_VALUE:
            if value < MAX_VALUE:
                index = 1 + int((math.log(value) - _LOG_MIN) * _INV_LOG_GAMMA)
            else:
                index = TOP_INDEX
        else:
            index = 0
        counts = self.counts
        counts[index] = counts.get(index, 0) + n
        self._count += n

    @property
    def count(self) -> int:
        """Number of samples recorded (merged samples included)."""
        return self._count

    def __len__(self) -> int:
        """Number of distinct buckets in use: what the memory grows with."""
        return len(self.counts)

    def __bool__(self) -> bool:
        return self._count > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.counts == other.counts

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        if not self._count:
            return "Histogram(count=0)"
        return (
            f"Histogram(count={self._count}, p50={self.percentile(50):.6g}, "
            f"p99={self.percentile(99):.6g}, max={self.max:.6g})"
        )

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts to this histogram (in place)."""
        counts = self.counts
        for index, n in other.counts.items():
            counts[index] = counts.get(index, 0) + n
        self._count += other._count

    def copy(self) -> Histogram:
        new = Histogram()
        new.counts = dict(self.counts)
        new._count = self._count
        return new

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        """A new histogram holding the sum of ``histograms``."""
        total = cls()
        # merge() inlined: a report sums tens of thousands of bucket histograms.
        counts = total.counts
        get = counts.get
        samples = 0
        for h in histograms:
            for index, n in h.counts.items():
                counts[index] = get(index, 0) + n
            samples += h._count
        total._count = samples
        return total

    def percentile(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile (``0 <= q <= 100``), in seconds.

        Raises ValueError when empty: an empty window has no latency, and a made-up number (0,
        NaN) would pass or fail an SLO silently. Check ``count`` first.
        """
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must be within [0, 100], got {q!r}")
        if not self._count:
            raise ValueError("percentile of an empty histogram")
        # Nearest rank: the smallest bucket whose cumulative count reaches ceil(q% of n), and at
        # least the first sample (q = 0 is the minimum).
        rank = max(1, math.ceil(q / 100.0 * self._count))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return bucket_value(index)
        raise AssertionError("unreachable: the bucket counts add up to less than count")

    def percentiles(self, qs: Sequence[float]) -> tuple[float, ...]:
        """:meth:`percentile` of each of ``qs`` (any order), in one pass over the buckets: a
        report asks for p50, p95 and p99 of every second of a run."""
        for q in qs:
            if not 0.0 <= q <= 100.0:
                raise ValueError(f"percentile must be within [0, 100], got {q!r}")
        if not self._count:
            raise ValueError("percentile of an empty histogram")
        ranks = sorted((max(1, math.ceil(q / 100.0 * self._count)), i) for i, q in enumerate(qs))
        found = [0.0] * len(ranks)
        pending = iter(ranks)
        rank, slot = next(pending, (0, -1))
        seen = 0
        counts = self.counts
        for index in sorted(counts):
            seen += counts[index]
            while slot >= 0 and seen >= rank:
                found[slot] = bucket_value(index)
                rank, slot = next(pending, (0, -1))
            if slot < 0:
                break
        return tuple(found)

    @property
    def min(self) -> float:
        """The smallest sample, to bucket precision."""
        if not self._count:
            raise ValueError("min of an empty histogram")
        return bucket_value(min(self.counts))

    @property
    def max(self) -> float:
        """The largest sample, to bucket precision."""
        if not self._count:
            raise ValueError("max of an empty histogram")
        return bucket_value(max(self.counts))

    def count_above(self, threshold: float) -> int:
        """Samples in buckets above the one ``threshold`` falls in (for "share slower than X")."""
        limit = bucket_index(threshold)
        return sum(n for index, n in self.counts.items() if index > limit)

    def items(self) -> Iterator[tuple[float, int]]:
        """(representative value, count) per bucket, in increasing order of value."""
        for index in sorted(self.counts):
            yield bucket_value(index), self.counts[index]

    def to_list(self) -> list[int]:
        """The compact form: ``[index, count, index, count, ...]`` in increasing index order.

        Only ints, so it is valid JSON as it is and survives a JSON round trip unchanged.
        """
        flat: list[int] = []
        for index in sorted(self.counts):
            flat.append(index)
            flat.append(self.counts[index])
        return flat

    @classmethod
    def from_list(cls, flat: Sequence[object]) -> Histogram:
        """Rebuild from :meth:`to_list`. Raises ValueError on anything it could not have written."""
        if len(flat) % 2:
            raise ValueError(f"histogram list has odd length {len(flat)}")
        h = cls()
        # The common case built at once and checked in one pass (a report reads every bucket
        # of a run); the loop below runs only to name what is wrong.
        try:
            pairs: dict[Any, Any] = dict(zip(flat[::2], flat[1::2], strict=True))
        except TypeError:  # an unhashable entry: certainly not ours
            pairs = {}
        if len(pairs) * 2 == len(flat) and all(
            type(index) is int and type(n) is int and 0 <= index <= TOP_INDEX and n > 0
            for index, n in pairs.items()
        ):
            h.counts = pairs
            h._count = sum(pairs.values())
            return h
        counts = h.counts
        total = 0
        for i in range(0, len(flat), 2):
            index, n = flat[i], flat[i + 1]
            # bool is an int subclass; JSON never yields one here unless the data is not ours.
            if type(index) is not int or type(n) is not int:
                raise ValueError(f"histogram entry {i // 2} is not two ints: {index!r}, {n!r}")
            if not 0 <= index <= TOP_INDEX or n <= 0:
                raise ValueError(f"histogram entry {i // 2} out of range: {index}, {n}")
            if index in counts:
                raise ValueError(f"histogram bucket {index} appears twice")
            counts[index] = n
            total += n
        h._count = total
        return h
