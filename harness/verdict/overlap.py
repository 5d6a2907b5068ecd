"""Faults that confound each other's recovery.

A fault's recovery is judged from its injection until the service is back within the baseline's
bounds. Another fault in force during that stretch moves the recovery too: two overlapping faults
"recover" at the same moment, and the shorter one is charged with the longer one's time. Nothing
can tell the two apart after the fact, so the harness says so, twice:

- before the run (:func:`overlap_warnings`): a recovery SLO whose fault's stretch, from its ``at``
  to its end plus the recovery time its SLO allows (``recovery_time(F) < 10s``: 10 s) plus the
  stable stretch that proves the recovery (:attr:`RecoveryPolicy.stable_s`, 5 s), meets another
  fault's planned window. A warning, not an error: a scenario may mean to combine faults. Only
  the plan is known then: a revert that takes time (a killed instance restarting) moves the
  real stretch later still.
- after the run (:func:`overlapping_faults`): the faults that were in force between a fault's
  injection and its measured recovery (the end of the run when it never recovered), which the
  recovery result and every report carry.

Windows are half-open, ``[start, end)``: a fault that starts the moment another's stretch ends
does not overlap it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.durations import format_duration
from harness.scenario import Scenario
from harness.verdict.model import FaultMetric, SloExpr
from harness.verdict.recovery import RecoveryPolicy
from harness.verdict.rundata import RunData, Span

__all__ = ["overlap_warnings", "overlapping_faults"]

# The same slack as the scenario's timeline checks: float sums must not make touching overlap.
_SLACK = 1e-9


def _meets(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] - _SLACK and b[0] < a[1] - _SLACK


def _allowed_recovery(fault: str, slos: Iterable[SloExpr]) -> float:
    """The longest recovery time an upper-bound ``recovery_time(fault)`` SLO allows (0: none)."""
    allowed = 0.0
    for slo in slos:
        metric = slo.metric
        if (
            isinstance(metric, FaultMetric)
            and metric.kind == "recovery_time"
            and metric.fault == fault
            and slo.comparator in ("<", "<=")
            and slo.against is None
        ):
            allowed = max(allowed, slo.threshold.value)
    return allowed


def overlap_warnings(
    scenario: Scenario, slos: Sequence[SloExpr], policy: RecoveryPolicy | None = None
) -> list[str]:
    """One line per fault that a recovery SLO judges and another fault's window meets."""
    stable = (policy or RecoveryPolicy()).stable_s
    total = scenario.total_duration
    planned = {f.name: f.window(total) for f in scenario.faults if f.at is not None}
    lines = []
    judged: dict[str, str] = {}
    for slo in slos:
        if isinstance(slo.metric, FaultMetric):
            judged.setdefault(slo.metric.fault, slo.name)
    for fault, slo_name in judged.items():
        if fault not in planned:
            continue
        start, end = planned[fault]
        allowed = _allowed_recovery(fault, slos)
        stretch = (start, end + allowed + stable)
        others = [
            name for name, window in planned.items() if name != fault and _meets(stretch, window)
        ]
        if not others:
            continue
        shown = ", ".join(f"{name} ({_span_text(planned[name])})" for name in others)
        until = f" + {format_duration(allowed)} to recover" if allowed else ""
        until += f" + {format_duration(stable)} stable"
        lines.append(
            f'slo "{slo_name}": fault {fault} ({_span_text((start, end))}{until}) overlaps '
            f"{shown}; its recovery may be theirs"
        )
    return lines


def _span_text(window: tuple[float, float]) -> str:
    return f"{format_duration(window[0])}-{format_duration(window[1])}"


def overlapping_faults(data: RunData, fault: str, recovered_at: float | None) -> tuple[str, ...]:
    """The other faults in force between ``fault``'s injection and its recovery (the end of the
    run when ``recovered_at`` is None), in the run's order."""
    times = data.fault(fault)
    active = times.active(data.end) if times is not None else None
    if active is None:
        return ()
    judged = Span(active.start, max(recovered_at or data.end, active.end))
    found = []
    for other in data.faults:
        if other.name == fault:
            continue
        span = other.active(data.end)
        if span is not None and _meets((judged.start, judged.end), (span.start, span.end)):
            found.append(other.name)
    return tuple(found)
