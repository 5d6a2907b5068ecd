"""What a capacity search found, from the steps it measured: plain numbers, no I/O.

Definitions (the README repeats them):

- A step *held* when every SLO judged over its hold passed. The **capacity** is the offered load
  (arrival rate) of the last step that held before the first that did not; a search whose every
  step held has found no breaking point below its maximum.
- The **knee** of the latency curve is the offered load where p99 starts to climb: the step
  farthest below the straight line from the first step's p99 to the breaking step's (the
  Kneedle method on the curve normalised to 0..1); None with fewer than three steps or a flat
  curve.
- The **503 onset** is the offered load of the first step whose 503 ratio reached 1%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ONSET_RATIO", "SearchResult", "StepResult", "knee_of", "summarise"]

ONSET_RATIO = 0.01


@dataclass(frozen=True)
class StepResult:
    """One step: the offered load, what came back, and the SLOs that failed over its hold."""

    name: str
    offered: float  # arrivals per second asked for
    throughput: float  # good (2xx/3xx) responses per second
    p99_s: float | None
    ratio_503: float | None
    responses: int
    failed: tuple[str, ...] = ()

    @property
    def held(self) -> bool:
        return not self.failed and self.responses > 0


@dataclass(frozen=True)
class SearchResult:
    """One search (healthy, or with faults held)."""

    label: str
    faults: tuple[str, ...]
    steps: tuple[StepResult, ...]
    capacity: float | None  # the last load that held; None: the first step already broke
    breaking: float | None  # the first load that did not hold; None: none did
    knee: float | None
    onset_503: float | None
    run_dir: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def found(self) -> bool:
        return self.breaking is not None


def knee_of(points: Sequence[tuple[float, float]]) -> float | None:
    """The x of the knee of an increasing, convex-ish curve (see the module docstring)."""
    if len(points) < 3:
        return None
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x_span, y_span = xs[-1] - xs[0], max(ys) - min(ys)
    if x_span <= 0 or y_span <= 0:
        return None
    gaps = [((x - xs[0]) / x_span) - ((y - min(ys)) / y_span) for x, y in points]
    best = max(range(len(points)), key=lambda i: gaps[i])
    return xs[best] if gaps[best] > 0 else None


def summarise(
    label: str,
    faults: Sequence[str],
    steps: Sequence[StepResult],
    *,
    run_dir: str = "",
    notes: Sequence[str] = (),
) -> SearchResult:
    breaking_index = next((i for i, step in enumerate(steps) if not step.held), None)
    if breaking_index is None:
        capacity = steps[-1].offered if steps else None
        breaking = None
        upto = list(steps)
    else:
        capacity = steps[breaking_index - 1].offered if breaking_index > 0 else None
        breaking = steps[breaking_index].offered
        upto = list(steps[: breaking_index + 1])
    curve = [(s.offered, s.p99_s) for s in upto if s.p99_s is not None]
    onset = next(
        (s.offered for s in steps if s.ratio_503 is not None and s.ratio_503 >= ONSET_RATIO),
        None,
    )
    return SearchResult(
        label=label,
        faults=tuple(faults),
        steps=tuple(steps),
        capacity=capacity,
        breaking=breaking,
        knee=knee_of(curve),
        onset_503=onset,
        run_dir=run_dir,
        notes=tuple(notes),
    )
