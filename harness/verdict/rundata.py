"""A run as the verdict reads it: buckets, the attempt log, and when each phase and fault was.

:meth:`RunData.from_run_dir` reads a run store once; everything after works on this snapshot, so
the evaluators are plain functions of data a test can build by hand.

Times are unix seconds. A phase runs from its ``phase_start`` event to its ``phase_end`` event as
observed by the master (falling back to the scenario's plan from ``load_started_at`` when a store
has no phase events). A fault is in force from its ``fault_injected`` event to its
``fault_reverted`` event; a self-healing fault (``restart``) is reverted the moment it is injected,
so its window is its planned length instead.

A bucket belongs to a stretch ``[start, end)`` when the bucket starts inside it once both ends
are rounded to the nearest bucket boundary; attempts are filed by their start time too (see
:mod:`harness.record.buckets`). Rounding, because a bucket is never split and the times that end
stretches are observed ones: the master starts the load on a bucket boundary, so each phase
boundary falls on one too, but its ``phase_start`` event is written a millisecond or two after it.
Taken literally (the first bucket starting at or after the event) the bucket in which the new
phase began would be counted in the phase before: the first burst of a spike's new users in the
warm-up's p99. For a stretch whose ends fall inside buckets (an older run, a fault injected
mid-bucket) rounding puts the bucket with the edge on the side that has most of it.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast

from harness.integrity.readings import CheckValues, check_values
from harness.record import NAMES_META, Event, EventKind, RunDir
from harness.record.buckets import BUCKETS_PER_SECOND, AttemptRecord, Bucket
from harness.scenario import Scenario

__all__ = ["FaultTimes", "NameCounts", "RunData", "Span", "first_bucket", "name_counts"]

# Half a bucket: an edge up to 50 ms after a bucket boundary (an event observed late) is taken
# as on it. Below half, ties go up, as before: float noise (t * 10 landing a hair above or below
# the integer) never moves an edge off the boundary it is on.
_EDGE_ROUNDING: Final = 0.5

T = TypeVar("T")


def first_bucket(t: float) -> int:
    """The first bucket of a stretch that starts (or ends) at ``t``: the one that starts at the
    bucket boundary nearest ``t`` (see the module docstring)."""
    return math.ceil(t * BUCKETS_PER_SECOND - _EDGE_ROUNDING)


@dataclass(frozen=True)
class Span:
    """``start <= t < end``, unix seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def bucket_range(self) -> tuple[int, int]:
        """The buckets of the span, ``lo <= idx < hi``: those that start inside it once its ends
        are rounded to the nearest bucket boundary."""
        return first_bucket(self.start), first_bucket(self.end)


@dataclass(frozen=True)
class FaultTimes:
    """When one fault was planned, injected and reverted (None: it never was)."""

    name: str
    action: str
    planned: Span
    injected_at: float | None = None
    reverted_at: float | None = None
    self_healing: bool = False

    def active(self, run_end: float) -> Span | None:
        """When it was in force: injection to revert. A self-healing fault counts for its
        planned length; one never reverted (a crash) until the end of the run. None: never
        injected."""
        if self.injected_at is None:
            return None
        if self.self_healing:
            end = self.injected_at + self.planned.seconds
        elif self.reverted_at is not None:
            end = self.reverted_at
        else:
            end = run_end
        return Span(self.injected_at, max(end, self.injected_at))


@dataclass(frozen=True)
class NameCounts:
    """Responses to the requests of one Locust name, by status: of every attempt (``all``) and
    of the attempts that ended their logical request (``final``), summed over the workers."""

    all: Mapping[int, int]
    final: Mapping[int, int]


def name_counts(stored: object) -> dict[str, NameCounts]:
    """The per-name totals of the run store's meta (node -> name -> {"all", "final"}), summed
    over the nodes. Anything malformed is skipped: a verdict reads what it can."""
    totals: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    nodes = stored.values() if isinstance(stored, Mapping) else ()
    for names in nodes:
        if not isinstance(names, Mapping):
            continue
        for name, counts in names.items():
            if not isinstance(counts, Mapping):
                continue
            into = totals.setdefault(str(name), ({}, {}))
            for which, target in zip(("all", "final"), into, strict=True):
                _add_counts(counts.get(which), target)
    return {name: NameCounts(every, last) for name, (every, last) in totals.items()}


def _add_counts(counts: Any, into: dict[int, int]) -> None:
    if not isinstance(counts, Mapping):
        return
    for code, n in counts.items():
        try:
            status, number = int(code), int(n)
        except (TypeError, ValueError):
            continue
        into[status] = into.get(status, 0) + number


