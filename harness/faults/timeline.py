"""The fault timeline: inject each fault when it is due, revert it when its time is up, and
revert everything still in force however the run ends.

The discipline is an exit stack's: a fault is journaled, then its revert is registered (it joins
the *armed* list), and only then is ``inject()`` called. So a fault whose inject raised, or was
interrupted halfway, is reverted like any other; it may have half-applied. :meth:`revert_all`
unwinds the armed list newest first, attempting every revert even when some fail (see
:mod:`harness.faults.sweep`), and closes the timeline: later ticks inject nothing.

Faults can also be injected and reverted by hand while the timeline runs (a game day:
:meth:`inject_now`, :meth:`revert_now`), from a *catalogue* of faults that need not be scheduled.
A hand-made fault goes through the same steps (journaled first, its revert registered, then
injected), its journal lines and events carry ``manual: true`` and ``who``, and
:meth:`revert_all` reverts it like any other. One fault name is in force at most once at a time
(its toxics and journal entries are named after it): injecting one that is, by hand or by its
schedule, is refused, or skipped with a ``fault_error`` event when the schedule comes due.

Use it as a context manager, so every way out (the end of the load, a guard's abort, an
exception, Ctrl-C, a SIGTERM turned into KeyboardInterrupt by the caller) reverts::

    with Journal.in_state_dir(state_dir, on_event=run_store_listener(writer)) as journal, \\
            FaultTimeline(faults_of_scenario(...), journal) as timeline:
        timeline.start()
        while running:
            timeline.tick()
            sleep(0.1)

One fault's failure never stops the timeline: an exception from one inject or revert is journaled
(a ``fault_error`` event) and the other faults carry on. Plain blocking calls, no gevent: under
the gevent-patched Locust master they yield like any other I/O, and the lock serialises a tick
with a ``revert_all`` from another greenlet.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from harness.errors import BadInputError, HarnessError, InfrastructureError
from harness.faults.base import Fault, error_text
from harness.faults.journal import Journal, Listener
from harness.faults.sweep import sweep

__all__ = ["FaultConflict", "FaultTimeline", "RevertFailure", "SlotView", "UnknownFault"]


class UnknownFault(BadInputError):
    """A fault name that is not in the timeline's catalogue."""


class FaultConflict(HarnessError):
    """A hand-made step that cannot happen now: the fault is already in force (or not in force,
    to revert it), or the run is ending."""


class _State(enum.Enum):
    SCHEDULED = "scheduled"
    ARMED = "armed"  # journaled and its revert registered: it may be in force
    REVERTED = "reverted"
    SKIPPED = "skipped"  # could not be journaled, so it was never injected


@dataclass(eq=False)
class _Slot:
    fault: Fault
    start: float
    end: float | None
    state: _State = _State.SCHEDULED
    entry_id: str = ""
    revert_due: float | None = None  # offset at which a tick reverts it; None: revert_all only
    last_error: str = ""
    manual: bool = False  # injected by hand (inject_now), not by the schedule
    who: str = ""  # who injected it by hand
    reverted_by: str = ""  # who reverted it by hand; empty: its schedule, or the end of the run
    reverted_at: float | None = None  # offset

    def tags(self) -> dict[str, Any]:
        """What the journal lines and events of a hand-made fault carry besides the schedule's."""
        return {"manual": True, "who": self.who} if self.manual else {}


@dataclass(frozen=True)
class SlotView:
    """One fault on the timeline as a person watching it sees it. Offsets in seconds from the
    start; ``state``: pending (scheduled, not yet due), active (may be in force), reverted,
    skipped (never injected)."""

    name: str
    description: str
    state: str
    start: float
    end: float | None
    manual: bool
    who: str
    reverted_by: str
    reverted_at: float | None
    error: str


@dataclass(frozen=True)
class RevertFailure:
    """A fault :meth:`FaultTimeline.revert_all` could not revert; it stays pending in the
    journal for ``harness rollback``."""

    name: str
    description: str
    error: str


