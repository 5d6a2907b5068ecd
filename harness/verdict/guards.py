"""Abort guards, evaluated live on the master: ``abort if ratio(status >= 500) > 50% for 15s``.

The master feeds every bucket as it arrives (:meth:`GuardEvaluator.add`) and asks once a second
(:meth:`GuardEvaluator.check`) which guards are breached. A guard is breached when its condition
held in *every* one-second step (``step_s``) of the last ``for`` seconds: a sliding evaluation,
so a single bad second does not abort a run, and a condition that comes and goes never adds up.
A step with no responses does not hold (silence is not evidence), and counts (``count(...)``)
are per step.

Workers ship their buckets about once a second and a slow attempt is filed under the bucket it
started in, so the newest buckets are still filling. Only steps that ended ``settle_s`` (2 s)
ago are judged: a breach is reported that much after the fact, and never on a half-filled step.

Cheap by construction: state is the buckets of the last ``for + settle`` seconds, and a check
walks back from the newest settled step only while the condition keeps holding, so a healthy run
costs one step per guard per check. Pure Python, no gevent: the master's loop calls it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from harness.record.buckets import BUCKETS_PER_SECOND, Bucket, bucket_start
from harness.scenario import Guard
from harness.verdict.language import parse_guard
from harness.verdict.metrics import measure_buckets
from harness.verdict.model import GuardExpr, compare
from harness.verdict.units import measured

__all__ = ["DEFAULT_SETTLE_S", "DEFAULT_STEP_S", "GuardBreach", "GuardEvaluator"]

DEFAULT_STEP_S: Final = 1.0
DEFAULT_SETTLE_S: Final = 2.0


@dataclass(frozen=True)
class GuardBreach:
    """A guard whose condition held for its whole duration. Times are unix seconds."""

    name: str
    expression: str
    observed: float  # the metric in the newest step, base units
    threshold: float
    unit: str
    since: float  # start of the first step of the stretch that held
    until: float  # end of its newest step
    at: float  # when the check found it
    step_s: float = DEFAULT_STEP_S

    @property
    def held_s(self) -> float:
        return self.until - self.since

    @property
    def detail(self) -> str:
        step = "second" if self.step_s == 1 else measured(self.step_s, "s")
        return (
            f"{self.expression}: held for {measured(self.held_s, 's')}, "
            f"{measured(self.observed, self.unit)} in the last {step}"
        )

    def event_detail(self) -> dict[str, Any]:
        """What the master records in its ``guard_breach`` event (JSON-ready)."""
        return {
            "expression": self.expression,
            "observed": self.observed,
            "threshold": self.threshold,
            "unit": self.unit,
            "since": self.since,
            "until": self.until,
            "detail": self.detail,
        }


class GuardEvaluator:
    """The scenario's guards over the buckets fed to it. ``guards`` are parsed ones, or the
    scenario's own (parsed here; a bad one is a BadInputError naming ``guards[i]``)."""

    def __init__(
        self,
        guards: Iterable[GuardExpr | Guard],
        clock: Callable[[], float] = time.time,
        *,
        step_s: float = DEFAULT_STEP_S,
        settle_s: float = DEFAULT_SETTLE_S,
        failed_statuses: Collection[int] = (),
    ) -> None:
        self._failed_statuses = frozenset(failed_statuses)
        self.guards: tuple[GuardExpr, ...] = tuple(
            g
            if isinstance(g, GuardExpr)
            else parse_guard(g.expr, name=g.name, where=f"guards[{i}]")
            for i, g in enumerate(guards)
        )
        self._clock = clock
        self._width = max(1, round(step_s * BUCKETS_PER_SECOND))
        self._settle_s = settle_s
        # Steps each guard needs; a duration that is not a whole number of steps rounds up.
        self._steps = [
            max(1, math.ceil(g.hold_s * BUCKETS_PER_SECOND / self._width - 1e-9))
            for g in self.guards
        ]
        self._keep = (max(self._steps, default=1) + 1) * self._width
        self._buckets: dict[int, Bucket] = {}
        self._floor = -(2**63)  # buckets older than this are of no use to any guard
        self._breached: dict[str, GuardBreach] = {}

    @property
    def breached(self) -> tuple[GuardBreach, ...]:
        """Every breach found so far, in the order found."""
        return tuple(self._breached.values())

    def add(self, bucket: Bucket) -> None:
        """Take one bucket (or a late part of one already taken: they are summed)."""
        if bucket.idx < self._floor:
            return
        held = self._buckets.get(bucket.idx)
        if held is None:
            # A copy: the caller's bucket may be merged into or reused after this returns.
            held = self._buckets[bucket.idx] = Bucket(bucket.idx)
        held.merge(bucket)

    def check(self, now: float | None = None) -> list[GuardBreach]:
        """Guards newly breached as of ``now`` (the clock's time when omitted). Each guard is
        reported once; :attr:`breached` keeps them all."""
        now = self._clock() if now is None else now
        settled = math.floor((now - self._settle_s) * BUCKETS_PER_SECOND)
        end = settled - settled % self._width  # steps on whole-step boundaries
        self._prune(end - self._keep)
        found = []
        for guard, steps in zip(self.guards, self._steps, strict=True):
            if guard.name in self._breached:
                continue
            newest = self._holds(guard, end)
            if newest is None:
                continue
            held = 1
            while held < steps and self._holds(guard, end - held * self._width) is not None:
                held += 1
            if held == steps:
                breach = GuardBreach(
                    name=guard.name,
                    expression=guard.text,
                    observed=newest,
                    threshold=guard.threshold.value,
                    unit=guard.threshold.unit,
                    since=bucket_start(end - steps * self._width),
                    until=bucket_start(end),
                    at=now,
                    step_s=self._width / BUCKETS_PER_SECOND,
                )
                self._breached[guard.name] = breach
                found.append(breach)
        return found

    def _holds(self, guard: GuardExpr, step_end: int) -> float | None:
        """The metric's value in the step ending at ``step_end`` when the condition holds
        there; None when it does not (or cannot be computed)."""
        value = measure_buckets(guard.metric, self._step(step_end), self._failed_statuses).value
        if value is None or not compare(value, guard.comparator, guard.threshold.value):
            return None
        return value

    def _step(self, step_end: int) -> Sequence[Bucket]:
        found = (self._buckets.get(idx) for idx in range(step_end - self._width, step_end))
        return [bucket for bucket in found if bucket is not None]

    def _prune(self, floor: int) -> None:
        if floor <= self._floor:
            return
        self._floor = floor
        for idx in [idx for idx in self._buckets if idx < floor]:
            del self._buckets[idx]
