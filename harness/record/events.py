"""What a run records besides its buckets: the kinds of event, an event as read back, and the one
protocol every layer that writes events uses (the run store's writer, a fault journal's listener,
the post-run checks)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Event", "EventKind", "EventSink"]


class EventKind(enum.StrEnum):
    RUN_START = "run_start"
    RUN_END = "run_end"
    PHASE_START = "phase_start"
    PHASE_END = "phase_end"
    FAULT_JOURNALED = "fault_journaled"
    FAULT_INJECTED = "fault_injected"
    FAULT_REVERTED = "fault_reverted"
    FAULT_ERROR = "fault_error"
    GUARD_BREACH = "guard_breach"
    CHECK = "check"  # a post-run check's reading (harness.integrity): before the load or after
    NOTE = "note"


@dataclass(frozen=True)
class Event:
    id: int
    t: float
    kind: EventKind
    name: str
    detail: dict[str, Any]


class EventSink(Protocol):
    """Where events go: :class:`harness.record.store.RunWriter`, or a fake in a test."""

    def event(
        self,
        kind: EventKind | str,
        name: str = "",
        detail: Mapping[str, Any] | None = None,
        *,
        t: float | None = None,
    ) -> int: ...
