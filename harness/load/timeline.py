"""The fault timeline as the Locust master drives it: a protocol, so the load layer never imports
the faults that implement it (:class:`harness.faults.FaultTimeline` does, built by
:mod:`harness.run.master`), and the timeline of a scenario without faults.

Pure Python: no Locust, no gevent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["NoFaults", "Timeline"]


class Timeline(Protocol):
    """The fault timeline as the master drives it (``harness.faults.FaultTimeline``)."""

    def start(self, t0: float) -> None: ...

    def tick(self) -> float | None:
        """Do what is due; the offset (seconds from ``t0``) at which the next step is due,
        None when nothing is planned. The master sleeps until then, not a poll."""
        ...

    def set_waker(self, waker: Callable[[], None] | None) -> None:
        """What the timeline calls when its plan changed (a fault injected by hand, a step
        that ended), so the master ticks again before the time it slept until."""
        ...

    def revert_all(self) -> Sequence[object]:
        """Revert what may be in force; what could not be reverted (it stays journaled)."""
        ...

    def active(self) -> Sequence[object]: ...


class NoFaults:
    """The timeline of a scenario without faults."""

    def start(self, t0: float) -> None:
        pass

    def tick(self) -> float | None:
        return None

    def set_waker(self, waker: Callable[[], None] | None) -> None:
        pass

    def revert_all(self) -> Sequence[object]:
        return ()

    def active(self) -> Sequence[object]:
        return ()
