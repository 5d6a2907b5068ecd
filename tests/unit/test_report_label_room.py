"""Fault and recovery labels never sit on the data they annotate: the y axis makes room above
the data for the label lanes, and its ticks stay within the data's range (a share never reads
above 100%). Checked on the drawn figures, in pixels, with data that fills its axis to the top
right under the labels."""

from __future__ import annotations

import math

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.report.plots import latency_figure, ratios_figure, requests_figure
from harness.report.series import FaultSpan, PhaseSpan, RecoveryMarker, Series

pytestmark = pytest.mark.unit

N = 41
LABELS = ("fault-label", "recovery-label")


def peaking(values: float, at_faults: float) -> tuple[float, ...]:
    """``values`` everywhere, ``at_faults`` while a fault is in force (10..30 s)."""
    return tuple(at_faults if 10 <= i < 30 else values for i in range(N))


def series(*, wide_latency: bool) -> Series:
    """Every quantity at its highest under the labels: 100% 503s, the p99 peak, the most
    requests, all during the faults whose names and recoveries are drawn at the top."""
    p99 = peaking(40.0, 2000.0 if wide_latency else 60.0)
    return Series(
        origin=0.0,
        step=1.0,
        end=float(N - 1),
        x=tuple(float(i) for i in range(N)),
        rps_by_class={
            "2xx": peaking(100.0, 0.0),
            "3xx": (0.0,) * N,
            "4xx": (5.0,) * N,
            "503": peaking(0.0, 300.0),
            "5xx": (0.0,) * N,
            "error": (0.0,) * N,
        },
        rps=peaking(105.0, 305.0),
        p50_ms=peaking(5.0, 30.0),
        p95_ms=peaking(20.0, 50.0),
        p99_ms=p99,
        ratio_503=peaking(0.0, 1.0),
        retry_amplification=peaking(1.0, 3.0),
        phases=(PhaseSpan("steady", 0.0, 40.0, 10, ended=True),),
        faults=(
            FaultSpan("slow-database-link", 10.0, 30.0, reverted=True),
            FaultSpan("kill-app-1", 12.0, 20.0, reverted=True),
        ),
        recoveries=(
            RecoveryMarker("kill-app-1", 20.5, True, "kill-app-1 recovered +0.5s"),
            RecoveryMarker("slow-database-link", 30.4, True, "slow-database-link recovered +0.4s"),
        ),
        thresholds=(),
    )


def data_top_px(ax: Axes) -> float:
    """The highest pixel any data line or area reaches."""
    tops = []
    for line in ax.lines:
        ys = [y for y in line.get_ydata() if math.isfinite(y)]  # type: ignore[union-attr]
        if ys and line.get_linestyle() in ("-", "solid"):
            tops.append(ax.transData.transform((0, max(ys)))[1])
    for area in ax.collections:
        for path in area.get_paths():
            if len(path.vertices):
                tops.append(ax.transData.transform((0, path.vertices[:, 1].max()))[1])
    assert tops, "no data drawn: nothing was tested"
    return max(tops)


def labelled_axes(fig: Figure) -> Axes:
    (ax,) = [a for a in fig.axes if any(t.get_gid() in LABELS for t in a.texts)]
    return ax


@pytest.mark.parametrize(
    ("draw", "wide_latency"),
    [
        (requests_figure, False),
        (latency_figure, False),
        (latency_figure, True),  # a log axis
        (ratios_figure, False),
    ],
)
def test_no_fault_or_recovery_label_sits_on_the_data(draw: object, wide_latency: bool) -> None:
    fig = draw(series(wide_latency=wide_latency))  # type: ignore[operator]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = labelled_axes(fig)
    assert (ax.get_yscale() == "log") == (draw is latency_figure and wide_latency)
    top = data_top_px(ax)
    for text in ax.texts:
        if text.get_gid() in LABELS:
            bottom = text.get_window_extent(renderer).y0
            assert bottom >= top, f"{text.get_text()!r} sits on the data ({bottom} < {top})"


def test_the_share_axis_still_ends_its_ticks_at_100_percent() -> None:
    fig = ratios_figure(series(wide_latency=False))
    fig.canvas.draw()
    ax = labelled_axes(fig)
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert max(ticks) == 100.0
    assert ax.get_ylim()[1] > 105.0  # the room the labels take above the data
