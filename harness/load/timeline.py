"""The fault timeline as the Locust master drives it: a protocol, so the load layer never imports
the faults that implement it (:class:`harness.faults.FaultTimeline` does, built by
:mod:`harness.run.master`), and the timeline of a scenario without faults.

Pure Python: no Locust, no gevent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["NoFaults", "Timeline"]


class Timeline(Protocol):
    """The fault timeline as the master drives it (``harness.faults.FaultTimeline``)."""

    def start(self, t0: float) -> None: ...

    def tick(self) -> None: ...

    def revert_all(self) -> Sequence[object]:
        """Revert what may be in force; what could not be reverted (it stays journaled)."""
        ...

    def active(self) -> Sequence[object]: ...


class NoFaults:
    """The timeline of a scenario without faults."""

    def start(self, t0: float) -> None:
        pass

    def tick(self) -> None:
        pass

    def revert_all(self) -> Sequence[object]:
        return ()

    def active(self) -> Sequence[object]:
        return ()
