"""The report's three plots, as PNG bytes.

Each figure is a :class:`matplotlib.figure.Figure` on its own Agg canvas: pyplot is never
imported, so no global figure registry grows, no backend is switched for the process, and the
plots can be drawn from any thread or a process without a display.

Every plot carries the same marks: a shaded, labelled band per fault (injection to revert), a
dashed line at each phase boundary with the phase's name at the top, and a line where each
recovery ended ("recovered +4.2s") or, at the end of the run, "never recovered". The SLO limits a
plot can judge (:mod:`harness.report.thresholds`) are black dashed lines over the window each
SLO judges, labelled with the SLO's name.

Labels never overlap: fault labels take the top lanes (a new lane only where two would touch),
recovery labels the lanes below them, and an SLO label the first free place along its line. The
axes have fixed margins (no constrained layout), so a label's place in pixels is known before
the figure is drawn, and the lanes are computed rather than hoped for. Nor do labels cover the
data: the y axis grows above the data's limits by the strip the label lanes fill.

Colours are Okabe and Ito's palette, which reads the same to the colour-blind: 4xx (reddish
purple) and 503 (orange) are far apart in hue and lightness.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Final

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from harness.report.series import STATUS_CLASSES, PlotName, Series

__all__ = [
    "DPI",
    "HEIGHT_IN",
    "PLOTS",
    "RATIOS_HEIGHT_IN",
    "WIDTH_IN",
    "assign_lanes",
    "latency_figure",
    "latency_png",
    "legend_columns",
    "ratios_figure",
    "ratios_png",
    "render_all",
    "requests_figure",
    "requests_png",
]

WIDTH_IN: Final = 11.0
HEIGHT_IN: Final = 3.8
RATIOS_HEIGHT_IN: Final = 5.6  # two panels: the 503 share, and retry amplification below it
DPI: Final = 100
# Latency spanning more than this factor (say 5 ms to 2 s) is unreadable on a linear axis.
LOG_SCALE_RANGE: Final = 30.0
FONT_SIZE: Final = 8
LANE_PX: Final = FONT_SIZE * 1.7 * DPI / 72  # one line of label text, with room to breathe
LABEL_GAP_PX: Final = 6.0  # the least room between two labels in one lane

# Okabe-Ito: black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple.
BLACK: Final = "#000000"
ORANGE: Final = "#E69F00"
SKY_BLUE: Final = "#56B4E9"
GREEN: Final = "#009E73"
BLUE: Final = "#0072B2"
VERMILLION: Final = "#D55E00"
PURPLE: Final = "#CC79A7"

CLASS_COLORS: Final = {
    "2xx": GREEN,
    "3xx": SKY_BLUE,
    "4xx": PURPLE,
    "503": ORANGE,
    "5xx": VERMILLION,
    "error": BLACK,
}
CLASS_LABELS: Final = {
    "2xx": "2xx",
    "3xx": "3xx",
    "4xx": "4xx",
    "503": "503",
    "5xx": "other 5xx",
    "error": "no response",
}
# Not green: a band (and its label) must not look like the 2xx it lies behind.
FAULT_COLORS: Final = (BLUE, PURPLE, VERMILLION, BLACK, SKY_BLUE)
PHASE_COLOR: Final = "#616161"
# Dark, not green: a green line vanishes into the 2xx area it crosses.
RECOVERED_COLOR: Final = "#333333"
NEVER_COLOR: Final = VERMILLION
SLO_COLOR: Final = BLACK
SLO_DASHES: Final[tuple[float, tuple[float, float]]] = (0.0, (6.0, 3.0))
TIMES: Final = "\u00d7"  # the multiplication sign of "2x" as a multiplier

# Fixed margins (figure fractions): room for the title and phase names above, the x label and
# the legend below, the y labels to the left.
_LEFT_IN, _RIGHT_IN = 0.85, 0.15  # inches left and right of the axes
_TOP_IN, _BOTTOM_IN = 0.55, 0.95  # inches above the top axes and below the bottom one
LEGEND_MAX_COLS: Final = 8
LEGEND_ROW_IN: Final = 0.22  # each legend row past the first makes the figure this much taller
# A legend entry's width: the handle and the gaps, then each character of the label (8 pt text).
_ENTRY_IN, _CHAR_IN = 0.75, 0.065

_LABEL_BOX: Final = {"boxstyle": "square,pad=0.15", "facecolor": "white", "alpha": 0.85, "lw": 0}


def _safe(text: str) -> str:
    """Text as matplotlib should print it: a ``$`` would start mathtext (and may not parse)."""
    return text.replace("$", r"\$")


def assign_lanes(extents: Sequence[tuple[float, float]], gap: float = 0.0) -> list[int]:
    """A lane (0, 1, ...) for each label spanning ``extents[i] = (left, right)``: the first lane
    where it keeps ``gap`` from every label already there. Labels are placed in the order given,
    so the earlier ones (the earlier faults) get the top lanes."""
    lanes: list[list[tuple[float, float]]] = []
    chosen = []
    for left, right in extents:
        for n, taken in enumerate(lanes):
            if all(right + gap <= a or b + gap <= left for a, b in taken):
                taken.append((left, right))
                chosen.append(n)
                break
        else:
            lanes.append([(left, right)])
            chosen.append(len(lanes) - 1)
    return chosen


def legend_columns(labels: Sequence[str], width_in: float = WIDTH_IN - 0.5) -> int:
    """How many columns a legend of ``labels`` can have and still fit ``width_in``: a column is
    as wide as its widest entry, and entries fill the columns in order, a row at a time."""
    for ncols in range(min(len(labels), LEGEND_MAX_COLS), 1, -1):
        rows = math.ceil(len(labels) / ncols)
        # matplotlib fills a legend column by column: entry i is in column i // rows.
        widths = [0.0] * ncols
        for i, label in enumerate(labels):
            column = i // rows
            widths[column] = max(widths[column], _ENTRY_IN + _CHAR_IN * len(label))
        if sum(widths) <= width_in:
            return ncols
    return 1


def _new_figure(
    legend: Sequence[str], height_ratios: Sequence[float] = (1.0,)
) -> tuple[Figure, list[Axes], int]:
    """A figure whose axes keep their size whatever the legend below them needs (``legend``:
    the labels it will have); the legend's number of columns."""
    ncols = legend_columns(legend) if legend else 1
    extra = max(0, math.ceil(len(legend) / ncols) - 1) * LEGEND_ROW_IN
    height = (HEIGHT_IN if len(height_ratios) == 1 else RATIOS_HEIGHT_IN) + extra
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(fig)  # the Agg canvas, for this figure only
    grid = fig.add_gridspec(
        len(height_ratios),
        1,
        height_ratios=list(height_ratios),
        left=_LEFT_IN / WIDTH_IN,
        right=1 - _RIGHT_IN / WIDTH_IN,
        top=1 - _TOP_IN / height,
        bottom=(_BOTTOM_IN + extra) / height,
        hspace=0.12,
    )
    axes: list[Axes] = []
    for row in range(len(height_ratios)):
        ax = fig.add_subplot(grid[row, 0], sharex=axes[0] if axes else None)
        ax.grid(True, axis="y", color="#e0e0e0", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        axes.append(ax)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    return fig, axes, ncols


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


def _renderer(fig: Figure) -> RendererBase:
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    renderer: RendererBase = canvas.get_renderer()  # type: ignore[no-untyped-call]
    return renderer


def _in_lanes(ax: Axes, texts: Sequence[Text], first_lane: int) -> int:
    """Put ``texts`` (placed at their x, any y) into lanes from ``first_lane`` down, so that no
    two overlap; the number of lanes used."""
    if not texts:
        return 0
    renderer = _renderer(ax.figure)  # type: ignore[arg-type]  # a Figure here, never a SubFigure
    extents = [(b.x0, b.x1) for b in (t.get_window_extent(renderer) for t in texts)]
    lanes = assign_lanes(extents, gap=LABEL_GAP_PX)
    lane_h = LANE_PX / ax.get_window_extent(renderer).height
    for text, lane in zip(texts, lanes, strict=True):
        text.set_y(0.985 - lane_h * (first_lane + lane))
    return max(lanes) + 1


def _marks(ax: Axes, series: Series, *, labels: bool = True) -> list[Patch]:
    """Faults, phases and recoveries over ``ax``; the legend handles of the faults. Only the
    top panel of a figure (``labels``) names them."""
    ax.set_xlim(*_x_limits(series))
    top = blended_transform_factory(ax.transData, ax.transAxes)
    handles = []
    fault_texts = []
    for i, fault in enumerate(series.faults):
        color = FAULT_COLORS[i % len(FAULT_COLORS)]
        # Behind the data: drawn over it, a tinted band changes the colours of the status
        # classes it covers, which the legend then no longer matches.
        ax.axvspan(fault.start, fault.end, color=color, alpha=0.12, linewidth=0, zorder=0)
        handles.append(Patch(facecolor=color, alpha=0.3, label=_safe(f"fault: {fault.name}")))
        if labels:
            name = fault.name if fault.reverted else f"{fault.name} (not reverted)"
            fault_texts.append(
                ax.text(
                    fault.start,
                    0.0,
                    " " + _safe(name),
                    transform=top,
                    va="top",
                    ha="left",
                    fontsize=FONT_SIZE,
                    color=color,
                    fontweight="bold",
                    clip_on=True,
                    bbox=_LABEL_BOX,
                    gid="fault-label",
                )
            )

    boundaries = [(p.start, p.name) for p in series.phases]
    if series.phases and series.phases[-1].ended:
        boundaries.append((series.phases[-1].end, "end"))
    for x, name in boundaries:
        ax.axvline(x, color=PHASE_COLOR, linestyle="--", linewidth=0.8)
        if labels:
            ax.text(x, 1.01, _safe(name), transform=top, va="bottom", ha="left", fontsize=8)

    left, right = _x_limits(series)
    recovery_texts = []
    for marker in series.recoveries:
        color = RECOVERED_COLOR if marker.recovered else NEVER_COLOR
        ax.axvline(marker.x, color=color, linewidth=1.3)
        if not labels:
            continue
        # Horizontal and boxed: a rotated label over the data is the first thing nobody reads.
        # Near the right edge it goes to the left of its line.
        near_right = marker.x > left + 0.8 * (right - left)
        recovery_texts.append(
            ax.text(
                marker.x,
                0.0,
                f" {_safe(marker.label)} ",
                transform=top,
                va="top",
                ha="right" if near_right else "left",
                fontsize=FONT_SIZE,
                color=color,
                bbox=_LABEL_BOX,
                gid="recovery-label",
            )
        )
    # Fault labels on top, recovery labels in the lanes below them: the two never cross.
    used = _in_lanes(ax, fault_texts, 0)
    _in_lanes(ax, recovery_texts, used)
    _headroom(ax, [*fault_texts, *recovery_texts])
    return handles


def _headroom(ax: Axes, texts: Sequence[Text]) -> None:
    """Raise the top of the y axis so that the data (everything up to the limits the figure
    set) lies below the lowest label: a label over the line it annotates hides the moment it
    names. The ticks stay where they were, within the data's range, so no value is written
    beside the strip the labels fill (a 503 share never reads 120%)."""
    if not texts:
        return
    renderer = _renderer(ax.figure)  # type: ignore[arg-type]  # a Figure here, never a SubFigure
    frame = ax.get_window_extent(renderer)
    lowest = min(t.get_window_extent(renderer).y0 for t in texts) - LABEL_GAP_PX / 2
    # The share of the axes' height left for the data, kept to at least half of it.
    room = max((lowest - frame.y0) / frame.height, 0.5)
    if room >= 1.0:
        return
    low, high = ax.get_ylim()
    ax.yaxis.set_major_locator(FixedLocator([t for t in ax.get_yticks() if low <= t <= high]))
    if ax.get_yscale() == "log":
        top = math.exp(math.log(low) + (math.log(high) - math.log(low)) / room)
    else:
        top = low + (high - low) / room
    ax.set_ylim(low, top)


def _thresholds(ax: Axes, series: Series, plot: PlotName) -> list[Artist]:
    """The SLO limits judged on ``plot``, each labelled where it overlaps no other label; the
    legend handles (the limit, and the worst window when one is shaded) if there is any. Call
    after the y limits and the marks."""
    lines = [t for t in series.thresholds if t.plot == plot]
    if not lines:
        return []
    renderer = _renderer(ax.figure)  # type: ignore[arg-type]  # a Figure here, never a SubFigure
    taken = [t.get_window_extent(renderer) for t in ax.texts]
    low, high = ax.get_ylim()
    for line in lines:
        if line.worst is not None:  # ``over any N``: the window the verdict judged worst
            ax.axvspan(
                *line.worst,
                facecolor="none",
                edgecolor=SLO_COLOR,
                hatch="///",
                linewidth=0.8,
                alpha=0.45,
                zorder=1,
                gid="slo-worst",
            )
        ax.hlines(
            line.value,
            line.start,
            line.end,
            colors=SLO_COLOR,
            linestyles=SLO_DASHES,
            linewidth=1.4,
            zorder=3,
        )
        if not low <= line.value <= high:
            continue  # off the axis: the legend and the SLO table still say it
        # A few points off the line, so the label's box never hides the line it names.
        text = ax.annotate(
            _safe(line.label),
            xy=(line.end, line.value),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=FONT_SIZE - 0.5,
            color=SLO_COLOR,
            bbox=_LABEL_BOX,
            zorder=4,
            clip_on=True,
            gid="slo-label",
        )
        # Candidates: above the line at its right end, its left end, then below them.
        candidates = (
            ("bottom", 3, line.end, "right"),
            ("bottom", 3, line.start, "left"),
            ("top", -3, line.end, "right"),
            ("top", -3, line.start, "left"),
        )
        for va, dy, x, ha in (*candidates, candidates[0]):  # none free: the first
            text.xy = (x, line.value)
            text.set(va=va, ha=ha, position=(0, dy))
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken):
                break
        taken.append(text.get_window_extent(renderer))
    handles: list[Artist] = [
        Line2D([], [], color=SLO_COLOR, linestyle=SLO_DASHES, label="SLO limit")
    ]
    if any(line.worst is not None for line in lines):
        handles.append(
            Patch(facecolor="none", edgecolor=SLO_COLOR, hatch="///", label="worst window")
        )
    return handles


