"""The load timeline of a scenario: which phase runs when, and which phase events are due.

Pure Python. The Locust shape (:class:`harness.load.plugin.PhaseShape`) asks :meth:`PhasePlan.
target` for the users it should run; the master's phase clock asks :class:`PhaseMarks` which
``phase_start`` / ``phase_end`` events to write. Both measure ``elapsed`` in seconds from the
start of the load (the master's clock), so a phase's users and its events agree.

In the open model (``load.model: open``) the shape runs a fixed number of *driver* users (one per
load process) for the whole run; each paces its share of the phases' arrival rates
(:meth:`PhasePlan.arrivals`, :mod:`harness.load.open_model`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.scenario import LoadModel, Phase, Scenario

__all__ = [
    "ArrivalSchedule",
    "OpenPlan",
    "PhaseMark",
    "PhaseMarks",
    "PhasePlan",
    "PlannedPhase",
]


@dataclass(frozen=True)
class PlannedPhase:
    """A phase with its place on the timeline: ``start <= elapsed < end``."""

    index: int
    name: str
    start: float
    end: float
    users: int
    spawn_rate: float
    rate: float | None = None  # arrivals per second (open model); None in the closed model


class PhasePlan:
    """The scenario's phases, back to back from 0. ``model`` open: every phase runs ``drivers``
    users (started at once) that pace the phase's ``rate``; ``max_in_flight`` bounds the
    requests waiting for an answer, over all drivers."""

    def __init__(
        self,
        phases: Sequence[Phase],
        *,
        model: LoadModel = "closed",
        drivers: int = 1,
        max_in_flight: int = 1000,
    ) -> None:
        if not phases:
            raise ValueError("a plan needs at least one phase")
        if drivers < 1:
            raise ValueError("the open model needs at least one driver user")
        self.model: LoadModel = model
        self.drivers = drivers
        self.max_in_flight = max_in_flight
        planned = []
        start = 0.0
        for index, phase in enumerate(phases):
            end = start + phase.duration
            if model == "open":
                rate = phase.rate or 0.0
                planned.append(
                    PlannedPhase(index, phase.name, start, end, drivers, float(drivers), rate)
                )
            else:
                if phase.users is None or phase.spawn_rate is None:
                    raise ValueError(f"phase {phase.name} has no users or spawn_rate")
                planned.append(
                    PlannedPhase(index, phase.name, start, end, phase.users, phase.spawn_rate)
                )
            start = end
        self.phases: tuple[PlannedPhase, ...] = tuple(planned)
        self._starts = [p.start for p in planned]

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> PhasePlan:
        load = scenario.load
        # One driver per load process: Locust spreads users evenly over the workers, so each
        # gets one and paces 1/drivers of every rate.
        return cls(
            load.phases,
            model=load.model,
            drivers=max(1, load.workers),
            max_in_flight=load.max_in_flight,
        )

    def arrivals(self) -> tuple[tuple[float, float, float], ...]:
        """``(start, end, rate)`` of every phase, for the open model's drivers."""
        return tuple((p.start, p.end, p.rate or 0.0) for p in self.phases)

    @property
    def total(self) -> float:
        """Seconds from the start of the first phase to the end of the last."""
        return self.phases[-1].end

    def at(self, elapsed: float) -> PlannedPhase | None:
        """The phase running at ``elapsed``; a boundary belongs to the phase it starts. None
        before 0 and from :attr:`total` on."""
        if elapsed < 0 or elapsed >= self.total:
            return None
        return self.phases[bisect.bisect_right(self._starts, elapsed) - 1]

    def next_boundary(self, elapsed: float) -> float | None:
        """The first phase start (or the end of the last phase) after ``elapsed``; None past it."""
        for phase in self.phases:
            if phase.start > elapsed:
                return phase.start
        return self.total if elapsed < self.total else None

    def target(self, elapsed: float) -> tuple[int, float] | None:
        """``(users, spawn_rate)`` at ``elapsed``, None once the last phase is over."""
        phase = self.at(max(elapsed, 0.0))
        return None if phase is None else (phase.users, phase.spawn_rate)

    def when_to_read_target(
        self, elapsed: float, asked: tuple[int, float] | None, lookahead: float
    ) -> float:
        """When a shape tick at ``elapsed`` should read :meth:`target`: at once when the running
        phase's target is not the one ``asked`` for last (the first tick above all: the first
        phase's users are due now), else at the next boundary if it comes within ``lookahead``
        (the time to the next tick), so the next phase is asked for on time rather than up to a
        tick late. Waiting for the boundary first would skip a short first phase's users."""
        if self.target(elapsed) != asked:
            return elapsed
        boundary = self.next_boundary(elapsed)
        if boundary is not None and boundary - elapsed < lookahead:
            return boundary
        return elapsed


