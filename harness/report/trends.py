"""The report's trends: the key figures of the latest runs of the same scenario, this run last.

Four small panels, one per figure a gate watches: throughput (attempts per second over the
whole run), p99 latency, the 503 share, and the slowest recovery. The x axis is the runs in the
order they started, oldest left; this run is the last point, drawn larger and labelled. A run
that did not pass is a hollow marker, so a regression that also failed its SLOs stands out. A
run without a figure (no fault to recover from, an older summary) leaves a gap.

The previous runs come from the history of the reports directory (``RunReport.history``, read
by :func:`harness.history.previous_runs`); this run's figures from its own summary, so the
trends of a report are those of the run it describes even before the run is in the history.
Nothing is drawn for a first run: one point is no trend.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.history import HistoryRow
from harness.history.row import row_from_summary
from harness.report.data import RunReport
from harness.report.plots import BLUE, DPI, FONT_SIZE, ORANGE, WIDTH_IN
from harness.report.summary import summary

__all__ = [
    "FIGURES",
    "TREND_RUNS",
    "trend_points",
    "trends_context",
    "trends_figure",
    "trends_png",
]

TREND_RUNS: Final = 20  # this run and the 19 before it
HEIGHT_IN: Final = 4.2
# (title, unit shown, value of a row in that unit)
FIGURES: Final = (
    ("throughput (attempts/s)", "/s", "total:rps"),
    ("p99 latency (ms)", "ms", "total:p99_ms"),
    ("503 share (%)", "%", "total:ratio_503"),
    ("slowest recovery (s)", "s", "recovery"),
)


def _value(row: HistoryRow, key: str) -> float | None:
    if key == "recovery":
        times = [v for k, v in row.figures.items() if k.startswith("recovery:")]
        if not times or any(v is None for v in times):
            return None  # no fault, or one that never recovered: no point to draw
        return max(v for v in times if v is not None)
    value = row.figure(key)
    if value is not None and key.endswith("ratio_503"):
        return value * 100
    return value


def trend_points(report: RunReport, n: int = TREND_RUNS) -> list[HistoryRow]:
    """The rows the trends show, oldest first, this run last: at most ``n`` in all."""
    current = row_from_summary(Path(report.run_name), summary(report), read_store=False)
    earlier = [row for row in report.history if row.run != report.run_name][: max(0, n - 1)]
    return [*reversed(earlier), current]


def _panel(ax: Axes, rows: Sequence[HistoryRow], title: str, key: str) -> None:
    xs = list(range(len(rows)))
    ys = [_value(row, key) for row in rows]
    ax.set_title(title, fontsize=FONT_SIZE + 1, loc="left")
    ax.grid(True, axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=FONT_SIZE)
    line_y = [math.nan if y is None else y for y in ys]
    ax.plot(xs, line_y, color=BLUE, linewidth=1.2, zorder=2)
    for x, y, row in zip(xs, ys, rows, strict=True):
        if y is None:
            continue
        last = x == len(rows) - 1
        ax.plot(
            [x],
            [y],
            marker="o",
            markersize=9 if last else 5,
            color=ORANGE if last else BLUE,
            markerfacecolor=(ORANGE if last else BLUE) if row.passed else "white",
            markeredgewidth=1.4,
            zorder=3,
            gid="trend-this-run" if last else "trend-run",
        )
    this = ys[-1]
    if this is not None:
        ax.annotate(
            "this run",
            xy=(xs[-1], this),
            xytext=(-6, 8),
            textcoords="offset points",
            ha="right",
            fontsize=FONT_SIZE,
            color=ORANGE,
            # A white box: the label stays legible where the line runs through it.
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.85, "lw": 0},
            zorder=4,
        )
    known = [y for y in ys if y is not None]
    ax.set_ylim(bottom=0, top=max(known) * 1.25 if known and max(known) > 0 else 1)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    if not known:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", fontsize=FONT_SIZE)


def _tick_labels(rows: Sequence[HistoryRow]) -> list[str]:
    return [time.strftime("%m-%d\n%H:%M", time.gmtime(row.started_at)) for row in rows]


def trends_png(report: RunReport, n: int = TREND_RUNS) -> bytes | None:
    """The trends figure as PNG bytes; None for a run with no earlier run to compare with."""
    fig = trends_figure(report, n)
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def trends_figure(report: RunReport, n: int = TREND_RUNS) -> Figure | None:
    """The trends figure; None for a run with no earlier run to compare with."""
    rows = trend_points(report, n)
    if len(rows) < 2:
        return None
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(FIGURES), sharex=True)
    for ax, (title, _, key) in zip(axes, FIGURES, strict=True):
        _panel(ax, rows, title, key)
        step = max(1, math.ceil(len(rows) / 6))  # at most six labels fit under a panel
        ticks = list(range(len(rows) - 1, -1, -step))[::-1]
        ax.set_xticks(ticks, [_tick_labels(rows)[i] for i in ticks], fontsize=FONT_SIZE - 1)
    handles = [
        Line2D([], [], marker="o", color=BLUE, linestyle="", label="passed"),
        Line2D(
            [],
            [],
            marker="o",
            color=BLUE,
            markerfacecolor="white",
            linestyle="",
            label="did not pass",
        ),
        Line2D([], [], marker="o", color=ORANGE, markersize=9, linestyle="", label="this run"),
    ]
    fig.legend(handles=handles, loc="lower center", ncols=3, fontsize=FONT_SIZE, frameon=False)
    fig.suptitle(
        f"last {len(rows)} runs of {report.scenario}, oldest left (UTC start times)",
        fontsize=FONT_SIZE + 2,
        x=0.01,
        ha="left",
    )
    fig.subplots_adjust(left=0.05, right=0.99, top=0.84, bottom=0.22, wspace=0.28)
    return fig


def trends_context(report: RunReport, n: int = TREND_RUNS) -> dict[str, Any] | None:
    """The report template's trends section (the PNG inline), or None: nothing to show."""
    png = trends_png(report, n)
    if png is None:
        return None
    return {
        "data": base64.b64encode(png).decode("ascii"),
        "alt": f"trends of the last runs of {report.scenario}",
        "runs": str(len(trend_points(report, n))),
    }
