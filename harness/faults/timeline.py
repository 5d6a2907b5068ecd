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
        timeline.set_waker(wake.set)
        timeline.start()
        while running:
            due = timeline.tick()          # the offset of the next step, None: nothing planned
            wake.wait(timeout=due - offset_now if due is not None else 1.0)
            wake.clear()

On time, not polled: :meth:`tick` does what is due and says when the next step is due, so the
caller sleeps until exactly then; a change of plan (a fault injected by hand with a ``for``, a
revert that failed and will be retried, a step that ended) calls the *waker*, so a sleeping caller
ticks again at once. Two things keep a step's own cost off its time. The journal line (an fsync)
is written ``journal_ahead_s`` before the fault is due (a fault journaled and never injected is
only reverted, which is harmless: reverts are idempotent). And with a ``spawn`` (``gevent.spawn``
on the Locust master) every inject and revert runs in its own greenlet, so a slow one (a killed
instance's restart waits until it answers its health check) does not hold up the faults due
after it. With ``lead_calls``, a step starts early by what the last quick calls of its kind took
(at most :data:`LEAD_CAP_S`), since a fault is in force only once its call returns. The times
recorded are when the step returned (the fault was in force, or lifted), with ``scheduled`` (the
due time on the timeline's clock) and ``started_at`` beside them.

One fault's failure never stops the timeline: an exception from one inject or revert is journaled
(a ``fault_error`` event) and the other faults carry on. Plain blocking calls, no gevent: under
the gevent-patched Locust master they yield like any other I/O. The lock guards the bookkeeping;
a spawned step calls the fault outside it, and one fault never has two steps running at once (a
busy fault's next step waits until its step ends). :meth:`revert_all` waits (up to
``step_wait_s``) for the spawned steps to end before it reverts.
"""

from __future__ import annotations

import enum
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from harness.errors import BadInputError, HarnessError, InfrastructureError
from harness.faults.base import Fault, error_text
from harness.faults.journal import Journal, Listener
from harness.faults.sweep import sweep

__all__ = [
    "LEAD_CAP_S",
    "FaultConflict",
    "FaultTimeline",
    "RevertFailure",
    "SlotView",
    "UnknownFault",
]

# With ``lead_calls``, a step starts at most this much before its time: the median of the last
# quick calls of its kind and step (an API call, a signal and its wait), capped.
LEAD_CAP_S = 0.05
_LEARN_BELOW_S = 0.2


class UnknownFault(BadInputError):
    """A fault name that is not in the timeline's catalogue."""


class FaultConflict(HarnessError):
    """A hand-made step that cannot happen now: the fault is already in force (or not in force,
    to revert it), or the run is ending."""


class _State(enum.Enum):
    SCHEDULED = "scheduled"
    PREPARED = "prepared"  # journaled ahead of its time, its revert registered; not injected yet
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
    busy: bool = False  # a step (inject or revert) is running for it

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
    ``spawn`` runs a step on its own (``gevent.spawn``); None runs it inside the tick.
    ``journal_ahead_s``: how long before its time a fault is journaled. ``lead_calls``: start
    each inject and revert early by what the last such calls took (:data:`LEAD_CAP_S` at most),
    so the fault is in force when due rather than a call's length after.
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
        spawn: Callable[[Callable[[], None]], object] | None = None,
        journal_ahead_s: float = 0.0,
        step_wait_s: float = 30.0,
        lead_calls: bool = False,
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
        self._spawn = spawn
        self._journal_ahead_s = journal_ahead_s
        self._step_wait_s = step_wait_s
        self._lead_calls = lead_calls
        self._call_s: dict[tuple[str, str], deque[float]] = {}
        self._waker: Callable[[], None] | None = None
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

    def set_waker(self, waker: Callable[[], None] | None) -> None:
        """What to call when the plan changed, so a caller sleeping until the next due time
        ticks again now (``Event.set``). Called from whichever greenlet changed it."""
        self._waker = waker

    def tick(self) -> float | None:
        """Journal every fault about to be due, inject every fault that is due, then revert
        every fault whose time is up. Returns the offset at which the next step is due (None:
        nothing is planned; a change of plan calls the waker)."""
        with self._lock:
            if self._t0 is None:
                raise RuntimeError("FaultTimeline.tick() before start()")
            # The time is read before each fault: a step run inside the tick takes time, and
            # revert_all may close the timeline while one injects.
            for slot in list(self._slots):
                if not self._open():
                    break
                if (
                    slot.state is _State.SCHEDULED
                    and self._offset() >= self._inject_at(slot) - self._journal_ahead_s
                ):
                    if self._in_force(slot.fault.name):
                        self._skip_busy(slot)
                        continue
                    self._prepare(slot)
                if (
                    slot.state is _State.PREPARED
                    and not slot.busy
                    and self._offset() >= self._inject_at(slot)
                ):
                    self._dispatch(slot, self._inject_step)
            if not self._open():
                return None
            now = self._offset()
            for slot in list(self._armed):
                due = self._revert_at(slot)
                if slot.state is _State.ARMED and not slot.busy and due is not None and now >= due:
                    self._dispatch(slot, self._revert_step)
            return self.next_due()

    def next_due(self) -> float | None:
        """The offset of the next step (journal, inject or revert) that a tick will take;
        None when nothing is planned (a fault whose step is running is not: it wakes us)."""
        with self._lock:
            if not self._open():
                return None
            times = []
            for slot in self._slots:
                if slot.state is _State.SCHEDULED:
                    times.append(self._inject_at(slot) - self._journal_ahead_s)
                elif slot.state is _State.PREPARED and not slot.busy:
                    times.append(self._inject_at(slot))
            for slot in self._armed:
                due = self._revert_at(slot)
                if slot.state is _State.ARMED and not slot.busy and due is not None:
                    times.append(due)
            return min(times, default=None)

    def _inject_at(self, slot: _Slot) -> float:
        """When to call inject: its time, less what such a call has been taking (so the fault
        is in force when due, not a call's length after)."""
        return slot.start - self._lead(slot.fault.kind, "inject")

    def _revert_at(self, slot: _Slot) -> float | None:
        due = slot.revert_due
        return None if due is None else due - self._lead(slot.fault.kind, "revert")

    def _lead(self, kind: str, step: str) -> float:
        calls = self._call_s.get((kind, step))
        if not calls:
            return 0.0
        return min(statistics.median(calls), LEAD_CAP_S)

    def _learn(self, slot: _Slot, step: str, took_s: float) -> None:
        """Keep how long a quick call of this kind took: a slow one (a restart waiting for
        health) says nothing of the next and is not kept."""
        if self._lead_calls and 0.0 <= took_s <= _LEARN_BELOW_S:
            self._call_s.setdefault((slot.fault.kind, step), deque(maxlen=5)).append(took_s)

    def revert_all(self) -> list[RevertFailure]:
        """Revert every fault that may be in force, newest first; close the timeline. Returns
        what could not be reverted (also kept in :attr:`unreverted`). Safe to call again: it
        retries what is left."""
        with self._lock:
            self._closed = True
        self._wait_for_steps()
        with self._lock:
            todo = [slot for slot in reversed(self._armed) if slot.state in _MAY_BE_IN_FORCE]
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
                    if slot.state in _MAY_BE_IN_FORCE
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
            self._prepare(slot)
            if slot.state is not _State.PREPARED:
                return self._view(slot)
            slot.busy = True
        # Outside the lock: the scheduled faults keep their times while this one injects.
        try:
            self._inject(slot)
        finally:
            slot.busy = False
            self._wake()
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
                if slot.busy:
                    # Its inject (or a revert) is running: a tick reverts it when that ends.
                    slot.revert_due = self._offset()
                    continue
                try:
                    self._revert(slot, 1)
                except Exception:
                    # Left armed: ticks retry it, and the end of the run reverts it for sure.
                    slot.reverted_by = ""
                    slot.revert_due = self._offset() + self._retry_interval_s
            self._wake()
            return [self._view(slot) for slot in todo]

    def views(self) -> list[SlotView]:
        """Every fault on the timeline, scheduled and hand-made, in the order they start."""
        with self._lock:
            return [self._view(slot) for slot in sorted(self._slots, key=lambda s: s.start)]

    def _view(self, slot: _Slot) -> SlotView:
        state = {
            _State.SCHEDULED: "pending",
            _State.PREPARED: "pending",
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
        """The name is taken: in force, or journaled to be injected in a moment."""
        return any(
            slot.fault.name == name and slot.state in _MAY_BE_IN_FORCE for slot in self._armed
        )

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

    def _prepare(self, slot: _Slot) -> None:
        """Journal the fault and register its revert: from here on, the revert will run."""
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
        slot.state = _State.PREPARED
        self._armed.append(slot)

    def _dispatch(self, slot: _Slot, step: Callable[[_Slot], None]) -> None:
        slot.busy = True
        if self._spawn is None:
            self._run_step(step, slot)
        else:
            self._spawn(lambda: self._run_step(step, slot))

    def _run_step(self, step: Callable[[_Slot], None], slot: _Slot) -> None:
        try:
            step(slot)
        finally:
            slot.busy = False
            self._wake()  # its next step (a revert) may be due now

    def _inject_step(self, slot: _Slot) -> None:
        with self._lock:
            # Spawned, it may start after revert_all closed the timeline: that sweeps it.
            if not self._open() or slot.state is not _State.PREPARED:
                return
        self._inject(slot)

    def _revert_step(self, slot: _Slot) -> None:
        with self._lock:
            if not self._open() or slot.state is not _State.ARMED:
                return
        self._revert_in_tick(slot)

    def _inject(self, slot: _Slot) -> None:
        """Inject a prepared fault. The fault is called outside the lock (a spawned step runs
        beside the others); the bookkeeping around it is under it."""
        fault = slot.fault
        with self._lock:
            slot.state = _State.ARMED
            slot.revert_due = slot.end
        scheduled = {} if slot.manual else {"scheduled": self._due(slot.start)}
        started_at, called = self._journal.clock(), self._clock()
        try:
            fault.inject()
            in_force_at = self._journal.clock()  # before waiting for the lock
            self._learn(slot, "inject", self._clock() - called)
        except BaseException as exc:
            with self._lock:
                self._journal.failed(slot.entry_id, fault.name, "inject", error_text(exc), fault)
                slot.last_error = error_text(exc)
                slot.revert_due = self._offset()  # it may have half-applied: revert it now
                if not isinstance(exc, Exception):
                    raise
                self._revert_if_closed_meanwhile(slot)
                return
        with self._lock:
            self._injected(slot, started_at, in_force_at, scheduled)

    def _injected(
        self, slot: _Slot, started_at: float, in_force_at: float, scheduled: dict[str, float]
    ) -> None:
        fault = slot.fault
        self._note(
            slot,
            self._journal.injected,
            t=in_force_at,
            started_at=started_at,
            offset=self._offset(),
            **scheduled,
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
        try:
            self._revert(slot, 1)
        except Exception:
            slot.revert_due = self._offset()  # revert_all's sweep, or rollback, retries it
        return True

    def _revert_in_tick(self, slot: _Slot) -> None:
        try:
            self._revert(slot, 1, on_schedule=not slot.reverted_by)
        except Exception:
            with self._lock:
                slot.revert_due = self._offset() + self._retry_interval_s

    def _revert(self, slot: _Slot, attempt: int, *, on_schedule: bool = False) -> None:
        """Revert the fault (called outside the lock by a spawned step, under it otherwise).
        ``on_schedule``: its time came (not a hand, not the end of the run), so the time it
        was due is recorded beside the time it was lifted."""
        fault = slot.fault
        scheduled = {}
        if on_schedule and slot.end is not None:
            scheduled = {"scheduled": self._due(slot.end)}
        started_at, called = self._journal.clock(), self._clock()
        try:
            fault.revert()
            lifted_at = self._journal.clock()
            self._learn(slot, "revert", self._clock() - called)
        except BaseException as exc:
            with self._lock:
                slot.last_error = error_text(exc)
                self._journal.failed(
                    slot.entry_id, fault.name, "revert", slot.last_error, fault, attempt=attempt
                )
            raise
        with self._lock:
            slot.state = _State.REVERTED
            slot.reverted_at = self._offset()
            by_hand = {"reverted_by": slot.reverted_by} if slot.reverted_by else {}
            self._note(
                slot,
                self._journal.reverted,
                t=lifted_at,
                started_at=started_at,
                offset=self._offset(),
                **scheduled,
                **slot.tags(),
                **by_hand,
            )

    def _note(self, slot: _Slot, step: Callable[..., None], **detail: Any) -> None:
        """Journal a step that already happened. Its failure (a full disk) is an error event,
        not a reason to stop: the fault's state is known here either way."""
        try:
            step(slot.entry_id, slot.fault, **detail)
        except Exception as exc:
            self._journal.failed(slot.entry_id, slot.fault.name, "journal", error_text(exc))

    def _open(self) -> bool:
        return not self._closed

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None:
            waker()

    def _wait_for_steps(self) -> None:
        """Let spawned steps end (so no fault is reverted while its inject or another revert
        runs), for at most ``step_wait_s``. Steps run inside a tick never are outstanding."""
        if self._spawn is None:
            return
        deadline = self._clock() + self._step_wait_s
        while any(slot.busy for slot in self._slots) and self._clock() < deadline:
            self._sleep(0.01)

    def _due(self, offset: float) -> float:
        """The time an offset is due on the timeline's clock (unix seconds on the master)."""
        return (self._t0 or 0.0) + offset

    def _offset(self) -> float:
        # Only a started timeline arms faults; the fallback keeps bookkeeping from ever being
        # what fails a revert.
        return 0.0 if self._t0 is None else self._clock() - self._t0


_MAY_BE_IN_FORCE = (_State.ARMED, _State.PREPARED)


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