@dataclass(frozen=True)
class PhaseMark:
    """A phase event that is due: ``planned`` is when the timeline says it happens (seconds
    from the start), ``cut_short`` an end that came before its time (the run was stopped)."""

    kind: Literal["start", "end"]
    phase: PlannedPhase
    planned: float
    cut_short: bool = False


class PhaseMarks:
    """Hands out each phase's start and end mark once, in timeline order, as time passes."""

    def __init__(self, plan: PhasePlan) -> None:
        self._plan = plan
        self._next = 0  # index into the flat list of marks
        self._marks: list[PhaseMark] = []
        for phase in plan.phases:
            self._marks.append(PhaseMark("start", phase, phase.start))
            self._marks.append(PhaseMark("end", phase, phase.end))

    @property
    def current(self) -> PlannedPhase | None:
        """The phase whose start was handed out and whose end was not."""
        if self._next % 2 == 1:
            return self._marks[self._next].phase
        return None

    @property
    def next_planned(self) -> float | None:
        """When the next mark is due (seconds from the start); None when all were handed out."""
        return self._marks[self._next].planned if self._next < len(self._marks) else None

    def due(self, elapsed: float) -> list[PhaseMark]:
        """Marks whose time has come by ``elapsed``, not handed out before."""
        out = []
        while self._next < len(self._marks) and self._marks[self._next].planned <= elapsed:
            out.append(self._marks[self._next])
            self._next += 1
        return out

    def close(self, elapsed: float) -> list[PhaseMark]:
        """The run is over at ``elapsed``: the marks still due, then the end of a phase that was
        started and not ended (cut short). Phases never started get no marks."""
        out = self.due(elapsed)
        if self._next % 2 == 1:
            mark = self._marks[self._next]
            out.append(PhaseMark("end", mark.phase, mark.planned, cut_short=True))
        self._next = len(self._marks)
        return out


@dataclass(frozen=True)
class OpenPlan:
    """What a driver needs: the run's start (unix seconds), each phase's ``(start, end, rate)``
    in seconds from it, how many drivers share the rates, and the in-flight cap over them all."""

    t0: float
    phases: tuple[tuple[float, float, float], ...]
    drivers: int
    max_in_flight: int

    def to_message(self) -> dict[str, Any]:
        return {
            "t0": self.t0,
            "phases": [list(phase) for phase in self.phases],
            "drivers": self.drivers,
            "max_in_flight": self.max_in_flight,
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> OpenPlan:
        return cls(
            t0=float(data["t0"]),
            phases=tuple((float(a), float(b), float(r)) for a, b, r in data["phases"]),
            drivers=int(data["drivers"]),
            max_in_flight=int(data["max_in_flight"]),
        )

    @property
    def pool_size(self) -> int:
        """The in-flight cap of one driver (at least one)."""
        return max(1, self.max_in_flight // self.drivers)


class ArrivalSchedule:
    """The intended send times (unix seconds) of one driver: in each phase, evenly spaced at
    ``rate * share`` per second, the first ``offset`` (a fraction of the spacing) into it, so
    drivers with different offsets interleave instead of arriving together."""

    def __init__(
        self,
        t0: float,
        phases: Sequence[tuple[float, float, float]],
        *,
        share: float = 1.0,
        offset: float = 0.0,
    ) -> None:
        if not 0.0 <= offset < 1.0:
            raise ValueError(f"offset is a fraction of the spacing, 0 <= offset < 1: {offset}")
        self.t0 = t0
        self.phases = tuple(phases)
        self.share = share
        self.offset = offset

    def __iter__(self) -> Iterator[float]:
        for start, end, rate in self.phases:
            per_second = rate * self.share
            if per_second <= 0:
                continue
            spacing = 1.0 / per_second
            # Counted by index, not by adding the spacing up: no drift over a long phase.
            k = 0
            while (at := start + (k + self.offset) * spacing) < end:
                yield self.t0 + at
                k += 1

    def count(self) -> int:
        """How many arrivals the schedule holds (for tests and the report)."""
        return sum(1 for _ in self)
