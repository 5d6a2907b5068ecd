"""How much a figure moves from run to run on its own: the noise a difference must beat.

The estimate, per figure: take the latest ``runs`` (default 10) runs of the same scenario in the
history that passed (the run being judged left out, the baseline in), keep those that have the
figure, and if at least :data:`MIN_RUNS` remain, the noise is twice their sample standard
deviation (about the spread of 95% of runs around their mean, if they scatter normally). With
fewer runs the noise is unknown and excuses nothing: a difference beyond tolerance is then a
regression. Only passing runs are used, so an earlier broken run does not widen the band a
regression hides in.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from harness.history import HistoryRow

__all__ = ["MIN_RUNS", "NOISE_SPREAD", "Noise", "estimate_noise"]

MIN_RUNS: Final = 3
NOISE_SPREAD: Final = 2.0  # standard deviations


@dataclass(frozen=True)
class Noise:
    """Per figure key, the noise (in the figure's unit), from ``runs`` runs of the history."""

    by_key: Mapping[str, float]
    runs: tuple[str, ...]

    def of(self, key: str) -> float | None:
        return self.by_key.get(key)


def estimate_noise(
    history: Iterable[HistoryRow], keys: Sequence[str], *, runs: int = 10, exclude: str = ""
) -> Noise:
    """The noise of each of ``keys`` over the passing runs of ``history`` (newest first)."""
    chosen = [row for row in history if row.passed and row.run != exclude][:runs]
    by_key: dict[str, float] = {}
    for key in keys:
        values = [v for v in (row.figure(key) for row in chosen) if v is not None]
        if len(values) >= MIN_RUNS:
            by_key[key] = NOISE_SPREAD * statistics.stdev(values)
    return Noise(by_key, tuple(row.run for row in chosen))
