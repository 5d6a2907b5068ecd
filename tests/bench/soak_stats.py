"""The arithmetic of the soak (``soak.py``): RSS series, the slope after warm-up, the verdict.

Kept apart from the script so a unit test can check it against series whose answer is known
(``tests/unit/test_bench_soak.py``), without a stack or a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MB = 1024 * 1024
# Growth the verdict tolerates: a least-squares slope of the RSS after warm-up of at most this
# many MB per 10 minutes. A leak of one small object per request at 100 requests/s is tens of
# MB in 10 minutes; allocator noise (arenas, caches, a GC generation filling up) is well under.
DEFAULT_MAX_SLOPE_MB_PER_10MIN = 3.0
# Fitted growth below this is not told apart from noise (allocator arenas, a page of a cache):
# on a 2-minute check 0.6 MB extrapolates to a steep slope that means nothing.
NOISE_MB = 2.0


@dataclass(frozen=True)
class Sample:
    """One reading of a process's resident set: seconds since the soak started, bytes."""

    t: float
    rss: int


@dataclass(frozen=True)
class Trend:
    """What the samples of one process after warm-up say."""

    warm_rss_mb: float  # the first sample at or after the warm-up
    end_rss_mb: float  # the last sample
    peak_rss_mb: float
    slope_mb_per_10min: float  # least-squares fit over the samples after warm-up
    samples: int
    span_s: float  # from the first sample after warm-up to the last

    @property
    def fitted_growth_mb(self) -> float:
        return self.slope_mb_per_10min * self.span_s / 600.0

    def flat(self, max_slope: float = DEFAULT_MAX_SLOPE_MB_PER_10MIN) -> bool:
        return self.slope_mb_per_10min <= max_slope or self.fitted_growth_mb < NOISE_MB


def slope_per_second(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of ``y`` over ``x``; 0 for fewer than two distinct ``x``."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


def trend(samples: Sequence[Sample], warmup_s: float) -> Trend | None:
    """The trend of the samples taken from ``warmup_s`` on; None if there are none."""
    after = [s for s in samples if s.t >= warmup_s]
    if not after:
        return None
    slope = slope_per_second([(s.t, s.rss / MB) for s in after])
    return Trend(
        warm_rss_mb=after[0].rss / MB,
        end_rss_mb=after[-1].rss / MB,
        peak_rss_mb=max(s.rss for s in after) / MB,
        slope_mb_per_10min=slope * 600.0,
        samples=len(after),
        span_s=after[-1].t - after[0].t,
    )


def warmup_seconds(total_s: float) -> float:
    """Warm-up: a quarter of the run, at most 5 minutes (imports, caches, the connection pools,
    the first GC generations filling up, the store's first pages)."""
    return min(300.0, total_s / 4)


def fds_returned(baseline: int, after: int, slack: int = 0) -> bool:
    """Did the proxy's open file descriptors come back to (at most ``slack`` over) the baseline?"""
    return after <= baseline + slack
