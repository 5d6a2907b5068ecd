"""The scenario's phases as a Locust shape, on the run's clock.

Imported only inside Locust processes: importing it imports Locust, which monkey-patches the
process with gevent. The phase arithmetic itself is :mod:`harness.load.plan` (pure, tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from locust import LoadTestShape

from harness.load.plan import PhasePlan

__all__ = ["PhaseShape"]

# Locust's shape loop asks for a tick about once a second; a boundary closer than this is waited
# for inside tick(), so a phase's users are asked for on time rather than up to a second late.
# A tick whose phase's users were not asked for yet returns them at once (see
# PhasePlan.when_to_read_target). So a closed-model phase shorter than a tick keeps its users until
# the next tick; the open model is exact whatever the phases (its drivers pace on the plan).
_SHAPE_LOOKAHEAD_S = 1.0


class PhaseShape(LoadTestShape):
    """The scenario's phases as a Locust shape, on the run's clock (unix time from ``begin``)."""

    def __init__(
        self,
        plan: PhasePlan,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = gevent.sleep,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Locust leaves it unannotated
        self._plan = plan
        self._clock = clock
        self._sleep = sleep
        self._t0: float | None = None
        self._asked: tuple[int, float] | None = None  # the target the last tick returned
        self.finished = False

    def begin(self, t0: float) -> None:
        self._t0 = t0

    # Read by the open model's drivers (harness.load.open_model): the arrival schedule is the
    # phases on this clock.
    @property
    def plan(self) -> PhasePlan:
        return self._plan

    @property
    def t0(self) -> float | None:
        return self._t0

    def reset_time(self) -> None:
        """Locust resets the shape's clock whenever a test starts; ours is the run's, set once."""

    def get_run_time(self) -> float:
        if self._t0 is None:
            raise RuntimeError("PhaseShape.begin() was not called")
        return self._clock() - self._t0

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        due = self._plan.when_to_read_target(elapsed, self._asked, _SHAPE_LOOKAHEAD_S)
        if due > elapsed:
            self._sleep(due - elapsed)
            # Once more round the loop first: the phase clock, due at the same moment, writes
            # its marks before this greenlet starts (or stops) users, which may take a while.
            self._sleep(0)
            elapsed = max(self.get_run_time(), due)
        target = self._plan.target(elapsed)
        self._asked = target
        if target is None:
            self.finished = True
        return target
