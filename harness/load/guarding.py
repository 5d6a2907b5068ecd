"""The scenario's abort guards on the master: every stored bucket goes to the live guard evaluator,
and a breach becomes a ``guard_breach`` event in the run store.

Pure Python (no Locust): the master plugin feeds it from its shipment handler and asks it about
once a second from a greenlet; what to do about a breach (stop the load, revert the faults, end
the run as aborted) is the plugin's business. The decision itself, a condition that held for the
guard's whole duration, is the evaluator's: :class:`harness.verdict.GuardEvaluator`, handed in
by :mod:`harness.run.master` as a :class:`LiveGuards`, so the load layer never imports the
verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from harness.load.collector import StoreWriter
from harness.record import EventKind
from harness.record.buckets import Bucket, BucketFormatError

__all__ = ["Breach", "GuardWatch", "LiveGuards", "NoGuards"]


class Breach(Protocol):
    """A guard found breached (``harness.verdict.GuardBreach``). Times are unix seconds."""

    @property
    def name(self) -> str: ...

    @property
    def at(self) -> float:
        """When the check found it."""
        ...

    @property
    def detail(self) -> str:
        """One line for people: the expression, how long it held, what was seen."""
        ...

    def event_detail(self) -> Mapping[str, Any]:
        """What the ``guard_breach`` event records (JSON-ready)."""
        ...


class LiveGuards(Protocol):
    """The live guard evaluator as the master uses it (``harness.verdict.GuardEvaluator``)."""

    @property
    def guards(self) -> Sequence[object]:
        """The guards it watches; none: nothing to check."""
        ...

    @property
    def breached(self) -> Sequence[Breach]:
        """Every breach found so far, in the order found."""
        ...

    def add(self, bucket: Bucket) -> None: ...

    def check(self, now: float) -> Sequence[Breach]:
        """Guards newly breached as of ``now``; each is reported once."""
        ...


class NoGuards:
    """The evaluator of a scenario without guards."""

    guards: tuple[object, ...] = ()
    breached: tuple[Breach, ...] = ()

    def add(self, bucket: Bucket) -> None:
        pass

    def check(self, now: float) -> Sequence[Breach]:
        return ()


class GuardWatch:
    """Guards over the buckets the master stores. One per master, driven from its greenlets."""

    def __init__(self, evaluator: LiveGuards, writer: StoreWriter) -> None:
        self.evaluator = evaluator
        self._writer = writer

    @property
    def armed(self) -> bool:
        """Whether there is any guard to watch."""
        return bool(self.evaluator.guards)

    @property
    def breaches(self) -> tuple[Breach, ...]:
        return tuple(self.evaluator.breached)

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

    def check(self, now: float) -> list[Breach]:
        """Guards newly breached as of ``now``, each recorded as a ``guard_breach`` event (named
        after the guard, at the time it was found) before it is returned."""
        if not self.armed:
            return []
        breaches = list(self.evaluator.check(now))
        for breach in breaches:
            self._writer.event(
                EventKind.GUARD_BREACH, breach.name, breach.event_detail(), t=breach.at
            )
        return breaches
