"""The marks over the plots: labels that never overlap, SLO limits where they belong, retry
amplification on an axis of its own, and status colours told apart."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.text import Text

from harness.report.plots import (
    CLASS_COLORS,
    assign_lanes,
    latency_figure,
    legend_columns,
    ratios_figure,
    requests_figure,
)
from harness.report.series import FaultSpan, PhaseSpan, RecoveryMarker, Series, Threshold

pytestmark = pytest.mark.unit

LABEL_GIDS = ("fault-label", "recovery-label", "slo-label")


def test_labels_that_would_touch_go_to_separate_lanes() -> None:
    assert assign_lanes([(0, 10), (5, 15), (12, 20), (16, 30)]) == [0, 1, 0, 1]


def test_a_label_takes_the_first_lane_with_room_even_between_two_others() -> None:
    # (30, 35) fits in lane 0 between (0, 20) and (40, 60): no third lane for it.
    assert assign_lanes([(0, 20), (40, 60), (10, 50), (30, 35)]) == [0, 0, 1, 0]


def test_the_gap_keeps_labels_that_merely_touch_apart() -> None:
    assert assign_lanes([(0, 10), (10, 20)]) == [0, 0]
    assert assign_lanes([(0, 10), (12, 20)], gap=3) == [0, 1]


def crowded_series(n: int = 41) -> Series:
    """The case that used to collide: overlapping faults with long names, recoveries at the same
    moment and near the right edge, and SLO limits under the labels."""
    wave = tuple(0.3 + 0.25 * math.sin(i / 3) for i in range(n))
    return Series(
        origin=0.0,
        step=1.0,
        end=float(n - 1),
        x=tuple(float(i) for i in range(n)),
        rps_by_class={
            "2xx": (100.0,) * n,
            "3xx": (0.0,) * n,
            "4xx": (5.0,) * n,
            "503": tuple(40 * w for w in wave),
            "5xx": (1.0,) * n,
            "error": (0.0,) * n,
        },
        rps=(146.0,) * n,
        p50_ms=tuple(5 + 10 * w for w in wave),
        p95_ms=tuple(20 + 100 * w for w in wave),
        p99_ms=tuple(40 + 400 * w for w in wave),
        ratio_503=wave,
        retry_amplification=tuple(1 + w for w in wave),
        phases=(
            PhaseSpan("warmup", 0.0, 10.0, 10, ended=True),
            PhaseSpan("spike", 10.0, 30.0, 60, ended=True),
            PhaseSpan("cooldown", 30.0, 40.0, 10, ended=True),
        ),
        faults=(
            FaultSpan("slow-database-link-with-a-long-name", 12.0, 26.0, reverted=True),
            FaultSpan("kill-app-1", 14.0, 22.6, reverted=True),
            FaultSpan("partition-cache", 15.0, 18.0, reverted=True),
            FaultSpan("late", 36.0, 40.0, reverted=False),
        ),
        recoveries=(
            RecoveryMarker(
                "slow-database-link-with-a-long-name", 26.6, True, "slow recovered +0.6s"
            ),
            RecoveryMarker("kill-app-1", 26.6, True, "kill-app-1 recovered +4.0s"),
            RecoveryMarker("partition-cache", 18.4, True, "partition-cache recovered +0.4s"),
            RecoveryMarker("late", 40.0, False, "late never recovered"),
        ),
        thresholds=(
            Threshold("ratios", "spike-503s", "SLO spike-503s: < 30%", 30.0, 10.0, 30.0),
            Threshold("ratios", "run-503s", "SLO run-503s: < 31%", 31.0, 0.0, 40.0),
            Threshold("latency", "warmup-p99", "SLO warmup-p99: < 250ms", 250.0, 0.0, 10.0),
            Threshold("amplification", "amp", "SLO amp: < 1.5", 1.5, 0.0, 40.0),
        ),
    )


def labels(fig: Figure) -> list[Text]:
    return [t for ax in fig.axes for t in ax.texts if t.get_gid() in LABEL_GIDS]


@pytest.fixture(scope="module")
def crowded() -> Callable[[Callable[[Series], Figure]], Figure]:
    """The crowded series drawn by a figure function, each drawn once for the module's tests
    (they read the drawn figure and change nothing on it)."""
    drawn: dict[Callable[[Series], Figure], Figure] = {}

    def draw(figure: Callable[[Series], Figure]) -> Figure:
        if figure not in drawn:
            fig = figure(crowded_series())
            fig.canvas.draw()  # the boxes as they are on the PNG
            drawn[figure] = fig
        return drawn[figure]

    return draw


@pytest.mark.parametrize("draw", [requests_figure, latency_figure, ratios_figure])
def test_no_label_overlaps_another_on_a_crowded_plot(
    draw: Callable[[Series], Figure], crowded: Callable[[Callable[[Series], Figure]], Figure]
) -> None:
    fig = crowded(draw)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    found = labels(fig)
    assert len([t for t in found if t.get_gid() == "fault-label"]) == 4
    assert len([t for t in found if t.get_gid() == "recovery-label"]) == 4
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in found]
    for i, (text_a, a) in enumerate(boxes):
        for text_b, b in boxes[i + 1 :]:
            assert not a.overlaps(b), f"{text_a!r} overlaps {text_b!r}"


def test_every_recovery_label_sits_below_every_fault_label(
    crowded: Callable[[Callable[[Series], Figure]], Figure],
) -> None:
    fig = crowded(requests_figure)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    found = labels(fig)
    lowest_fault = min(
        t.get_window_extent(renderer).y0 for t in found if t.get_gid() == "fault-label"
    )
    highest_recovery = max(
        t.get_window_extent(renderer).y1 for t in found if t.get_gid() == "recovery-label"
    )
    assert highest_recovery <= lowest_fault


def slo_labels(fig: Figure) -> dict[str, str]:
    """SLO label text → the y label of the axes it is drawn on."""
    return {
        t.get_text(): ax.get_ylabel()
        for ax in fig.axes
        for t in ax.texts
        if t.get_gid() == "slo-label"
    }


def test_each_slo_limit_is_drawn_on_the_plot_that_judges_it() -> None:
    series = crowded_series()
    assert slo_labels(latency_figure(series)) == {"SLO warmup-p99: < 250ms": "ms"}
    assert slo_labels(ratios_figure(series)) == {
        "SLO spike-503s: < 30%": "503 share",
        "SLO run-503s: < 31%": "503 share",
        "SLO amp: < 1.5": "retry\namplification",
    }
    assert slo_labels(requests_figure(series)) == {}


def test_retry_amplification_has_its_own_axes_marked_as_a_multiplier(
    crowded: Callable[[Callable[[Series], Figure]], Figure],
) -> None:
    fig = crowded(ratios_figure)
    share, amp = fig.axes
    assert share.get_ylabel() == "503 share"
    assert amp.get_ylabel() == "retry\namplification"
    assert share.get_position().y0 > amp.get_position().y1  # one above the other, not twinned
    share_ticks = [t.get_text() for t in share.get_yticklabels()]
    amp_ticks = [t.get_text() for t in amp.get_yticklabels()]
    assert all(t.endswith("%") for t in share_ticks if t)
    assert amp_ticks[0] == "1\u00d7"
    assert all(t.endswith("\u00d7") for t in amp_ticks if t)


def test_4xx_and_503_colours_are_far_apart() -> None:
    def distance(a: str, b: str) -> float:
        return math.dist(to_rgb(CLASS_COLORS[a]), to_rgb(CLASS_COLORS[b]))

    # Okabe-Ito reddish purple against orange; the old amber against orange was about 0.1.
    assert distance("4xx", "503") > 0.5
    assert len(set(CLASS_COLORS.values())) == len(CLASS_COLORS)


def test_a_legend_of_short_labels_is_one_row_and_long_ones_wrap() -> None:
    short = ["2xx", "4xx", "503", "fault: a", "fault: b", "fault: c"]
    assert legend_columns(short) == 6
    long = [f"fault: {'x' * 60}-{i}" for i in range(4)]
    assert legend_columns(long) < 4
