"""The worst window of an ``over any N`` SLO: its line says so, the verdict's window lands on
the plot's x axis, and the plot that shows the metric shades it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pytest
from matplotlib.patches import Polygon, Rectangle

from harness.report.plots import latency_figure, ratios_figure
from harness.report.series import PhaseSpan, Series
from harness.report.thresholds import slo_thresholds, with_worst
from harness.verdict.worst import WorstWindow

pytestmark = pytest.mark.unit

ORIGIN = 1_700_000_000.0
PHASES = (
    PhaseSpan("warmup", 0.0, 10.0, 10, ended=True),
    PhaseSpan("spike", 10.0, 30.0, 60, ended=True),
)


@dataclass(frozen=True)
class FakeVerdict:
    name: str
    worst: WorstWindow | None


def series(n: int = 31) -> Series:
    wave = tuple(0.02 + 0.01 * math.sin(i / 3) for i in range(n))
    return Series(
        origin=ORIGIN,
        step=1.0,
        end=float(n - 1),
        x=tuple(float(i) for i in range(n)),
        rps_by_class={k: (10.0,) * n for k in ("2xx", "3xx", "4xx", "503", "5xx", "error")},
        rps=(60.0,) * n,
        p50_ms=(5.0,) * n,
        p95_ms=(20.0,) * n,
        p99_ms=tuple(100 + 1000 * w for w in wave),
        ratio_503=wave,
        retry_amplification=(1.0,) * n,
        phases=PHASES,
    )


def lines() -> tuple:  # type: ignore[type-arg]
    return slo_thresholds(
        [
            ("burst-503", "ratio(status == 503) < 5% over any 10s"),
            ("spike-p99", "p99(latency) < 300ms over any 5s during phase spike"),
            ("fixed", "ratio(status == 503) < 30%"),
        ],
        run=(0.0, 30.0),
        phases=PHASES,
    )


def test_the_line_of_a_sliding_slo_says_over_any() -> None:
    burst, spike, fixed = lines()
    assert burst.label == "SLO burst-503: < 5% over any 10s"
    assert spike.label == "SLO spike-p99: < 300ms over any 5s"
    assert fixed.label == "SLO fixed: < 30%"


def test_the_verdicts_worst_window_goes_on_its_line_in_plot_seconds() -> None:
    verdicts = [
        FakeVerdict("burst-503", WorstWindow(ORIGIN + 12.3, ORIGIN + 22.3, 0.5, 180)),
        FakeVerdict("fixed", None),
    ]
    burst, spike, fixed = with_worst(lines(), verdicts, ORIGIN)
    assert burst.worst == pytest.approx((12.3, 22.3))
    assert spike.worst is None
    assert fixed.worst is None


def _hatched(fig: object) -> list[object]:
    return [
        p
        for ax in fig.axes  # type: ignore[attr-defined]
        for p in ax.patches
        if isinstance(p, Polygon | Rectangle) and p.get_gid() == "slo-worst"
    ]


def test_the_plot_showing_the_metric_shades_the_worst_window() -> None:
    verdicts = [FakeVerdict("spike-p99", WorstWindow(ORIGIN + 17.0, ORIGIN + 22.0, 0.4, 151))]
    drawn = replace(series(), thresholds=with_worst(lines(), verdicts, ORIGIN))
    (band,) = _hatched(latency_figure(drawn))
    if isinstance(band, Rectangle):  # matplotlib >= 3.9 draws a span as a rectangle
        xs = [band.get_x(), band.get_x() + band.get_width()]
    else:
        assert isinstance(band, Polygon)
        xs = [x for x, _ in band.get_xy()]
    assert (min(xs), max(xs)) == pytest.approx((17.0, 22.0))
    assert not _hatched(ratios_figure(drawn))  # the 503 share SLO had no worst window here
