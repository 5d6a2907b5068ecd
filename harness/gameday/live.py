"""The SLOs and guards of a game day, evaluated live over a sliding window of recent buckets.

The verdict at the end judges the whole run; people watching a game day want to know how the
system does *now*. So every per-bucket SLO (ratios, counts, percentiles, availability, retry
amplification) is measured with the verdict's own code (:func:`measure_buckets`, :func:`compare`)
over the last ``window_s`` seconds of settled buckets. An SLO scoped to a phase or a fault is
measured only while that phase runs or that fault is in force ("not now" otherwise). SLOs over
the attempt log or a fault's recovery need the whole story and say "judged at the end". Guards
show whether they were breached, else whether their condition holds in the last second.

Pure Python, no gevent: the master feeds :meth:`LiveBoard.add` from its shipment handler.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

from harness.record.buckets import BUCKETS_PER_SECOND, Bucket
from harness.verdict.guards import DEFAULT_SETTLE_S
from harness.verdict.metrics import measure_buckets
from harness.verdict.model import GuardExpr, SloExpr, compare
from harness.verdict.units import measured

__all__ = ["DEFAULT_WINDOW_S", "CheckRow", "LiveBoard"]

DEFAULT_WINDOW_S: Final = 30.0


@dataclass(frozen=True)
class CheckRow:
    """One SLO or guard as the chaos tab shows it. ``state``: pass, fail, n/a, no data, not now,
    at the end (SLOs); ok, holding, breached, no data (guards)."""

    name: str
    expression: str
    state: str
    observed: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LiveBoard:
    """Recent buckets, and the SLOs and guards over them."""

    def __init__(
        self,
        slos: Iterable[SloExpr],
        guards: Iterable[GuardExpr],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slos = tuple(slos)
        self.guards = tuple(guards)
        self.window_s = window_s
        # The newest buckets are still filling (workers ship once a second): like the guards,
        # judge only what has settled.
        self.settle_s = settle_s
        self._clock = clock
        self._buckets: dict[int, Bucket] = {}

    def add(self, bucket: Bucket) -> None:
        """Take one bucket, or a late part of one already taken (they are summed)."""
        held = self._buckets.get(bucket.idx)
        if held is None:
            held = self._buckets[bucket.idx] = Bucket(bucket.idx)
        held.merge(bucket)

    def recent(self, now: float, seconds: float) -> list[Bucket]:
        """The settled buckets of the ``seconds`` before ``now - settle_s``, oldest first."""
        hi = math.floor((now - self.settle_s) * BUCKETS_PER_SECOND)
        lo = hi - round(seconds * BUCKETS_PER_SECOND)
        self._prune(hi - round(max(self.window_s, self._longest_guard()) * BUCKETS_PER_SECOND))
        return [self._buckets[i] for i in range(lo, hi) if i in self._buckets]

    def slo_rows(
        self, now: float | None = None, *, phase: str | None = None, active: Collection[str] = ()
    ) -> list[CheckRow]:
        """Each SLO over the window; ``phase`` runs now and ``active`` faults are in force."""
        now = self._clock() if now is None else now
        buckets = self.recent(now, self.window_s)
        return [self._slo_row(slo, buckets, phase, active) for slo in self.slos]

    def guard_rows(
        self, now: float | None = None, *, breached: Collection[str] = ()
    ) -> list[CheckRow]:
        now = self._clock() if now is None else now
        last = self.recent(now, 1.0)
        rows = []
        for guard in self.guards:
            if guard.name in breached:
                rows.append(CheckRow(guard.name, guard.text, "breached", "", "the run was aborted"))
                continue
            value = measure_buckets(guard.metric, last).value
            if value is None:
                rows.append(CheckRow(guard.name, guard.text, "no data", "", "no responses"))
                continue
            holds = compare(value, guard.comparator, guard.threshold.value)
            hold = measured(guard.hold_s, "s")
            rows.append(
                CheckRow(
                    guard.name,
                    guard.text,
                    "holding" if holds else "ok",
                    measured(value, guard.threshold.unit),
                    f"in the last second; aborts once it holds for {hold}"
                    if holds
                    else "in the last second",
                )
            )
        return rows

    def _slo_row(
        self, slo: SloExpr, buckets: list[Bucket], phase: str | None, active: Collection[str]
    ) -> CheckRow:
        window = f"last {measured(self.window_s, 's')}"
        if not slo.metric.per_bucket:
            return CheckRow(slo.name, slo.text, "at the end", "", "judged over the whole run")
        scope = slo.window
        if scope.kind != "run":
            now_in = (scope.kind in ("phase", "either") and scope.name == phase) or (
                scope.kind in ("fault", "either") and scope.name in active
            )
            if not now_in:
                return CheckRow(slo.name, slo.text, "not now", "", f"only {scope.label}")
            window += f", {scope.label}"
        measurement = measure_buckets(slo.metric, buckets)
        if measurement.value is None:
            # "n/a" (nothing to measure, and no failure: no 503 for the Retry-After share) is
            # not "no data"; a missing value that is a failure is neither.
            state = {"n/a": "n/a", "fail": "fail"}.get(measurement.missing, "no data")
            return CheckRow(slo.name, slo.text, state, "", f"{window}: {measurement.evidence}")
        passed = compare(measurement.value, slo.comparator, slo.threshold.value)
        return CheckRow(
            slo.name,
            slo.text,
            "pass" if passed else "fail",
            measured(measurement.value, slo.threshold.unit),
            f"{window}: {measurement.evidence}",
        )

    def _longest_guard(self) -> float:
        return max((g.hold_s for g in self.guards), default=1.0)

    def _prune(self, floor: int) -> None:
        for idx in [i for i in self._buckets if i < floor]:
            del self._buckets[idx]
