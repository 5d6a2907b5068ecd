"""The worker's side of the recorder: every request Locust reports goes into a
:class:`~harness.record.buckets.BucketRecorder`, and what it holds is shipped to the master.

Pure Python: the Locust glue (:mod:`harness.load.plugin`) only connects :meth:`RequestRecorder.
on_request` to ``events.request`` and sends :meth:`RequestRecorder.shipment` as a message, so
everything here is unit-tested without gevent.

A request made through a retry-aware user (:mod:`harness.load.users`) carries an
:class:`AttemptContext` in its request context under :data:`CONTEXT_KEY`: which logical request it
belongs to, its attempt number, and whether it ends that logical request. Any other request (a
plain ``FastHttpUser``, a custom client) is one attempt that ends its own logical request, a
success when Locust reported no exception.

A request of the open model (:mod:`harness.load.open_model`) that starts an arrival carries its
*intended* send time (unix seconds) under :data:`INTENDED_KEY`: its latency is counted from then,
not from when it went out, and it is filed in the bucket of that moment. A system that stalls
cannot hide the stall by slowing the load down (coordinated omission): the arrivals it held up
show the wait they really had. The open model's drivers count their arrivals, and those dropped
because ``max_in_flight`` were already waiting, in :data:`ARRIVALS`; the totals carry them.

The shipment (a Locust message's data, so msgpack: lists and str-keyed maps only)::

    {"worker": "w0",                 # the worker's tag, also the prefix of its logical ids
     "buckets": [SerializedBucket, ...],
     "attempts": [[logical_id, attempt, t, status, latency, retry_after_followed], ...],
     "dropped": 0,                   # attempt records the recorder's limit dropped
     "final": false,                 # true once, when the worker stopped: nothing follows
     "totals": {"requests": 812, "statuses": {"200": 800, "0": 12}},
                                     # cumulative over the worker's run, so the master can check
                                     # that what it stored adds up to what the worker saw
     "names": {"/checkout": {"all": {"201": 40, "503": 3}, "final": {"201": 40, "503": 1}}}}
                                     # cumulative responses per Locust request name: of every
                                     # attempt, and of the attempts that ended their logical
                                     # request; at most MAX_NAMES names, the rest under "(other)"
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NotRequired, TypedDict

from harness.load.retry import parse_retry_after
from harness.record.buckets import BucketRecorder, SerializedBucket

__all__ = [
    "ARRIVALS",
    "CONTEXT_KEY",
    "INTENDED_KEY",
    "MAX_NAMES",
    "MESSAGE_TYPE",
    "OTHER_NAME",
    "PENDING_LIMIT",
    "ArrivalCounts",
    "AttemptContext",
    "RequestRecorder",
    "Shipment",
    "WorkerTotals",
]

MESSAGE_TYPE: Final = "harness_buckets"
CONTEXT_KEY: Final = "harness_attempt"
INTENDED_KEY: Final = "harness_intended"

# Retry-After is read only where it means something to the verdict (503) or to a client (429):
# looking up a header on every 200 would be paid by every request for nothing.
_RETRY_AFTER_STATUSES: Final = frozenset({429, 503})

# A locustfile that puts ids in its request names (no name= argument) would grow the per-name
# totals without bound; past this many names the rest are counted together.
MAX_NAMES: Final = 200
OTHER_NAME: Final = "(other)"

# The requests the hook notes are filed before each shipment (every second), or when this many
# are waiting. Few, so the notes die young: a note kept until the shipment outlives the garbage
# collector's youngest generation (700 allocations) and is traversed again by the older ones.
# 500 against 20,000 (tests/bench/bench_recorder_overhead.py, interleaved): 2.1-2.4% of
# requests/s against 2.3-3.0%, in five alternating pairs of runs on the same machine.
PENDING_LIMIT: Final = 500


class AttemptContext:
    """One attempt of a logical request, as the retry-aware user describes it to the recorder.

    The user fills ``final`` and ``ok`` after it has seen the response and before Locust reports
    the request (inside ``catch_response``), so the recorder knows whether a retry follows.
    ``logical`` is unique within the worker process; the recorder prefixes the worker's tag.
    """

    __slots__ = ("attempt", "final", "logical", "ok")

    def __init__(self, logical: int, attempt: int) -> None:
        self.logical = logical
        self.attempt = attempt
        self.final = True
        self.ok = False

    def __repr__(self) -> str:
        return (
            f"AttemptContext(logical={self.logical}, attempt={self.attempt}, "
            f"final={self.final}, ok={self.ok})"
        )


class ArrivalCounts:
    """The open model's arrivals in this process: how many were due, and how many were dropped
    because ``max_in_flight`` requests were already waiting (so none is silently sent late)."""

    __slots__ = ("arrivals", "dropped")

    def __init__(self) -> None:
        self.arrivals = 0
        self.dropped = 0


# One per process, like the recorder: the drivers count here, the recorder ships the totals.
ARRIVALS: Final = ArrivalCounts()


class WorkerTotals(TypedDict):
    requests: int
    statuses: dict[str, int]
    arrivals: NotRequired[int]
    arrivals_dropped: NotRequired[int]


class NameTotals(TypedDict):
    all: dict[str, int]
    final: dict[str, int]


class Shipment(TypedDict):
    worker: str
    buckets: list[SerializedBucket]
    attempts: list[list[Any]]
    dropped: int
    final: bool
    totals: WorkerTotals
    names: dict[str, NameTotals]


class RequestRecorder:
    """Records Locust's request events and packs them for the master. One per worker process.

    Like the BucketRecorder inside it, not thread-safe: Locust's greenlets run on one thread and
    the request hook has no yield point.
    """

    def __init__(
        self,
        *,
        tag: str = "local",
        recorder: BucketRecorder | None = None,
        clock: Callable[[], float] = time.time,
        arrivals: ArrivalCounts = ARRIVALS,
    ) -> None:
        self.tag = tag
        self._recorder = recorder if recorder is not None else BucketRecorder()
        self._clock = clock
        self._arrivals = arrivals
        self._statuses: dict[int, int] = {}
        # name -> (status -> attempts, status -> attempts that did NOT end their request): the
        # final counts are the difference, so the common case (a final attempt) counts once.
        self._names: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        # Requests the hook has noted but neither counted under their names nor filed into
        # buckets yet: (start, latency in ms as Locust reports it, status, ok, name). Filed
        # before each shipment, or once PENDING_LIMIT are waiting.
        self._pending: list[tuple[float, float, int, bool, object]] = []
        self._finished = False

    @property
    def requests(self) -> int:
        """Requests seen by the hook since the start (counted apart from the buckets): each
        counts once in its name's responses, so the hook keeps no other count. Files the
        noted requests first."""
        self._file_pending()
        return sum(sum(every.values()) for every, _ in self._names.values())

    def on_request(
        self,
        response_time: float = 0.0,
        response: object = None,
        context: Mapping[str, object] | None = None,
        exception: object = None,
        start_time: float | None = None,
        name: object = None,
        request_type: object = None,
        response_length: object = None,
        url: object = None,
        **_: object,
    ) -> None:
        """The ``events.request`` listener. ``response_time`` is in milliseconds, as Locust has it.

        Runs on every request of every user, so it does as little as it can. A plain user's
        request with no Retry-After to read (nearly every request) is only noted, with the
        numbers Locust passed (the hook makes no number of its own per request), and
        :meth:`_file_pending` counts the notes under their names and files them into buckets in
        one loop before each shipment: the same work, done where it costs a Locust user least
        (``tests/bench/bench_recorder_overhead.py`` measures it in place). What the response
        says is read here, so no response is kept. Every keyword Locust passes is a named
        parameter: an unnamed one would be copied into ``**_`` on each call.
        """
        # FastHttpUser answers 0 for no response; HttpUser may say None; a custom client may
        # report no response object at all (None has no status_code either).
        try:
            status = response.status_code or 0  # type: ignore[attr-defined]
        except AttributeError:
            status = 0
        # A plain user (no context) with its start time and no Retry-After to read: noted.
        if not context and start_time is not None and status not in _RETRY_AFTER_STATUSES:
            pending = self._pending
            pending.append((start_time, response_time, status, exception is None, name))
            if len(pending) >= PENDING_LIMIT:
                self._file_pending()
            return
        latency = response_time / 1000.0
        t = start_time if start_time is not None else self._clock() - latency
        retry_after = None
        if status in _RETRY_AFTER_STATUSES:
            headers = getattr(response, "headers", None)
            if headers is not None:
                retry_after = parse_retry_after(headers.get("Retry-After"))
        ok = exception is None
        if context:
            intended = context.get(INTENDED_KEY)
            if isinstance(intended, float) and intended < t:
                # Open model: the wait before the request could go out is part of its latency.
                latency += t - intended
                t = intended
            info = context.get(CONTEXT_KEY)
            if isinstance(info, AttemptContext):
                if info.attempt != 1 or not info.final:
                    retried = self._count(name, status)
                    self._record_retried(t, latency, status, retry_after, info, retried)
                    return
                ok = info.ok
        # One attempt that ends its request: never in the attempt log, so the worker's tag is
        # its id.
        self._count(name, status)
        self._recorder.record_attempt(t, latency, status, 1, retry_after, self.tag, True, ok)

    def _file_pending(self) -> None:
        """Count the noted requests (one attempt each, no Retry-After) under their names and
        file them into the buckets."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        names = self._names
        for row in pending:
            name = row[4]
            # _count inlined: thousands of rows a second, nearly all under a name seen before.
            counts = names.get(name) if type(name) is str else None
            if counts is None:
                counts = self._counts_of(name)
            every = counts[0]
            status = row[2]
            every[status] = every.get(status, 0) + 1
        self._recorder.record_single_attempts(pending, self.tag)

    def _count(self, name: object, status: int) -> dict[int, int]:
        """Count one response under its request's name; the name's counts of attempts that did
        not end their request, for the caller to add to."""
        counts = self._names.get(name) if type(name) is str else None
        if counts is None:
            counts = self._counts_of(name)
        every = counts[0]
        every[status] = every.get(status, 0) + 1
        return counts[1]

    def _record_retried(
        self,
        t: float,
        latency: float,
        status: int,
        retry_after: float | None,
        info: AttemptContext,
        retried: dict[int, int],
    ) -> None:
        """An attempt of a logical request that took (or will take) more than one: it goes to
        the attempt log under an id unique in the run, and to the per-name non-final counts."""
        if not info.final:
            retried[status] = retried.get(status, 0) + 1
        self._recorder.record_attempt(
            t,
            latency,
            status,
            info.attempt,
            retry_after,
            f"{self.tag}:{info.logical}",
            info.final,
            info.ok,
        )

    def _counts_of(self, name: object) -> tuple[dict[int, int], dict[int, int]]:
        """The counts a name not yet in the table goes to: its own while there is room, else
        those of :data:`OTHER_NAME` (as are names that are not strings)."""
        key = name if isinstance(name, str) else OTHER_NAME
        counts = self._names.get(key)
        if counts is None:
            if len(self._names) >= MAX_NAMES:
                key = OTHER_NAME
                counts = self._names.get(key)
            if counts is None:
                counts = self._names[key] = ({}, {})
        return counts

    def shipment(self, *, final: bool = False, now: float | None = None) -> Shipment | None:
        """What to send to the master now, or None when there is nothing new (and not final).

        Not final: the buckets that ended before ``now`` (the one still filling stays). Final:
        everything, once; the recorder must not be used afterwards.
        """
        if self._finished:
            raise RuntimeError("the final shipment was already made")
        self._file_pending()
        if final:
            buckets = self._recorder.drain(None)
            self._finished = True
        else:
            buckets = self._recorder.drain(self._clock() if now is None else now)
        attempts, dropped = self._recorder.drain_attempts()
        if not (buckets or attempts or dropped or final):
            return None
        statuses = self._statuses
        for bucket in buckets:
            flat = bucket["status"]
            for i in range(0, len(flat), 2):
                statuses[flat[i]] = statuses.get(flat[i], 0) + flat[i + 1]
        return {
            "worker": self.tag,
            "buckets": buckets,
            "attempts": [list(record) for record in attempts],
            "dropped": dropped,
            "final": final,
            "totals": self._totals(statuses),
            "names": {
                name: {"all": _by_code(every), "final": _final_by_code(every, retried)}
                for name, (every, retried) in self._names.items()
            },
        }

    def _totals(self, statuses: dict[int, int]) -> WorkerTotals:
        totals: WorkerTotals = {
            "requests": self.requests,
            "statuses": {str(code): n for code, n in sorted(statuses.items())},
        }
        if self._arrivals.arrivals:
            totals["arrivals"] = self._arrivals.arrivals
            totals["arrivals_dropped"] = self._arrivals.dropped
        return totals


def _final_by_code(every: dict[int, int], retried: dict[int, int]) -> dict[str, int]:
    """Attempts that ended their logical request, by status: every one less the others."""
    final = {code: n - retried.get(code, 0) for code, n in every.items()}
    return _by_code({code: n for code, n in final.items() if n})


def _by_code(counts: dict[int, int]) -> dict[str, int]:
    return {str(code): n for code, n in sorted(counts.items())}
