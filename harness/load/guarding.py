"""The scenario's abort guards on the master: every stored bucket goes to the guard evaluator,
and a breach becomes a ``guard_breach`` event in the run store.

Pure Python (no Locust): the master plugin feeds it from its shipment handler and asks it about
once a second from a greenlet; what to do about a breach (stop the load, revert the faults, end
the run as aborted) is the plugin's business. The decision itself, a condition that held for the
guard's whole duration, is :class:`harness.verdict.GuardEvaluator`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from harness.load.collector import StoreWriter
from harness.record import EventKind
from harness.record.buckets import Bucket, BucketFormatError
from harness.verdict.guards import GuardBreach, GuardEvaluator

__all__ = ["GuardWatch"]


class GuardWatch:
    """Guards over the buckets the master stores. One per master, driven from its greenlets."""

    def __init__(self, evaluator: GuardEvaluator, writer: StoreWriter) -> None:
        self.evaluator = evaluator
        self._writer = writer

    @property
    def armed(self) -> bool:
        """Whether there is any guard to watch."""
        return bool(self.evaluator.guards)

    @property
    def breaches(self) -> tuple[GuardBreach, ...]:
        return self.evaluator.breached

    def feed(self, buckets: Iterable[Mapping[str, object]]) -> None:
        """Buckets as shipped (serialized), after the store took them: it validated them, so a
        bad one here is a bug; it is skipped rather than allowed to stop the run."""
        if not self.armed:
            return
        for data in buckets:
            try:
                self.evaluator.add(Bucket.from_dict(data))
            except BucketFormatError:
                continue

    def check(self, now: float) -> list[GuardBreach]:
        """Guards newly breached as of ``now``, each recorded as a ``guard_breach`` event (named
        after the guard, at the time it was found) before it is returned."""
        if not self.armed:
            return []
        breaches = self.evaluator.check(now)
        for breach in breaches:
            self._writer.event(
                EventKind.GUARD_BREACH, breach.name, breach.event_detail(), t=breach.at
            )
        return breaches