@dataclass(frozen=True)
class RunData:
    """Everything the verdict reads about one run. ``buckets`` are ordered by index and
    ``attempts`` by start time; ``phases`` are in scenario order."""

    start: float
    end: float
    buckets: tuple[Bucket, ...]
    attempts: tuple[AttemptRecord, ...] = ()
    phases: tuple[tuple[str, Span | None], ...] = ()
    faults: tuple[FaultTimes, ...] = ()
    max_attempts: int | None = None
    names: Mapping[str, NameCounts] = field(default_factory=dict)
    checks: Mapping[str, CheckValues] = field(default_factory=dict)
    # Statuses the scenario declares failed besides no response and 5xx (harness.record.outcome).
    failed_statuses: frozenset[int] = frozenset()
    _indices: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # Results worth computing once per run (see :meth:`memo`).
    _memo: dict[Hashable, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        indices = tuple(bucket.idx for bucket in self.buckets)
        if any(a >= b for a, b in itertools.pairwise(indices)):
            raise ValueError("RunData.buckets must be ordered by index, each index once")
        object.__setattr__(self, "_indices", indices)
        object.__setattr__(self, "_memo", {})

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, once per ``key`` for this run: the data never changes, and some
        results (a baseline phase's bounds, which every fault's recovery reads) cost a scan of
        thousands of buckets each time."""
        if key not in self._memo:
            self._memo[key] = compute()
        return cast(T, self._memo[key])

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)

    def phase(self, name: str) -> tuple[bool, Span | None]:
        """(known, span): span None when the phase is in the scenario but never ran."""
        for phase_name, span in self.phases:
            if phase_name == name:
                return True, span
        return False, None

    def fault(self, name: str) -> FaultTimes | None:
        for fault in self.faults:
            if fault.name == name:
                return fault
        return None

    def buckets_in(self, span: Span) -> Sequence[Bucket]:
        """The buckets that start inside ``span``, in order."""
        lo, hi = span.bucket_range
        return self.buckets_between(lo, hi)

    def buckets_between(self, lo: int, hi: int) -> Sequence[Bucket]:
        """The stored buckets with ``lo <= idx < hi`` (silent 100 ms were never stored)."""
        left = bisect.bisect_left(self._indices, lo)
        right = bisect.bisect_left(self._indices, hi)
        return self.buckets[left:right]

    # --- reading a run store --------------------------------------------------------------------

    @classmethod
    def from_run_dir(cls, run_dir: RunDir, scenario: Scenario) -> RunData:
        """Read a run store. ``scenario`` is the run's own (the plan the events are matched to)."""
        meta = run_dir.meta
        events = run_dir.events()
        start = _number(meta.get("load_started_at"))
        if start is None:
            start = _number(meta.get("started_at")) or 0.0
        ended_at = _number(meta.get("ended_at"))

        planned = {w.name: Span(start + w.start, start + w.end) for w in scenario.phase_windows()}
        started = _first_times(events, EventKind.PHASE_START)
        ended = _first_times(events, EventKind.PHASE_END)
        phases: list[tuple[str, Span | None]] = []
        if not started:  # a store without phase events: the plan is all there is
            phases = [(name, span) for name, span in planned.items()]
        else:
            for name in planned:
                if name not in started:
                    phases.append((name, None))
                    continue
                end = ended.get(name, ended_at if ended_at is not None else planned[name].end)
                phases.append((name, Span(started[name], max(end, started[name]))))
        last = phases[-1][1] if phases else None
        end = last.end if last is not None else start + scenario.total_duration
        if ended_at is not None:
            end = min(end, ended_at)

        injected = _first_times(events, EventKind.FAULT_INJECTED)
        reverted = _first_times(events, EventKind.FAULT_REVERTED)
        healed = {
            e.name
            for e in events
            if e.kind is EventKind.FAULT_REVERTED and e.detail.get("self_healing")
        }
        faults = []
        for fault, window in zip(scenario.faults, scenario.fault_windows(), strict=True):
            faults.append(
                FaultTimes(
                    name=fault.name,
                    action=fault.action,
                    planned=Span(start + window.start, start + window.end),
                    injected_at=injected.get(fault.name),
                    reverted_at=reverted.get(fault.name),
                    self_healing=fault.name in healed or fault.action == "restart",
                )
            )
        max_attempts = meta.get("max_attempts")
        return cls(
            start=start,
            end=end,
            buckets=tuple(run_dir.buckets()),
            attempts=tuple(run_dir.attempts()),
            phases=tuple(phases),
            faults=tuple(faults),
            max_attempts=max_attempts if type(max_attempts) is int else None,
            names=name_counts(meta.get(NAMES_META)),
            checks=check_values(events, [check.name for check in scenario.checks]),
            failed_statuses=frozenset(scenario.failed_statuses),
        )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _first_times(events: Sequence[Event], kind: EventKind) -> dict[str, float]:
    """Name -> time of its first event of ``kind`` (a repeat, e.g. a retried revert, is later)."""
    times: dict[str, float] = {}
    for event in events:
        if event.kind is kind:
            times.setdefault(event.name, event.t)
    return times
