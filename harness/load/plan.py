"""The load timeline of a scenario: which phase runs when, and which phase events are due.

Pure Python. The Locust shape (:class:`harness.load.plugin.PhaseShape`) asks :meth:`PhasePlan.
target` for the users it should run; the master's phase clock asks :class:`PhaseMarks` which
``phase_start`` / ``phase_end`` events to write. Both measure ``elapsed`` in seconds from the
start of the load (the master's clock), so a phase's users and its events agree.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.scenario import Phase, Scenario

__all__ = ["PhaseMark", "PhaseMarks", "PhasePlan", "PlannedPhase"]


@dataclass(frozen=True)
class PlannedPhase:
    """A phase with its place on the timeline: ``start <= elapsed < end``."""

    index: int
    name: str
    start: float
    end: float
    users: int
    spawn_rate: float


class PhasePlan:
    """The scenario's phases, back to back from 0."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        if not phases:
            raise ValueError("a plan needs at least one phase")
        planned = []
        start = 0.0
        for index, phase in enumerate(phases):
            end = start + phase.duration
            planned.append(
                PlannedPhase(index, phase.name, start, end, phase.users, phase.spawn_rate)
            )
            start = end
        self.phases: tuple[PlannedPhase, ...] = tuple(planned)
        self._starts = [p.start for p in planned]

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> PhasePlan:
        return cls(scenario.load.phases)

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