def _fault_labels(series: Series) -> list[str]:
    return [f"fault: {fault.name}" for fault in series.faults]


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#757575")


def _finish(fig: Figure, ax: Axes, ylabel: str, handles: Sequence[object], ncols: int) -> None:
    ax.set_xlabel("seconds since the start of the run")
    if ylabel:
        ax.set_ylabel(ylabel)
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 0.0),
            ncols=max(1, min(len(handles), ncols)),
            fontsize=FONT_SIZE,
            frameon=False,
        )


def _title(ax: Axes, text: str) -> None:
    ax.set_title(text, loc="left", fontsize=10, pad=14)


def requests_figure(series: Series) -> Figure:
    """Attempts per second, stacked by status class."""
    legend = [CLASS_LABELS[c] for c in STATUS_CLASSES if any(series.rps_by_class[c])]
    fig, (ax,), ncols = _new_figure([*legend, *_fault_labels(series)])
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
    _title(ax, "Requests per second by status")
    _finish(fig, ax, "attempts / s", handles, ncols)
    return fig


def latency_figure(series: Series) -> Figure:
    """p50, p95 and p99 latency per bin; a log axis when they span a wide range."""
    lines = (
        ("p50", series.p50_ms, SKY_BLUE),
        ("p95", series.p95_ms, BLUE),
        ("p99", series.p99_ms, VERMILLION),
    )
    finite = [v for _, values, _ in lines for v in values if math.isfinite(v) and v > 0]
    limits = [t.value for t in series.thresholds if t.plot == "latency" and t.value > 0]
    legend = [label for label, _, _ in lines] if finite else []
    legend += [*_fault_labels(series), *(["SLO limit"] if limits else [])]
    fig, (ax,), ncols = _new_figure(legend)
    handles: list[object] = []
    edges = _edges(series)
    if not finite:
        _no_data(ax, "no responses recorded")
        ax.set_ylim(0, 1)
    else:
        for label, values, color in lines:
            ax.plot(edges, _post(values), drawstyle="steps-post", color=color, linewidth=1.3)
            handles.append(Line2D([], [], color=color, linewidth=1.5, label=label))
        # The axis takes in the SLO limits too: a limit above every bin is still drawn.
        low, high = min(finite), max([*finite, *limits])
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
    handles += _thresholds(ax, series, "latency")
    _title(ax, "Latency (every attempt)")
    _finish(fig, ax, "ms", handles, ncols)
    return fig


