"""A run's buckets and events as plot-ready time series, and the marks drawn over them.

The x axis is seconds since the run's start, which here means the start of the load's first phase
(the ``planned`` time its ``phase_start`` event carries): that is the clock a scenario's ``at:``
offsets count from, so a fault written ``at: 25s`` is drawn at 25. A run without any phase event
(it crashed before the load began) falls back to the store's ``started_at``.

The 100 ms buckets are summed into bins of ``step`` seconds (1 s by default); a bucket belongs to
the bin its start falls in. Every bin from the start (or the first bucket, if earlier) to the end
of the run is present: a second without a stored bucket is a second in which no attempt started,
so its request rates are 0, and the quantities that need responses (latency, the 503 ratio, retry
amplification) are NaN there, which a plot draws as a gap rather than as a made-up 0.

Status classes (every code lands in exactly one, so the classes add up to the total)::

    2xx  3xx  4xx  503  5xx (500-599 but 503)  error (0: no response; and any code outside 200-599)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, TypeAlias

from harness.errors import BadInputError
from harness.record import Event, EventKind
from harness.record.buckets import BUCKETS_PER_SECOND, Bucket
from harness.record.histogram import Histogram
from harness.report.model import Recovery

__all__ = [
    "STATUS_CLASSES",
    "FaultSpan",
    "PhaseSpan",
    "PlotName",
    "RecoveryMarker",
    "Series",
    "Threshold",
    "build_series",
    "check_step",
    "fault_spans",
    "origin_of",
    "phase_spans",
    "recovery_markers",
    "run_end_of",
    "status_class",
]

STATUS_CLASSES: Final = ("2xx", "3xx", "4xx", "503", "5xx", "error")
PERCENTILES: Final = (50, 95, 99)
NAN: Final = math.nan
# Bucket starts are idx / 10 and the origin is any float: a bucket that starts exactly on a bin
# edge must not fall into the bin before through a rounding error of 1e-9 s.
_EDGE_SLACK: Final = 1e-6


def check_step(step: float) -> float:
    """``step`` if it is a usable bin width: whole buckets (a multiple of 0.1 s), so every bin
    holds the same number of them and a steady load draws as a flat line."""
    buckets = step * BUCKETS_PER_SECOND
    if not (math.isfinite(step) and step > 0 and abs(buckets - round(buckets)) < 1e-6):
        raise BadInputError(
            f"plot step {step!r}: expected a multiple of 0.1 s (the bucket width), from 0.1 s"
        )
    return step


def status_class(code: int) -> str:
    """The class a status code is counted under (see the module docstring)."""
    if code == 503:
        return "503"
    if 200 <= code < 600:
        return f"{code // 100}xx"
    return "error"


@dataclass(frozen=True)
class PhaseSpan:
    """One phase of the load, in seconds since the run's start. ``ended`` is False when no
    ``phase_end`` was recorded (the run stopped during it; ``end`` is then where the next phase
    began or the run ended)."""

    name: str
    start: float
    end: float
    users: int | None
    ended: bool
    cut_short: bool = False


@dataclass(frozen=True)
class FaultSpan:
    """One injected fault, from its injection to its revert (or to the end of the run when no
    revert was recorded: ``reverted`` is False then)."""

    name: str
    start: float
    end: float
    reverted: bool
    description: str = ""
    manual: bool = False  # injected by hand on a game day, by ``who``
    who: str = ""
    reverted_by: str = ""  # who reverted it by hand; empty: its schedule or the end of the run
    # When the schedule said, beside when it was in force (start) or lifted (end); None: the
    # step was not the schedule's (by hand, the end of the run) or the run did not record it.
    scheduled_start: float | None = None
    scheduled_end: float | None = None


@dataclass(frozen=True)
class RecoveryMarker:
    """Where a fault's recovery ended (``x``), or, if it never did, the end of the run."""

    fault: str
    x: float
    recovered: bool
    label: str


PlotName: TypeAlias = Literal["ratios", "latency", "amplification"]


@dataclass(frozen=True)
class Threshold:
    """One SLO's limit on one plot: ``value`` in the plot's unit, from ``start`` to ``end``
    (seconds since the run's start)."""

    plot: PlotName
    slo: str
    label: str  # "SLO spike-503s-bounded: < 30%"
    value: float
    start: float
    end: float
    # ``over any N``: the worst window the verdict found, (start, end) on the x axis; shaded.
    worst: tuple[float, float] | None = None


