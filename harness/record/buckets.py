"""The 100 ms bucket recorder: what every worker keeps between two shipments to the master.

A bucket is 100 ms of wall-clock time, keyed by ``floor(unix_time * 10)``. An attempt is filed
under the bucket of its *start* time: that is when it met the system, so an outage from t to
t+3.0 s shows up as the 30 buckets of t..t+3.0 even when its attempts time out seconds later, and
the attempt log (for the backoff analysis) uses the same clock.

Because a slow attempt is recorded when it ends, a bucket can receive attempts after it has been
drained and shipped. The recorder then simply starts that bucket again and ships the late part
with the next drain; the master merges parts of the same bucket (:func:`merge_serialized`, and the
run store's upsert), so the stored bucket is exactly the sum of everything recorded for it. Memory
therefore holds only the buckets since the last drain, never the run.

Serialized bucket (format ``v`` = 1), JSON-ready, only ints::

    {"v": 1, "idx": 17000000003,          # floor(unix_time * 10)
     "status": [0, 3, 200, 41, 503, 2],   # flat [code, count, ...] by code; 0 = connection
                                          #   error or timeout (no HTTP response)
     "latency": [412, 5, 415, 30, ...],   # Histogram.to_list() over every attempt, errors included
     "attempts": 46,                      # attempts started in the bucket (= sum of status counts)
     "retries": 4,                        # of which attempt number > 1
     "retry_after_503": 2,                # 503 responses that carried Retry-After
     "done": 40,                          # logical requests whose final attempt started here
     "failed": 1}                         # of which ended without success (subset of done)

The attempt log is separate (:class:`AttemptRecord`) and holds only logical requests that took
more than one attempt (unless ``log_all_attempts``): single-attempt requests are fully described
by the buckets, and a row per request would make the store grow with the load for no analysis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple, TypedDict

from harness.record.histogram import (
    _INV_LOG_GAMMA,
    _LOG_MIN,
    MAX_VALUE,
    MIN_VALUE,
    TOP_INDEX,
    Histogram,
)

FORMAT_VERSION: Final = 1
BUCKETS_PER_SECOND: Final = 10
BUCKET_SECONDS: Final = 1.0 / BUCKETS_PER_SECOND

# Module globals read faster than attribute lookups on ``math`` in the hot path.
_floor: Final = math.floor
_log: Final = math.log

# No HTTP status: the connection failed, was reset, or the attempt timed out.
STATUS_NO_RESPONSE: Final = 0


def bucket_of(t: float) -> int:
    """The index of the bucket holding unix time ``t``."""
    return math.floor(t * BUCKETS_PER_SECOND)


def bucket_start(idx: int) -> float:
    """The unix time a bucket starts at."""
    return idx / BUCKETS_PER_SECOND


class SerializedBucket(TypedDict):
    """A bucket as it travels (worker to master) and is stored. See the module docstring."""

    v: int
    idx: int
    status: list[int]
    latency: list[int]
    attempts: int
    retries: int
    retry_after_503: int
    done: int
    failed: int


class BucketFormatError(ValueError):
    """A serialized bucket this code could not have written (corrupt, or another version)."""


class AttemptRecord(NamedTuple):
    """One attempt of a logical request that took more than one, for the backoff analysis.

    ``latency`` is there because Retry-After counts from when the 503 *arrived*: the wait a retry
    honoured is ``t - (previous.t + previous.latency)``, not the gap between two starts.
    ``retry_after_followed`` is the Retry-After (seconds) of the response this attempt retries,
    or None when that response carried none (or this is attempt 1).
    """

    logical_id: str | int
    attempt: int
    t: float
    status: int
    latency: float
    retry_after_followed: float | None


class Bucket:
    """The counts of one 100 ms bucket. Mutable; merge with :meth:`merge`."""

    __slots__ = (
        "attempts",
        "done",
        "failed",
        "idx",
        "latency",
        "retries",
        "retry_after_503",
        "statuses",
    )

    def __init__(self, idx: int) -> None:
        self.idx = idx
        self.statuses: dict[int, int] = {}
        self.latency = Histogram()
        self.attempts = 0
        self.retries = 0
        self.retry_after_503 = 0
        self.done = 0
        self.failed = 0

    @property
    def start(self) -> float:
        """The unix time this bucket starts at."""
        return bucket_start(self.idx)

    @property
    def responses(self) -> int:
        """Attempts with an outcome of any kind, no-response (status 0) included."""
        return sum(self.statuses.values())

    def count(self, *codes: int) -> int:
        """How many attempts ended with any of ``codes`` (0 = no response)."""
        return sum(self.statuses.get(code, 0) for code in codes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bucket):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"Bucket(idx={self.idx}, statuses={dict(sorted(self.statuses.items()))}, "
            f"attempts={self.attempts}, retries={self.retries}, done={self.done}, "
            f"failed={self.failed})"
        )

    def merge(self, other: Bucket) -> None:
        """Add ``other``'s counts to this bucket (in place). Both must be the same 100 ms."""
        if other.idx != self.idx:
            raise ValueError(f"cannot merge bucket {other.idx} into bucket {self.idx}")
        self.add_counts(other)

    def add_counts(self, other: Bucket) -> None:
        """Add ``other``'s counts whatever its 100 ms: a sum over time (the live metrics' run
        totals) rather than two parts of one bucket."""
        statuses = self.statuses
        for code, n in other.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
        self.latency.merge(other.latency)
        self.attempts += other.attempts
        self.retries += other.retries
        self.retry_after_503 += other.retry_after_503
        self.done += other.done
        self.failed += other.failed

    def to_dict(self) -> SerializedBucket:
        status: list[int] = []
        for code in sorted(self.statuses):
            status.append(code)
            status.append(self.statuses[code])
        return {
            "v": FORMAT_VERSION,
            "idx": self.idx,
            "status": status,
            "latency": self.latency.to_list(),
            "attempts": self.attempts,
            "retries": self.retries,
            "retry_after_503": self.retry_after_503,
            "done": self.done,
            "failed": self.failed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Bucket:
        """Rebuild from :meth:`to_dict`; raises :class:`BucketFormatError` on anything else."""
        try:
            if data["v"] != FORMAT_VERSION:
                raise BucketFormatError(f"bucket format version {data['v']!r} is not supported")
            bucket = cls(_int(data, "idx", minimum=None))
            flat = data["status"]
            if not isinstance(flat, list) or len(flat) % 2:
                raise BucketFormatError("bucket 'status' is not a flat [code, count, ...] list")
            # A report reads every bucket of a run (18,000 for 30 minutes): the pairs built at
            # once and checked in one pass; the slow loop runs only to name what is wrong.
            try:
                statuses: dict[Any, Any] = dict(zip(flat[::2], flat[1::2], strict=True))
            except TypeError:  # an unhashable code: certainly not ours
                statuses = {}
            if len(statuses) * 2 != len(flat) or not all(
                type(code) is int and type(n) is int and 0 <= code <= 999 and n > 0
                for code, n in statuses.items()
            ):
                _bad_statuses(flat)
            bucket.statuses = statuses
            if not isinstance(data["latency"], list):
                raise BucketFormatError("bucket 'latency' is not a list")
            bucket.latency = Histogram.from_list(data["latency"])
            bucket.attempts = _int(data, "attempts")
            bucket.retries = _int(data, "retries")
            bucket.retry_after_503 = _int(data, "retry_after_503")
            bucket.done = _int(data, "done")
            bucket.failed = _int(data, "failed")
        except KeyError as exc:
            raise BucketFormatError(f"bucket is missing the field {exc.args[0]!r}") from None
        except TypeError as exc:  # data is not a dict at all
            raise BucketFormatError(f"bucket is not a mapping: {exc}") from None
        except BucketFormatError:
            raise
        except ValueError as exc:  # from Histogram.from_list
            raise BucketFormatError(f"bucket 'latency': {exc}") from None
        return bucket


def _bad_statuses(flat: list[object]) -> None:
    """Raise the error that names the first bad entry of a bucket's flat status list."""
    seen: set[object] = set()
    for i in range(0, len(flat), 2):
        code, n = flat[i], flat[i + 1]
        if type(code) is not int or type(n) is not int or not 0 <= code <= 999 or n <= 0:
            raise BucketFormatError(f"bucket status entry {code!r}: {n!r} is invalid")
        if code in seen:
            raise BucketFormatError(f"bucket status {code} appears twice")
        seen.add(code)
    raise AssertionError("unreachable: the status list was found wrong")


def _int(data: Mapping[str, object], key: str, *, minimum: int | None = 0) -> int:
    value = data[key]
    if type(value) is not int or (minimum is not None and value < minimum):
        raise BucketFormatError(f"bucket field {key!r} is not a count: {value!r}")
    return value


def merge_serialized(a: Mapping[str, object], b: Mapping[str, object]) -> SerializedBucket:
    """Two serialized parts of the same bucket (from two workers, or a late part) as one."""
    merged = Bucket.from_dict(a)
    merged.merge(Bucket.from_dict(b))
    return merged.to_dict()


def merge_all(parts: Iterable[Mapping[str, object]]) -> list[SerializedBucket]:
    """Serialized buckets with every index appearing once, parts summed, ordered by index."""
    by_idx: dict[int, Bucket] = {}
    for part in parts:
        bucket = Bucket.from_dict(part)
        if bucket.idx in by_idx:
            by_idx[bucket.idx].merge(bucket)
        else:
            by_idx[bucket.idx] = bucket
    return [by_idx[idx].to_dict() for idx in sorted(by_idx)]


def _add_single_attempts(bucket: Bucket, n: int, failed: int) -> None:
    """The counts of ``n`` single-attempt requests (``failed`` of them unsuccessful) whose
    statuses and latencies are already in ``bucket``."""
    bucket.latency._count += n
    bucket.attempts += n
    bucket.done += n
    bucket.failed += failed


class BucketRecorder:
    """Buckets and the attempt log of one worker, from one drain to the next.

    Not thread-safe, by design: it lives in one Locust worker, whose greenlets never run
    ``record_attempt`` concurrently (it has no yield point), and the same greenlet loop drains it.
    """

    __slots__ = (
        "_attempt_log",
        "_attempt_log_limit",
        "_attempts_dropped",
        "_buckets",
        "_last",
        "_last_idx",
        "_log_all_attempts",
        "_pending_limit",
        "_pending_retry_after",
    )

    def __init__(
        self,
        *,
        attempt_log_limit: int = 100_000,
        pending_limit: int = 100_000,
        log_all_attempts: bool = False,
    ) -> None:
        """``attempt_log_limit``: attempt records kept between two drains; more are counted as
        dropped instead (the bound that keeps a worker's memory flat if shipping stalls).
        ``pending_limit``: logical requests awaiting a retry whose Retry-After is remembered;
        the oldest are forgotten beyond it (a user stopped mid-retry never sends its retry).
        """
        self._buckets: dict[int, Bucket] = {}
        # One-entry cache: nearly every attempt lands in the same bucket as the one before.
        self._last_idx: int | None = None
        self._last: Bucket = Bucket(0)
        self._attempt_log: list[AttemptRecord] = []
        self._attempt_log_limit = attempt_log_limit
        self._attempts_dropped = 0
        self._log_all_attempts = log_all_attempts
        # logical_id -> Retry-After of its latest non-final attempt, for the retry that follows.
        self._pending_retry_after: dict[str | int, float] = {}
        self._pending_limit = pending_limit

    def record_attempt(
        self,
        t_start: float,
        latency_s: float,
        status: int,
        attempt: int,
        retry_after: float | None,
        logical_id: str | int,
        final: bool,
        ok: bool,
    ) -> None:
        """Record one HTTP attempt. Runs on every request: keep it free of anything slow (the
        worker's hook passes every argument by position, which binds faster than keywords).

        ``status`` 0 means no response (connection error, timeout). ``attempt`` counts from 1.
        ``retry_after`` is the response's Retry-After in seconds, None without one. ``final``
        says this attempt ends its logical request (success, or the client gave up), and ``ok``
        whether that logical request succeeded (only read when ``final``).
        ``logical_id`` must be unique across workers (prefix it with the worker's id).
        """
        idx = _floor(t_start * BUCKETS_PER_SECOND)
        if idx == self._last_idx:
            bucket = self._last
        else:
            found = self._buckets.get(idx)
            if found is None:
                found = self._buckets[idx] = Bucket(idx)
            bucket = self._last = found
            self._last_idx = idx

        statuses = bucket.statuses
        statuses[status] = statuses.get(status, 0) + 1
        # Histogram.record(latency_s) inlined: the call would cost a fifth of this method.
        # test_buckets holds the two in agreement.
        if latency_s >= MIN_VALUE:
            if latency_s < MAX_VALUE:
                index = 1 + int((_log(latency_s) - _LOG_MIN) * _INV_LOG_GAMMA)
            else:
                index = TOP_INDEX
        else:
            index = 0
        histogram = bucket.latency
        counts = histogram.counts
        counts[index] = counts.get(index, 0) + 1
        histogram._count += 1
        bucket.attempts += 1
        if status == 503 and retry_after is not None:
            bucket.retry_after_503 += 1
        if final:
            bucket.done += 1
            if not ok:
                bucket.failed += 1

        if attempt > 1:
            bucket.retries += 1
        elif final and not self._log_all_attempts:
            return  # the common case ends here: a request that took one attempt
        self._record_in_log(t_start, latency_s, status, attempt, retry_after, logical_id, final)

    def record_single_attempts(
        self, rows: Iterable[tuple[float, float, int, bool, object]], logical_id: str | int
    ) -> None:
        """:meth:`record_attempt` of each row ``(t_start, latency_ms, status, ok, name)``:
        requests that took one attempt and whose response carried no Retry-After, as
        ``record_attempt(t_start, latency_ms / 1000, status, 1, None, logical_id, True, ok)``
        files them. The latency is in milliseconds as Locust reports it, so the worker's hook
        keeps Locust's own number and makes none; ``name``, the request's, is the worker's to
        count (buckets keep none). Nearly every request is one, so the worker's hook notes them
        and files them here in one loop: the branches that cannot apply are left out, and a run
        of rows in one bucket (rows come nearly in time order) adds its counts to the bucket
        once. test_buckets holds the two methods in agreement.
        """
        if self._log_all_attempts:  # tests only: no need to be fast
            for t_start, latency_ms, status, ok, _name in rows:
                latency_s = latency_ms / 1000.0
                self.record_attempt(t_start, latency_s, status, 1, None, logical_id, True, ok)
            return
        buckets = self._buckets
        bucket: Bucket | None = None
        bucket_idx = None
        statuses: dict[int, int] = {}
        counts: dict[int, int] = {}
        n = failed = 0
        for t_start, latency_ms, status, ok, _name in rows:
            latency_s = latency_ms / 1000.0
            idx = _floor(t_start * BUCKETS_PER_SECOND)
            if idx != bucket_idx:
                if bucket is not None:
                    _add_single_attempts(bucket, n, failed)
                    n = failed = 0
                bucket = buckets.get(idx)
                if bucket is None:
                    bucket = buckets[idx] = Bucket(idx)
                bucket_idx = idx
                statuses = bucket.statuses
                counts = bucket.latency.counts
            statuses[status] = statuses.get(status, 0) + 1
            # Histogram.record(latency_s) inlined, as in record_attempt.
            if latency_s >= MIN_VALUE:
                if latency_s < MAX_VALUE:
                    index = 1 + int((_log(latency_s) - _LOG_MIN) * _INV_LOG_GAMMA)
                else:
                    index = TOP_INDEX
            else:
                index = 0
            counts[index] = counts.get(index, 0) + 1
            n += 1
            if not ok:
                failed += 1
        if bucket is not None:
            _add_single_attempts(bucket, n, failed)

    def _record_in_log(
        self,
        t_start: float,
        latency_s: float,
        status: int,
        attempt: int,
        retry_after: float | None,
        logical_id: str | int,
        final: bool,
    ) -> None:
        pending = self._pending_retry_after
        followed = pending.pop(logical_id, None) if attempt > 1 else None
        if not final and retry_after is not None:
            pending[logical_id] = retry_after
            if len(pending) > self._pending_limit:
                del pending[next(iter(pending))]  # dicts keep insertion order: the oldest
        elif final and attempt == 1:
            pending.pop(logical_id, None)  # only reachable with log_all_attempts
        if len(self._attempt_log) < self._attempt_log_limit:
            self._attempt_log.append(
                AttemptRecord(logical_id, attempt, t_start, status, latency_s, followed)
            )
        else:
            self._attempts_dropped += 1

    @property
    def live_buckets(self) -> int:
        """Buckets held in memory: those recorded since they were last drained."""
        return len(self._buckets)

    def drain(self, before: float | None = None) -> list[SerializedBucket]:
        """Serialized buckets that end at or before ``before`` (unix time), removed from memory.

        Call with the current time to ship every bucket but the one still filling; call with
        None on the final flush to ship everything. Ordered by index.
        """
        if before is None:
            ready = sorted(self._buckets)
        else:
            cutoff = math.floor(before * BUCKETS_PER_SECOND)
            ready = sorted(idx for idx in self._buckets if idx < cutoff)
        out = [self._buckets.pop(idx).to_dict() for idx in ready]
        # The cached bucket may just have been shipped; the next record must not write into it.
        self._last_idx = None
        self._last = Bucket(0)
        return out

    def drain_attempts(self) -> tuple[list[AttemptRecord], int]:
        """The attempt log since the last call, and how many records the limit dropped."""
        log, dropped = self._attempt_log, self._attempts_dropped
        self._attempt_log = []
        self._attempts_dropped = 0
        return log, dropped
