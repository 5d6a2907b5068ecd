"""The report's three plots, as PNG bytes.

Each figure is a :class:`matplotlib.figure.Figure` on its own Agg canvas: pyplot is never
imported, so no global figure registry grows, no backend is switched for the process, and the
plots can be drawn from any thread or a process without a display.

Every plot carries the same marks: a shaded, labelled band per fault (injection to revert), a
dashed line at each phase boundary with the phase's name at the top, and a line where each
recovery ended ("recovered +4.2s") or, at the end of the run, "never recovered".
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from harness.report.series import STATUS_CLASSES, Series

__all__ = ["PLOTS", "latency_png", "ratios_png", "render_all", "requests_png"]

WIDTH_IN: Final = 11.0
HEIGHT_IN: Final = 3.8
DPI: Final = 100
# Latency spanning more than this factor (say 5 ms to 2 s) is unreadable on a linear axis.
LOG_SCALE_RANGE: Final = 30.0

CLASS_COLORS: Final = {
    "2xx": "#4caf50",
    "3xx": "#64b5f6",
    "4xx": "#ffb300",
    "503": "#fb8c00",
    "5xx": "#e53935",
    "error": "#6d4c41",
}
CLASS_LABELS: Final = {
    "2xx": "2xx",
    "3xx": "3xx",
    "4xx": "4xx",
    "503": "503",
    "5xx": "other 5xx",
    "error": "no response",
}
FAULT_COLORS: Final = ("#d32f2f", "#7b1fa2", "#1976d2", "#00897b", "#f57c00", "#5d4037")
PHASE_COLOR: Final = "#616161"
RECOVERED_COLOR: Final = "#2e7d32"
NEVER_COLOR: Final = "#b71c1c"


def _safe(text: str) -> str:
    """Text as matplotlib should print it: a ``$`` would start mathtext (and may not parse)."""
    return text.replace("$", r"\$")


def _new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas, for this figure only
    ax = fig.add_subplot()
    ax.grid(True, axis="y", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" stamp: the same run gives the same bytes whatever matplotlib drew it.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _x_limits(series: Series) -> tuple[float, float]:
    left = min(series.x[0], 0.0) if series.x else 0.0
    right = max(series.end, series.x[-1] + series.step if series.x else 0.0)
    return left, max(right, left + 1.0)  # equal limits would warn (and show nothing)


def _edges(series: Series) -> list[float]:
    """The bin edges, for ``step="post"`` drawing: each bin is flat over its whole width."""
    return [*series.x, series.x[-1] + series.step] if series.x else []


def _post(values: Sequence[float]) -> list[float]:
    return [*values, values[-1]] if values else []


def _marks(ax: Axes, series: Series) -> list[Patch]:
    """Faults, phases and recoveries over ``ax``; the legend handles of the faults."""
    top = blended_transform_factory(ax.transData, ax.transAxes)
    handles = []
    lanes: list[float] = []  # the end of the last band in each label lane
    for i, fault in enumerate(series.faults):
        color = FAULT_COLORS[i % len(FAULT_COLORS)]
        # Behind the data: drawn over it, a tinted band turns a 2xx area olive, next to the
        # orange of the 503s it is to be told apart from.
        ax.axvspan(fault.start, fault.end, color=color, alpha=0.13, linewidth=0, zorder=0)
        # Overlapping faults get their labels on separate lines, not on top of each other.
        lane = next((n for n, busy in enumerate(lanes) if busy <= fault.start), len(lanes))
        if lane == len(lanes):
            lanes.append(fault.end)
        else:
            lanes[lane] = fault.end
        name = fault.name if fault.reverted else f"{fault.name} (not reverted)"
        ax.text(
            fault.start,
            0.97 - 0.09 * lane,
            " " + _safe(name),
            transform=top,
            va="top",
            ha="left",
            fontsize=8,
            color=color,
            fontweight="bold",
            clip_on=True,
        )
        handles.append(Patch(facecolor=color, alpha=0.3, label=_safe(f"fault: {fault.name}")))

    boundaries = [(p.start, p.name) for p in series.phases]
    if series.phases and series.phases[-1].ended:
        boundaries.append((series.phases[-1].end, "end"))
    for x, name in boundaries:
        ax.axvline(x, color=PHASE_COLOR, linestyle="--", linewidth=0.8)
        ax.text(x, 1.01, _safe(name), transform=top, va="bottom", ha="left", fontsize=8)

    left, right = _x_limits(series)
    for n, marker in enumerate(series.recoveries):
        color = RECOVERED_COLOR if marker.recovered else NEVER_COLOR
        ax.axvline(marker.x, color=color, linewidth=1.3)
        # Horizontal and boxed, below the fault labels: a rotated label over the data is the
        # first thing nobody reads. Near the right edge it goes to the left of its line.
        near_right = marker.x > left + 0.8 * (right - left)
        ax.text(
            marker.x,
            0.80 - 0.09 * (n % 3),
            f" {_safe(marker.label)} ",
            transform=top,
            va="top",
            ha="right" if near_right else "left",
            fontsize=8,
            color=color,
            bbox={
                "boxstyle": "square,pad=0.15",
                "facecolor": "white",
                "alpha": 0.85,
                "linewidth": 0,
            },
        )
    return handles


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#757575")


def _finish(fig: Figure, ax: Axes, series: Series, ylabel: str, handles: list[object]) -> bytes:
    ax.set_xlim(*_x_limits(series))
    ax.set_xlabel("seconds since the start of the run")
    ax.set_ylabel(ylabel)
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(len(handles), 8),
            fontsize=8,
            frameon=False,
        )
    return _to_png(fig)


def requests_png(series: Series) -> bytes:
    """Attempts per second, stacked by status class."""
    fig, ax = _new_figure()
    handles: list[object] = []
    edges = _edges(series)
    if series.empty:
        _no_data(ax, "no requests recorded")
        ax.set_ylim(0, 1)
    else:
        base = [0.0] * len(edges)
        for cls in STATUS_CLASSES:
            values = series.rps_by_class[cls]
            if not any(values):
                continue  # keep the legend to what happened
            top = [b + v for b, v in zip(base, _post(values), strict=True)]
            ax.fill_between(edges, base, top, step="post", color=CLASS_COLORS[cls], linewidth=0)
            handles.append(Patch(color=CLASS_COLORS[cls], label=CLASS_LABELS[cls]))
            base = top
        ax.set_ylim(0, max(base) * 1.15)
    handles += _marks(ax, series)
    ax.set_title("Requests per second by status", loc="left", fontsize=10, pad=14)
    return _finish(fig, ax, series, "attempts / s", handles)


def latency_png(series: Series) -> bytes:
    """p50, p95 and p99 latency per bin; a log axis when they span a wide range."""
    fig, ax = _new_figure()
    handles: list[object] = []
    edges = _edges(series)
    lines = (
        ("p50", series.p50_ms, "#1e88e5"),
        ("p95", series.p95_ms, "#fb8c00"),
        ("p99", series.p99_ms, "#d81b60"),
    )
    finite = [v for _, values, _ in lines for v in values if math.isfinite(v) and v > 0]
    if not finite:
        _no_data(ax, "no responses recorded")
        ax.set_ylim(0, 1)
    else:
        for label, values, color in lines:
            ax.plot(edges, _post(values), drawstyle="steps-post", color=color, linewidth=1.3)
            handles.append(Line2D([], [], color=color, linewidth=1.5, label=label))
        low, high = min(finite), max(finite)
        if high / low > LOG_SCALE_RANGE:
            ax.set_yscale("log")
            ax.set_ylim(low / 1.5, high * 2.5)
            # 10, 20, 50, 100, ... written out: "10^2" makes people do arithmetic.
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(0, high * 1.2)
    handles += _marks(ax, series)
    ax.set_title("Latency (every attempt)", loc="left", fontsize=10, pad=14)
    return _finish(fig, ax, series, "ms", handles)


def ratios_png(series: Series) -> bytes:
    """The share of 503s (left axis) and retry amplification (right axis) per bin."""
    fig, ax = _new_figure()
    handles: list[object] = []
    edges = _edges(series)
    ratio = [v * 100.0 for v in series.ratio_503]
    if not any(math.isfinite(v) for v in ratio):
        _no_data(ax, "no responses recorded")
        ax.set_ylim(0, 1)
    else:
        ax.plot(edges, _post(ratio), drawstyle="steps-post", color="#fb8c00", linewidth=1.4)
        handles.append(Line2D([], [], color="#fb8c00", linewidth=1.5, label="503 share (%)"))
        peak = max((v for v in ratio if math.isfinite(v)), default=0.0)
        ax.set_ylim(0, min(100.0, max(5.0, peak * 1.15)) if peak < 100 else 105.0)
        amplification = series.retry_amplification
        finite = [v for v in amplification if math.isfinite(v)]
        if finite:
            right = ax.twinx()
            right.spines["top"].set_visible(False)
            right.plot(
                edges,
                _post(amplification),
                drawstyle="steps-post",
                color="#5e35b1",
                linewidth=1.2,
                linestyle="-.",
            )
            right.set_ylabel("attempts / request")
            right.set_ylim(0, max(2.0, max(finite) * 1.15))
            handles.append(
                Line2D([], [], color="#5e35b1", linestyle="-.", label="retry amplification")
            )
    handles += _marks(ax, series)
    ax.set_title("503 share and retry amplification", loc="left", fontsize=10, pad=14)
    return _finish(fig, ax, series, "503 share (%)", handles)


# The plots in report order: (file stem, title, renderer).
PLOTS: Final = (
    ("requests", "Requests per second by status", requests_png),
    ("latency", "Latency p50 / p95 / p99", latency_png),
    ("ratios", "503 share and retry amplification", ratios_png),
)


def render_all(series: Series) -> dict[str, bytes]:
    """Every plot, by file stem, in report order."""
    return {stem: render(series) for stem, _, render in PLOTS}