@dataclass(frozen=True)
class Series:
    """Everything the plots draw. Per-bin tuples all have ``len(x)`` entries; rates are per
    second, latencies in milliseconds, the 503 ratio in 0..1. NaN means "no data here"."""

    origin: float  # unix time of x = 0
    step: float  # seconds per bin
    end: float  # x of the end of the run
    x: tuple[float, ...]  # start of each bin
    rps_by_class: Mapping[str, tuple[float, ...]]  # keyed by STATUS_CLASSES, in that order
    rps: tuple[float, ...]  # attempts per second, all classes
    p50_ms: tuple[float, ...]
    p95_ms: tuple[float, ...]
    p99_ms: tuple[float, ...]
    ratio_503: tuple[float, ...]
    retry_amplification: tuple[float, ...]  # attempts / logical requests done
    phases: tuple[PhaseSpan, ...] = ()
    faults: tuple[FaultSpan, ...] = ()
    recoveries: tuple[RecoveryMarker, ...] = ()
    thresholds: tuple[Threshold, ...] = ()  # SLO limits to draw (harness.report.thresholds)

    @property
    def empty(self) -> bool:
        """No attempt was recorded at all."""
        return not any(self.rps)


# --- the marks: phases, faults, recoveries ----------------------------------------------------


def origin_of(events: Sequence[Event], started_at: float) -> float:
    """Unix time of x = 0: the planned start of the first phase, else ``started_at``."""
    for event in events:
        if event.kind is EventKind.PHASE_START:
            planned = event.detail.get("planned")
            return float(planned) if isinstance(planned, int | float) else event.t
    return started_at


def run_end_of(events: Sequence[Event], buckets: Sequence[Bucket], ended_at: float | None) -> float:
    """Unix time the run ended: ``ended_at`` when recorded, else the last thing it recorded (a
    crashed run never wrote an end)."""
    if ended_at is not None:
        return ended_at
    last = [event.t for event in events[-1:]]
    if buckets:
        last.append((buckets[-1].idx + 1) / BUCKETS_PER_SECOND)
    return max(last, default=0.0)


def phase_spans(events: Sequence[Event], origin: float, end: float) -> tuple[PhaseSpan, ...]:
    """The phases as they happened: from each ``phase_start`` event to its ``phase_end``.

    The events' own times, not the plan's: the master records when it switched the load (a late
    master shows as late), and the verdict judges phases on the same times, so the phase table
    and a ``during phase X`` SLO count the same buckets.
    """
    starts = [e for e in events if e.kind is EventKind.PHASE_START]
    ends: dict[str, Event] = {}
    for event in events:
        if event.kind is EventKind.PHASE_END:
            ends.setdefault(event.name, event)
    spans = []
    for i, start in enumerate(starts):
        finish = ends.get(start.name)
        if finish is not None:
            stop, ended = finish.t, True
        elif i + 1 < len(starts):
            stop, ended = starts[i + 1].t, False
        else:
            stop, ended = end, False
        users = start.detail.get("users")
        spans.append(
            PhaseSpan(
                name=start.name,
                start=start.t - origin,
                end=max(stop, start.t) - origin,
                users=users if isinstance(users, int) else None,
                ended=ended,
                cut_short=bool(finish is not None and finish.detail.get("cut_short")),
            )
        )
    return tuple(spans)


def fault_spans(events: Sequence[Event], origin: float, end: float) -> tuple[FaultSpan, ...]:
    """Each injection paired with the next revert of the same fault name, in event order (a
    fault name may be injected twice in a run that restarts one)."""
    open_: dict[str, list[Event]] = {}
    spans: list[tuple[int, FaultSpan]] = []
    for event in events:
        if event.kind is EventKind.FAULT_INJECTED:
            open_.setdefault(event.name, []).append(event)
        elif event.kind is EventKind.FAULT_REVERTED and open_.get(event.name):
            injected = open_[event.name].pop(0)
            span = _fault_span(injected, event.t, origin, reverted=True)
            by = event.detail.get("reverted_by")
            if isinstance(by, str) and by:
                span = replace(span, reverted_by=by)
            span = replace(span, scheduled_end=_scheduled(event, origin))
            spans.append((injected.id, span))
    for pending in open_.values():
        for injected in pending:
            spans.append((injected.id, _fault_span(injected, end, origin, reverted=False)))
    return tuple(span for _, span in sorted(spans, key=lambda pair: pair[0]))


