"""The SLO limits the plots can draw: a horizontal line over the stretch of the run an SLO judges.

Only SLOs whose metric a plot shows per bin get a line, on that plot:

    ratio(status == 503)      the 503 share plot, in percent
    pN(latency)               the latency plot, in milliseconds
    retry_amplification       the retry amplification panel, in attempts per request

An SLO judges its whole window at once (the 503 share over the spike, not each second of it), so a
bin above the line is not by itself a failed SLO; the line says where the limit is, the SLO table
says whether it held. An SLO written ``over any N`` is judged on its worst window of N seconds:
that window is shaded on the same plot (:func:`with_worst`). An SLO that does not parse, has a
filter (``where ...``), is compared with another metric, or names a window the run did not
record, gets no line: better none than a wrong one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from harness.errors import HarnessError
from harness.report import fmt
from harness.report.series import FaultSpan, PhaseSpan, PlotName, Threshold
from harness.verdict.language import parse_slo
from harness.verdict.model import Percentile, Ratio, RetryAmplification, SloExpr, StatusTest

__all__ = ["slo_thresholds", "with_worst"]


def _plot_value(slo: SloExpr) -> tuple[PlotName, float] | None:
    """The plot that shows ``slo``'s metric, and its threshold in that plot's unit."""
    metric, limit = slo.metric, slo.threshold.value
    if slo.against is not None:
        return None
    if isinstance(metric, Percentile):
        return "latency", limit * 1000.0  # seconds → ms
    if isinstance(metric, RetryAmplification):
        return "amplification", limit
    if (
        isinstance(metric, Ratio)
        and metric.where is None
        and isinstance(metric.predicate, StatusTest)
        and metric.predicate.op == "=="
        and metric.predicate.code == 503
        and not metric.predicate.is_class
    ):
        return "ratios", limit * 100.0  # fraction → percent
    return None


def _span(
    slo: SloExpr,
    run: tuple[float, float],
    phases: Sequence[PhaseSpan],
    faults: Sequence[FaultSpan],
) -> tuple[float, float] | None:
    """The stretch ``slo`` judges, as the series records it; None when the run has no such."""
    window = slo.window
    if window.kind == "run":
        return run
    if window.kind in ("phase", "either"):
        for phase in phases:
            if phase.name == window.name:
                return phase.start, phase.end
    if window.kind in ("fault", "either"):
        for fault in faults:
            if fault.name == window.name:
                return fault.start, fault.end + window.after_s
    return None


def slo_thresholds(
    slos: Iterable[tuple[str, str]],
    *,
    run: tuple[float, float],
    phases: Sequence[PhaseSpan] = (),
    faults: Sequence[FaultSpan] = (),
) -> tuple[Threshold, ...]:
    """A line for every SLO (``(name, expression)``) a plot can show; ``run`` is the span of the
    whole run on the plots' x axis."""
    lines = []
    for name, text in slos:
        try:
            slo = parse_slo(text, name=name)
        except HarnessError:
            continue  # the verdict reports a bad SLO; the plots just leave it out
        where = _plot_value(slo)
        span = _span(slo, run, phases, faults)
        if where is None or span is None:
            continue
        plot, value = where
        limit = fmt.measured(slo.threshold.value, slo.threshold.unit)
        if slo.over_s is not None:
            limit += f" over any {fmt.measured(slo.over_s, 's')}"
        lines.append(
            Threshold(
                plot=plot,
                slo=name,
                label=f"SLO {name}: {slo.comparator} {limit}",
                value=value,
                start=span[0],
                end=span[1],
            )
        )
    return tuple(lines)


def with_worst(
    thresholds: Sequence[Threshold], verdicts: Iterable[object], origin: float
) -> tuple[Threshold, ...]:
    """The lines with the worst window of each ``over any N`` SLO's verdict (by SLO name), on
    the plots' x axis (seconds from ``origin``). A verdict without one (a fixed window, a
    test's fake) leaves its line as it is."""
    worst: dict[str, tuple[float, float]] = {}
    for verdict in verdicts:
        found = getattr(verdict, "worst", None)
        if found is not None:
            worst[str(getattr(verdict, "name", ""))] = (found.start - origin, found.end - origin)
    return tuple(
        replace(line, worst=worst[line.slo]) if line.slo in worst else line for line in thresholds
    )
