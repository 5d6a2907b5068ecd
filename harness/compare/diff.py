"""Two runs side by side: every figure with its delta and a verdict against its tolerance.

A figure is worse when it moves the wrong way for its kind (latency, the 503 share and a
recovery up; throughput and capacity down). It is a **regression** when it is worse by more
than its tolerance (:mod:`harness.scenario.regression`: relative for latency, throughput and
capacity; absolute for the share, in points, and for a recovery, in seconds) *and* by more than
the noise the history shows for it (:mod:`~.noise`); worse beyond tolerance but within the noise
is **noise**. Better by more than the tolerance is **improved**; anything else **ok**. A figure
only one run has (a phase renamed, a fault added) is **n/a**. A fault that recovered in the
baseline and never in the run is a regression whatever the tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from harness.compare.noise import Noise
from harness.history import HistoryRow, figure_kind
from harness.scenario.regression import DEFAULT_TOLERANCES, FigureKind
from harness.verdict.units import number

__all__ = ["Comparison", "FigureDiff", "Status", "compare_rows", "label_of"]

Status: TypeAlias = Literal["regression", "noise", "improved", "ok", "n/a"]
_HIGHER_IS_WORSE: Final[dict[str, bool]] = {
    "latency": True,
    "share": True,
    "recovery": True,
    "throughput": False,
    "capacity": False,
}
_RELATIVE: Final = frozenset({"latency", "throughput", "capacity"})
# Three significant digits: enough to see a change against its tolerance, and the table fits.
_DIGITS: Final = 3


@dataclass(frozen=True)
class FigureDiff:
    """One figure of both runs. ``worse_by`` is how much worse the run is, in the figure's unit
    (negative: better); ``allowed`` the tolerance in that unit; ``noise`` None when unknown."""

    key: str
    kind: str
    baseline: float | None
    run: float | None
    allowed: float
    noise: float | None
    status: Status

    @property
    def label(self) -> str:
        return label_of(self.key)

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.run is None:
            return None
        return self.run - self.baseline

    def shown(self, value: float | None) -> str:
        """A value of this figure as the tables show it."""
        if value is None:
            return "never" if self.kind == "recovery" else "-"
        if self.kind == "latency":
            return f"{number(value, _DIGITS)} ms"
        if self.kind == "share":
            return f"{number(value * 100, _DIGITS)}%"
        if self.kind == "recovery":
            return f"{number(value, _DIGITS)}s"
        return f"{number(value, _DIGITS)}/s"

    @property
    def delta_text(self) -> str:
        delta = self.delta
        if delta is None:
            return "-"
        sign = "+" if delta >= 0 else "-"
        if self.kind == "share":
            return f"{sign}{number(abs(delta) * 100, _DIGITS)} pts"
        if self.kind == "recovery":
            return f"{sign}{number(abs(delta), _DIGITS)}s"
        if self.baseline:
            return f"{sign}{number(abs(delta) / abs(self.baseline) * 100, _DIGITS)}%"
        return f"{sign}{self.shown(abs(delta))}"

    @property
    def noise_text(self) -> str:
        if self.noise is None:
            return "-"
        if self.kind == "share":
            return f"{number(self.noise * 100, _DIGITS)} pts"
        return self.shown(self.noise)

    @property
    def tolerance_text(self) -> str:
        if self.kind == "share":
            return f"{number(self.allowed * 100, _DIGITS)} pts"
        return self.shown(self.allowed)


@dataclass(frozen=True)
class Comparison:
    baseline: HistoryRow
    run: HistoryRow
    figures: tuple[FigureDiff, ...]
    noise: Noise
    tolerances: Mapping[str, float]

    @property
    def regressions(self) -> tuple[FigureDiff, ...]:
        return tuple(f for f in self.figures if f.status == "regression")

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def label_of(key: str) -> str:
    """``phase:spike:p99_ms`` → ``spike p99``; ``total:rps`` → ``run rps``."""
    parts = key.split(":")
    what = {"p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99", "ratio_503": "503 share"}
    if parts[0] == "phase" and len(parts) == 3:
        return f"{parts[1]} {what.get(parts[2], parts[2])}"
    if parts[0] == "total" and len(parts) == 2:
        return f"run {what.get(parts[1], parts[1])}"
    if parts[0] == "recovery":
        return f"recovery {':'.join(parts[1:])}"
    if parts[0] == "capacity":
        return f"capacity {':'.join(parts[1:])}"
    return key


def _status(
    kind: str, base: float | None, new: float | None, allowed: float, noise: float | None
) -> Status:
    if base is None and new is None:
        return "ok" if kind == "recovery" else "n/a"
    if kind == "recovery" and (base is None or new is None):
        # None is "never recovered": the worst there is, not a missing number.
        return "regression" if new is None else "improved"
    if base is None or new is None:
        return "n/a"
    worse_by = (new - base) if _HIGHER_IS_WORSE[kind] else (base - new)
    if worse_by > allowed:
        return "noise" if noise is not None and worse_by <= noise else "regression"
    if -worse_by > allowed:
        return "improved"
    return "ok"


def compare_rows(
    baseline: HistoryRow,
    run: HistoryRow,
    *,
    tolerances: Mapping[FigureKind, float] | None = None,
    noise: Noise | None = None,
) -> Comparison:
    """Every figure of both rows, in the run's order (then the baseline's extras)."""
    tol: dict[str, float] = {kind: value for kind, value in DEFAULT_TOLERANCES.items()}
    tol.update({kind: value for kind, value in (tolerances or {}).items()})
    noise = noise or Noise({}, ())
    keys = list(run.figures) + [k for k in baseline.figures if k not in run.figures]
    figures = []
    for key in keys:
        kind = figure_kind(key)
        if kind not in _HIGHER_IS_WORSE:
            continue
        base, new = baseline.figure(key), run.figure(key)
        in_both = key in baseline.figures and key in run.figures
        allowed = tol[kind] * abs(base) if kind in _RELATIVE and base is not None else tol[kind]
        status: Status = _status(kind, base, new, allowed, noise.of(key)) if in_both else "n/a"
        figures.append(FigureDiff(key, kind, base, new, allowed, noise.of(key), status))
    return Comparison(baseline, run, tuple(figures), noise, tol)