def _fault_span(injected: Event, stop: float, origin: float, *, reverted: bool) -> FaultSpan:
    description = injected.detail.get("description")
    who = injected.detail.get("who")
    return FaultSpan(
        name=injected.name,
        start=injected.t - origin,
        end=max(stop, injected.t) - origin,
        reverted=reverted,
        description=description if isinstance(description, str) else "",
        manual=injected.detail.get("manual") is True,
        who=who if isinstance(who, str) else "",
        scheduled_start=_scheduled(injected, origin),
    )


def _scheduled(event: Event, origin: float) -> float | None:
    """The time the step was due (``scheduled``, unix seconds) as an offset, if recorded."""
    due = event.detail.get("scheduled")
    if isinstance(due, int | float) and not isinstance(due, bool) and math.isfinite(due):
        return float(due) - origin
    return None


def recovery_markers(
    recoveries: Iterable[Recovery], origin: float, end: float
) -> tuple[RecoveryMarker, ...]:
    """A marker per recovery: where it ended, or "never recovered" at the end of the run."""
    markers = []
    for rec in recoveries:
        if rec.recovered_at is not None:
            took = rec.recovery_time_s
            label = f"{rec.fault} recovered" + (f" +{took:.1f}s" if took is not None else "")
            markers.append(RecoveryMarker(rec.fault, rec.recovered_at - origin, True, label))
        else:
            markers.append(
                RecoveryMarker(rec.fault, end - origin, False, f"{rec.fault} never recovered")
            )
    return tuple(markers)


# --- the series --------------------------------------------------------------------------------


class _Bin:
    __slots__ = ("attempts", "by_class", "done", "latency")

    def __init__(self) -> None:
        self.by_class = dict.fromkeys(STATUS_CLASSES, 0)
        self.attempts = 0
        self.done = 0
        self.latency = Histogram()


def _bin_of(bucket: Bucket, origin: float, step: float) -> int:
    return math.floor((bucket.start - origin) / step + _EDGE_SLACK)


def build_series(
    buckets: Sequence[Bucket],
    events: Sequence[Event],
    *,
    started_at: float,
    ended_at: float | None,
    recoveries: Iterable[Recovery] = (),
    step: float = 1.0,
) -> Series:
    """The series of a run (``buckets`` in index order, as :meth:`RunDir.buckets` returns
    them). ``step`` is the bin width in seconds (see :func:`check_step`)."""
    check_step(step)
    origin = origin_of(events, started_at)
    end_unix = max(run_end_of(events, buckets, ended_at), origin)
    end = end_unix - origin

    bins: dict[int, _Bin] = {}
    classes: dict[int, str] = {}  # status code -> its class: a run has a handful of codes
    for bucket in buckets:
        acc = bins.get(k := _bin_of(bucket, origin, step))
        if acc is None:
            acc = bins[k] = _Bin()
        by_class = acc.by_class
        for code, n in bucket.statuses.items():
            name = classes.get(code)
            if name is None:
                name = classes[code] = status_class(code)
            by_class[name] += n
            acc.attempts += n
        acc.done += bucket.done
        acc.latency.merge(bucket.latency)

    first = min(0, min(bins, default=0))
    last = max(math.ceil(end / step - _EDGE_SLACK), max(bins, default=-1) + 1)
    keys = range(first, last)
    empty = _Bin()
    rows = [bins.get(k, empty) for k in keys]

    def per_second(n: int) -> float:
        return n / step

    # The three percentiles of a bin in one pass over its histogram.
    by_bin = [
        b.latency.percentiles(PERCENTILES) if b.latency else (NAN,) * len(PERCENTILES) for b in rows
    ]
    percentiles = {
        q: tuple(values[i] * 1000.0 for values in by_bin) for i, q in enumerate(PERCENTILES)
    }
    return Series(
        origin=origin,
        step=step,
        end=end,
        x=tuple(k * step for k in keys),
        rps_by_class={c: tuple(per_second(b.by_class[c]) for b in rows) for c in STATUS_CLASSES},
        rps=tuple(per_second(b.attempts) for b in rows),
        p50_ms=percentiles[50],
        p95_ms=percentiles[95],
        p99_ms=percentiles[99],
        ratio_503=tuple(b.by_class["503"] / b.attempts if b.attempts else NAN for b in rows),
        retry_amplification=tuple(b.attempts / b.done if b.done else NAN for b in rows),
        phases=phase_spans(events, origin, end_unix),
        faults=fault_spans(events, origin, end_unix),
        recoveries=recovery_markers(recoveries, origin, end_unix),
    )