def _nice_step(raw: float) -> float:
    """The smallest of 0.25 and 0.5, 1, 2, 5, 10, 20, 50, ... that is at least ``raw``."""
    if raw <= 0.25:
        return 0.25
    decade = 10.0 ** math.floor(math.log10(raw))
    return next(m * decade for m in (1.0, 2.0, 5.0, 10.0) if m * decade >= raw)


def _times(value: float, _: object) -> str:
    return f"{value:g}{TIMES}"


def ratios_figure(series: Series) -> Figure:
    """The share of 503s per bin (top), and retry amplification in its own panel below: two
    quantities with different units never share an axis, so neither reads as the other's
    threshold."""
    judged = any(t.plot in ("ratios", "amplification") for t in series.thresholds)
    legend = ["503 share (%)", "retry amplification", *_fault_labels(series)]
    fig, (ax, amp), ncols = _new_figure([*legend, *(["SLO limit"] if judged else [])], (2.3, 1.0))
    handles: list[object] = []
    edges = _edges(series)
    ratio = [v * 100.0 for v in series.ratio_503]
    if not any(math.isfinite(v) for v in ratio):
        _no_data(ax, "no responses recorded")
        ax.set_ylim(0, 1)
    else:
        ax.plot(edges, _post(ratio), drawstyle="steps-post", color=ORANGE, linewidth=1.5)
        handles.append(Line2D([], [], color=ORANGE, linewidth=1.5, label="503 share (%)"))
        peak = max((v for v in ratio if math.isfinite(v)), default=0.0)
        limits = [t.value for t in series.thresholds if t.plot == "ratios"]
        peak = max([peak, *limits])
        ax.set_ylim(0, min(100.0, max(5.0, peak * 1.15)) if peak < 100 else 105.0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.set_ylabel("503 share")

    amplification = series.retry_amplification
    finite = [v for v in amplification if math.isfinite(v)]
    amp.plot(edges, _post(amplification), drawstyle="steps-post", color=BLUE, linewidth=1.3)
    limits = [t.value for t in series.thresholds if t.plot == "amplification"]
    top = max([2.0, *finite, *limits])
    amp.set_ylim(0.8, 1 + (top - 1) * 1.25)
    # Ticks from 1 (every attempt a first attempt) up, marked as a multiplier, not a share.
    step = _nice_step((top - 1) / 3)
    amp.yaxis.set_major_locator(FixedLocator([1 + k * step for k in range(4)]))
    amp.yaxis.set_major_formatter(FuncFormatter(_times))
    amp.set_ylabel("retry\namplification")
    if finite:
        handles.append(Line2D([], [], color=BLUE, linewidth=1.5, label="retry amplification"))
    else:
        _no_data(amp, "no logical request finished")

    handles += _marks(ax, series)
    _marks(amp, series, labels=False)
    handles += _thresholds(ax, series, "ratios")
    slo_handles = _thresholds(amp, series, "amplification")
    if slo_handles and not any(getattr(h, "get_label", str)() == "SLO limit" for h in handles):
        handles += slo_handles
    _title(
        ax,
        "503 share (top) and retry amplification (bottom: attempts per logical request, "
        f"1{TIMES} = no retries)",
    )
    _finish(fig, amp, "", handles, ncols)
    return fig


def requests_png(series: Series) -> bytes:
    return _to_png(requests_figure(series))


def latency_png(series: Series) -> bytes:
    return _to_png(latency_figure(series))


def ratios_png(series: Series) -> bytes:
    return _to_png(ratios_figure(series))


# The plots in report order: (file stem, title, renderer).
PLOTS: Final = (
    ("requests", "Requests per second by status", requests_png),
    ("latency", "Latency p50 / p95 / p99", latency_png),
    ("ratios", "503 share and retry amplification", ratios_png),
)


def render_all(series: Series) -> dict[str, bytes]:
    """Every plot, by file stem, in report order."""
    return {stem: render(series) for stem, _, render in PLOTS}
