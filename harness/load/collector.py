"""The master's side of the recorder: shipments from the workers into the run store, a live view
of throughput for the progress line, and the bookkeeping of final flushes.

Pure Python: the Locust glue registers :meth:`Collector.receive` for the ``harness_buckets``
message (see :mod:`harness.load.recording` for its format) and reads :meth:`Collector.window`
once a second. The store is written as shipments arrive, so a crash keeps what was recorded.

The per-name totals a shipment carries are cumulative, so only each worker's latest matters: the
collector keeps them and writes them all to the meta value :data:`NAMES_META` (node -> name ->
``{"all": {status: n}, "final": {status: n}}``) whenever one changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import InfrastructureError
from harness.record import NAMES_META, EventKind, EventSink
from harness.record.buckets import BUCKETS_PER_SECOND, AttemptRecord

__all__ = ["NAMES_META", "Collector", "StoreWriter", "Window", "is_error"]


# Older buckets than this are forgotten by the live view (the store keeps everything).
_LIVE_SECONDS = 10


def is_error(status: int) -> bool:
    """What the progress line counts as an error: no response, or a server error."""
    return status == 0 or status >= 500


class StoreWriter(EventSink, Protocol):
    """The part of :class:`harness.record.store.RunWriter` the collector uses."""

    def upsert_buckets(self, parts: Iterable[Mapping[str, object]]) -> int: ...

    def set_meta(self, key: str, value: object) -> None: ...

    def add_attempts(self, rows: Iterable[AttemptRecord | Sequence[Any]]) -> int: ...


@dataclass(frozen=True)
class Window:
    """Attempts started in ``[start, start + seconds)``, from the buckets received so far."""

    start: float
    seconds: float
    attempts: int
    errors: int

    @property
    def rate(self) -> float:
        return self.attempts / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_ratio(self) -> float:
        return self.errors / self.attempts if self.attempts else 0.0


class Collector:
    """Receives every worker's shipments. One per master, driven from its greenlets only."""

    def __init__(self, writer: StoreWriter) -> None:
        self._writer = writer
        self._live: dict[int, list[int]] = {}  # bucket idx -> [attempts, errors]
        self.attempts = 0
        self.errors = 0
        self.finals: dict[str, dict[str, Any]] = {}  # node id -> the worker's final totals
        self.senders: set[str] = set()
        self.names: dict[str, dict[str, Any]] = {}  # node id -> its latest per-name totals

    def receive(self, node: str, data: object) -> None:
        """Store one shipment from worker ``node``. InfrastructureError if it is malformed or
        the store refuses it (then nothing of it was stored, or only whole tables of it)."""
        if not isinstance(data, Mapping):
            raise InfrastructureError(f"worker {node}: shipment is not a mapping: {data!r:.80}")
        try:
            buckets = list(data["buckets"])
            attempts = list(data["attempts"])
            dropped = int(data["dropped"])
            final = bool(data["final"])
            totals = dict(data["totals"])
            worker = str(data["worker"])
            # Optional: a worker of an older harness sends none.
            names = data.get("names")
            if names is not None and not isinstance(names, Mapping):
                raise TypeError("names is not a mapping")
        except (KeyError, TypeError, ValueError) as exc:
            raise InfrastructureError(f"worker {node}: malformed shipment: {exc!r}") from None
        self.senders.add(node)
        if buckets:
            self._writer.upsert_buckets(buckets)
            self._count(buckets)
        if attempts:
            self._writer.add_attempts(attempts)
        if names and names != self.names.get(node):
            self.names[node] = dict(names)
            self._writer.set_meta(NAMES_META, self.names)
        if dropped:
            self._writer.event(
                EventKind.NOTE, "attempts_dropped", {"worker": worker, "dropped": dropped}
            )
        if final:
            self.finals[node] = totals
            self._writer.event(
                EventKind.NOTE, "worker_totals", {"worker": worker, "node": node, **totals}
            )

    def _count(self, buckets: list[Any]) -> None:
        live = self._live
        for bucket in buckets:
            flat = bucket["status"]
            errors = sum(flat[i + 1] for i in range(0, len(flat), 2) if is_error(flat[i]))
            attempts = bucket["attempts"]
            self.attempts += attempts
            self.errors += errors
            counts = live.setdefault(bucket["idx"], [0, 0])
            counts[0] += attempts
            counts[1] += errors
        if len(live) > 2 * _LIVE_SECONDS * BUCKETS_PER_SECOND:
            newest = max(live)
            for idx in [i for i in live if i < newest - _LIVE_SECONDS * BUCKETS_PER_SECOND]:
                del live[idx]

    def window(self, start: float, seconds: float = 1.0) -> Window:
        """What was received for the attempts started in ``[start, start + seconds)``."""
        first = math.floor(start * BUCKETS_PER_SECOND)
        last = first + max(1, round(seconds * BUCKETS_PER_SECOND))
        attempts = errors = 0
        for idx in range(first, last):
            counts = self._live.get(idx)
            if counts is not None:
                attempts += counts[0]
                errors += counts[1]
        return Window(first / BUCKETS_PER_SECOND, seconds, attempts, errors)