class FaultTimeline:
    """Faults with the offsets (seconds from :meth:`start`) to inject and revert them at; an end
    of None means "until :meth:`revert_all`".

    ``clock`` is monotonic seconds (a fake one in tests); ``on_event`` is also handed every
    journal step, as the journal's own listeners are. A failed revert is retried by later ticks
    every ``retry_interval_s``, and by :meth:`revert_all` in ``revert_attempts`` passes.
    """

    def __init__(
        self,
        faults: Iterable[tuple[Fault, float, float | None]],
        journal: Journal,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_event: Listener | None = None,
        sleep: Callable[[float], None] = time.sleep,
        revert_attempts: int = 3,
        revert_backoff_s: float = 0.5,
        retry_interval_s: float = 1.0,
    ) -> None:
        self._slots = [_Slot(fault, start, end) for fault, start, end in faults]
        _check(self._slots)
        self._catalogue: dict[str, Callable[[], Fault]] = {}
        self._journal = journal
        self._clock = clock
        self._sleep = sleep
        self._revert_attempts = revert_attempts
        self._revert_backoff_s = revert_backoff_s
        self._retry_interval_s = retry_interval_s
        self._armed: list[_Slot] = []  # in the order armed: revert_all unwinds it backwards
        # Created here, not at import: under gevent, the patched (greenlet-aware) lock.
        self._lock = threading.RLock()
        self._t0: float | None = None
        self._closed = False
        self.unreverted: list[RevertFailure] = []
        if on_event is not None:
            journal.add_listener(on_event)

    # --- the run -------------------------------------------------------------------------------

    def start(self, t0: float | None = None) -> None:
        """Offset 0 is ``t0`` on the timeline's clock (now when omitted)."""
        with self._lock:
            self._t0 = self._clock() if t0 is None else t0

    def tick(self) -> None:
        """Inject every fault that is due, then revert every fault whose time is up."""
        with self._lock:
            if self._t0 is None:
                raise RuntimeError("FaultTimeline.tick() before start()")
            # Checked before each fault: revert_all may close the timeline while one injects.
            for slot in list(self._slots):
                if self._open() and slot.state is _State.SCHEDULED and self._offset() >= slot.start:
                    if self._in_force(slot.fault.name):
                        self._skip_busy(slot)
                        continue
                    self._inject(slot)
            if not self._open():
                return
            now = self._offset()
            for slot in list(self._armed):
                due = slot.revert_due
                if slot.state is _State.ARMED and due is not None and now >= due:
                    self._revert_in_tick(slot)

    def revert_all(self) -> list[RevertFailure]:
        """Revert every fault that may be in force, newest first; close the timeline. Returns
        what could not be reverted (also kept in :attr:`unreverted`). Safe to call again: it
        retries what is left."""
        with self._lock:
            self._closed = True
            todo = [slot for slot in reversed(self._armed) if slot.state is _State.ARMED]
            try:
                sweep(
                    todo,
                    self._revert,
                    attempts=self._revert_attempts,
                    backoff_s=self._revert_backoff_s,
                    sleep=self._sleep,
                )
            finally:
                self.unreverted = [
                    RevertFailure(slot.fault.name, slot.fault.describe(), slot.last_error)
                    for slot in todo
                    if slot.state is _State.ARMED
                ]
            return list(self.unreverted)

    # --- by hand ---------------------------------------------------------------------------------

    def set_catalogue(self, catalogue: Mapping[str, Callable[[], Fault]]) -> None:
        """The faults :meth:`inject_now` may inject, each name with what builds a fresh one."""
        with self._lock:
            self._catalogue = dict(catalogue)

    @property
    def catalogue(self) -> list[str]:
        return list(self._catalogue)

    def inject_now(self, name: str, *, who: str, for_s: float | None = None) -> SlotView:
        """Inject catalogue fault ``name`` now, by hand; reverted after ``for_s`` seconds by a
        tick, else by :meth:`revert_now` or the end of the run. Raises :class:`UnknownFault`,
        :class:`FaultConflict` (already in force, the run not started or ending); a failed
        inject is journaled and reverted like a scheduled one's, and reported in the view."""
        with self._lock:
            build = self._catalogue.get(name)
            if build is None:
                known = ", ".join(sorted(self._catalogue)) or "none"
                raise UnknownFault(f"no fault {name!r} in the catalogue (it has: {known})")
            if for_s is not None and not (math.isfinite(for_s) and for_s > 0):
                raise BadInputError(f"fault {name!r}: for: expected a positive duration")
            if self._t0 is None or not self._open():
                raise FaultConflict("the run is not going (not started yet, or ending)")
            if self._in_force(name):
                raise FaultConflict(f"fault {name!r} is already in force; revert it first")
            now = self._offset()
            slot = _Slot(build(), now, None if for_s is None else now + for_s, manual=True, who=who)
            self._slots.append(slot)
            self._inject(slot)
            return self._view(slot)

    def revert_now(self, name: str | None, *, who: str) -> list[SlotView]:
        """Revert fault ``name`` (every fault in force when None) now, by hand. The timeline
        stays open: scheduled faults still come. Raises :class:`UnknownFault` for a name neither
        scheduled nor in the catalogue, :class:`FaultConflict` when it is not in force."""
        with self._lock:
            if (
                name is not None
                and name not in self._catalogue
                and not any(slot.fault.name == name for slot in self._slots)
            ):
                known = ", ".join(sorted({*self._catalogue, *(s.fault.name for s in self._slots)}))
                raise UnknownFault(f"no fault {name!r} here (it has: {known or 'none'})")
            todo = [
                slot
                for slot in reversed(self._armed)
                if slot.state is _State.ARMED and name in (None, slot.fault.name)
            ]
            if name is not None and not todo:
                raise FaultConflict(f"fault {name!r} is not in force")
            for slot in todo:
                slot.reverted_by = who
                try:
                    self._revert(slot, 1)
                except Exception:
                    # Left armed: ticks retry it, and the end of the run reverts it for sure.
                    slot.reverted_by = ""
                    slot.revert_due = self._offset() + self._retry_interval_s
            return [self._view(slot) for slot in todo]

    def views(self) -> list[SlotView]:
        """Every fault on the timeline, scheduled and hand-made, in the order they start."""
        with self._lock:
            return [self._view(slot) for slot in sorted(self._slots, key=lambda s: s.start)]

    def _view(self, slot: _Slot) -> SlotView:
        state = {
            _State.SCHEDULED: "pending",
            _State.ARMED: "active",
            _State.REVERTED: "reverted",
            _State.SKIPPED: "skipped",
        }[slot.state]
        return SlotView(
            name=slot.fault.name,
            description=slot.fault.describe(),
            state=state,
            start=slot.start,
            end=slot.end,
            manual=slot.manual,
            who=slot.who,
            reverted_by=slot.reverted_by,
            reverted_at=slot.reverted_at,
            error=slot.last_error,
        )

    def _in_force(self, name: str) -> bool:
        return any(slot.fault.name == name and slot.state is _State.ARMED for slot in self._armed)

    def _skip_busy(self, slot: _Slot) -> None:
        slot.state = _State.SKIPPED
        slot.last_error = "already in force (injected by hand) when its time came"
        self._journal.failed(
            "", slot.fault.name, "schedule", slot.last_error, slot.fault, injected=False
        )

    def active(self) -> list[str]:
        """Names of the faults that may be in force now: armed and not reverted (including one
        whose inject failed and whose revert has not succeeded yet)."""
        with self._lock:
            return [slot.fault.name for slot in self._armed if slot.state is _State.ARMED]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failures = self.revert_all()
        if not failures:
            return
        message = "could not revert " + "; ".join(
            f"{f.name} ({f.description}): {f.error}" for f in failures
        )
        message += f"; they stay in {self._journal.path}: run `harness rollback`"
        if exc is None:
            raise InfrastructureError(message)
        exc.add_note(message)  # the original error is the story; this is the epilogue

    # --- steps ---------------------------------------------------------------------------------

    def _inject(self, slot: _Slot) -> None:
        fault = slot.fault
        try:
            slot.entry_id = self._journal.journaled(
                fault, at=slot.start, until=slot.end, offset=self._offset(), **slot.tags()
            )
        except Exception as exc:
            # Not journaled, so not injected: a crash now would leave a fault nobody knows of.
            slot.state = _State.SKIPPED
            self._journal.failed("", fault.name, "journal", error_text(exc), fault, injected=False)
            return
        slot.state = _State.ARMED
        self._armed.append(slot)  # the revert is registered: from here on, it will run
        slot.revert_due = slot.end
        started_at = self._journal.clock()
        try:
            fault.inject()
        except BaseException as exc:
            self._journal.failed(slot.entry_id, fault.name, "inject", error_text(exc), fault)
            slot.last_error = error_text(exc)
            slot.revert_due = self._offset()  # it may have half-applied: revert it now
            if not isinstance(exc, Exception):
                raise
            self._revert_if_closed_meanwhile(slot)
            return
        self._note(
            slot,
            self._journal.injected,
            started_at=started_at,
            offset=self._offset(),
            **slot.tags(),
        )
        if self._revert_if_closed_meanwhile(slot):
            return
        if fault.self_healing:
            slot.state = _State.REVERTED
            slot.reverted_at = self._offset()
            self._note(
                slot,
                self._journal.reverted,
                self_healing=True,
                offset=self._offset(),
                **slot.tags(),
            )

    def _revert_if_closed_meanwhile(self, slot: _Slot) -> bool:
        """revert_all ran while this fault's inject did (a signal handler on this thread: the
        lock is reentrant), so it may have reverted too early: revert once more, now."""
        if self._open():
            return False
        self._revert_in_tick(slot)
        return True

    def _revert_in_tick(self, slot: _Slot) -> None:
        try:
            self._revert(slot, 1)
        except Exception:
            slot.revert_due = self._offset() + self._retry_interval_s

    def _revert(self, slot: _Slot, attempt: int) -> None:
        fault = slot.fault
        try:
            fault.revert()
        except BaseException as exc:
            slot.last_error = error_text(exc)
            self._journal.failed(
                slot.entry_id, fault.name, "revert", slot.last_error, fault, attempt=attempt
            )
            raise
        slot.state = _State.REVERTED
        slot.reverted_at = self._offset()
        by_hand = {"reverted_by": slot.reverted_by} if slot.reverted_by else {}
        self._note(slot, self._journal.reverted, offset=self._offset(), **slot.tags(), **by_hand)

    def _note(self, slot: _Slot, step: Callable[..., None], **detail: Any) -> None:
        """Journal a step that already happened. Its failure (a full disk) is an error event,
        not a reason to stop: the fault's state is known here either way."""
        try:
            step(slot.entry_id, slot.fault, **detail)
        except Exception as exc:
            self._journal.failed(slot.entry_id, slot.fault.name, "journal", error_text(exc))

    def _open(self) -> bool:
        return not self._closed

    def _offset(self) -> float:
        # Only a started timeline arms faults; the fallback keeps bookkeeping from ever being
        # what fails a revert.
        return 0.0 if self._t0 is None else self._clock() - self._t0


def _check(slots: list[_Slot]) -> None:
    seen: set[str] = set()
    for slot in slots:
        name = slot.fault.name
        if name in seen:
            # Toxic names and journal entries are derived from it.
            raise BadInputError(f"two faults named {name!r} on one timeline")
        seen.add(name)
        end_ok = slot.end is None or slot.end >= slot.start
        if not (math.isfinite(slot.start) and slot.start >= 0 and end_ok):
            raise BadInputError(f"fault {name!r}: bad window {slot.start}..{slot.end}")
