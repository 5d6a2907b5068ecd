"""The soak's arithmetic (tests/bench/soak_stats.py) on series whose answer is known."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit


def _load() -> ModuleType:
    path = Path(__file__).parents[1] / "bench" / "soak_stats.py"
    spec = importlib.util.spec_from_file_location("soak_stats", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("soak_stats", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


stats = _load()
MB = stats.MB


def test_the_slope_of_a_straight_line_is_its_slope() -> None:
    points = [(t, 5.0 + 0.25 * t) for t in range(0, 100, 10)]
    assert stats.slope_per_second(points) == pytest.approx(0.25)


def test_the_slope_of_too_few_points_is_zero() -> None:
    assert stats.slope_per_second([]) == 0.0
    assert stats.slope_per_second([(1.0, 3.0)]) == 0.0
    assert stats.slope_per_second([(1.0, 3.0), (1.0, 9.0)]) == 0.0


def test_a_leak_of_one_megabyte_a_minute_is_ten_per_ten_minutes_and_not_flat() -> None:
    # 80 MB at warm-up (60 s), then 1 MB more every minute for 29 minutes.
    samples = [stats.Sample(t, int((80 + max(0, t - 60) / 60) * MB)) for t in range(0, 1800, 10)]
    trend = stats.trend(samples, warmup_s=60)
    assert trend.warm_rss_mb == pytest.approx(80.0)
    assert trend.slope_mb_per_10min == pytest.approx(10.0)
    assert trend.end_rss_mb == pytest.approx(80 + (1790 - 60) / 60)
    assert not trend.flat(max_slope=3.0)


def test_growth_during_the_warm_up_does_not_count() -> None:
    # Steep until 300 s (imports, caches), flat after: the verdict is flat.
    samples = [stats.Sample(t, int(min(t, 300) / 3 * MB) + 50 * MB) for t in range(0, 1800, 10)]
    trend = stats.trend(samples, warmup_s=stats.warmup_seconds(1800))
    assert stats.warmup_seconds(1800) == 300
    assert trend.slope_mb_per_10min == pytest.approx(0.0)
    assert trend.peak_rss_mb == pytest.approx(150.0)
    assert trend.flat()


def test_noise_that_is_tiny_in_megabytes_is_flat_even_when_steep_per_ten_minutes() -> None:
    # A 2-minute check: 0.6 MB over 90 s is a slope of 4 MB/10 min, yet under the noise floor.
    samples = [stats.Sample(30 + t, int((60 + 0.6 * t / 90) * MB)) for t in range(0, 91, 5)]
    trend = stats.trend(samples, warmup_s=30)
    assert trend.slope_mb_per_10min == pytest.approx(4.0, rel=0.01)
    assert trend.fitted_growth_mb < stats.NOISE_MB
    assert trend.flat(max_slope=3.0)


def test_no_sample_after_the_warm_up_is_no_trend() -> None:
    assert stats.trend([stats.Sample(1, MB)], warmup_s=10) is None


def test_file_descriptors_must_come_back_to_the_baseline() -> None:
    assert stats.fds_returned(baseline=15, after=15)
    assert stats.fds_returned(baseline=15, after=12)
    assert not stats.fds_returned(baseline=15, after=16)
