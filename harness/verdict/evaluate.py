"""One SLO over one run: find its window, compute its metric, compare, say why.

Four outcomes (:data:`Outcome`), ``detail`` saying why in each:

- ``pass`` / ``fail``: the metric has a value, and the comparison holds or not.
- ``n/a``: nothing to measure, for a reason that is no failure (no retry without Retry-After
  for ``backoff_growth``, no 503 for the Retry-After share). Passes: the run gives the SLO
  nothing to object to.
- ``no data``: nothing to judge by (no responses in the window, a phase that never ran, retries
  the attempt log lacks). The SLO's ``no_data`` decides: ``fail`` (the default) or ``pass``.

A missing value that is the failure itself (a fault that never recovered or never bit, immediate
retries for ``backoff_growth``, an unknown attempt cap) is ``fail`` whatever ``no_data`` says.
Never raises.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from harness.record.buckets import BUCKETS_PER_SECOND, AttemptRecord
from harness.verdict import backoff
from harness.verdict.metrics import (
    Measurement,
    Missing,
    check_measurement,
    count_by_name,
    measure_buckets,
)
from harness.verdict.model import (
    AttemptCapRespected,
    BackoffGrowth,
    CheckValue,
    Comparator,
    FaultMetric,
    JitterSpread,
    Metric,
    RequestCount,
    RetryAfterCompliance,
    SloExpr,
    Window,
    compare,
)
from harness.verdict.overlap import overlapping_faults
from harness.verdict.recovery import FaultRecovery, RecoveryPolicy, analyse_fault
from harness.verdict.rundata import RunData, Span
from harness.verdict.units import measured
from harness.verdict.worst import WorstWindow, worst_window

__all__ = ["OUTCOMES", "Evaluator", "Outcome", "Verdict", "evaluate", "resolve_window"]

Outcome: TypeAlias = Literal["pass", "fail", "n/a", "no data"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("pass", "fail", "n/a", "no data")


@dataclass(frozen=True)
class Verdict:
    """The judgement of one SLO. ``observed`` and ``threshold`` are in base units (fractions,
    seconds); ``unit`` is the one the user wrote, which :attr:`observed_text` and
    :attr:`threshold_text` show them in. ``outcome`` is one of :data:`OUTCOMES`; ``passed``
    says whether it lets the run pass (``n/a`` does, ``no data`` as the SLO's ``no_data``)."""

    name: str
    expression: str
    window_label: str
    observed: float | None
    threshold: float
    comparator: Comparator
    unit: str
    passed: bool
    detail: str
    outcome: Outcome
    # ``over any N``: where the worst window was and its value (None for a fixed window, or
    # when no window had a value).
    worst: WorstWindow | None = None

    @property
    def observed_text(self) -> str:
        if self.observed is None:
            return "n/a" if self.outcome == "n/a" else "none"
        return measured(self.observed, self.unit)

    @property
    def threshold_text(self) -> str:
        return measured(self.threshold, self.unit)

    def __str__(self) -> str:
        outcome = self.outcome.upper()
        return (
            f"{outcome} {self.name}: {self.observed_text} (needs {self.comparator} "
            f"{self.threshold_text}, {self.window_label}): {self.detail}"
        )


def resolve_window(window: Window, data: RunData) -> Span | str:
    """The stretch of the run ``window`` means, or why it has none."""
    if window.kind == "run":
        return data.span
    name = window.name
    known_phase, phase_span = data.phase(name)
    if window.kind == "phase" or (window.kind == "either" and known_phase):
        if not known_phase:
            return f'no phase "{name}" in this run'
        if phase_span is None:
            return f"phase {name} never ran"
        return phase_span
    fault = data.fault(name)
    if fault is None:
        what = "fault" if window.kind == "fault" else "phase or fault"
        return f'no {what} "{name}" in this run'
    active = fault.active(data.end)
    if active is None:
        return f"fault {name} was never injected"
    # "+ 10s" past the end of the run would only take in the stragglers of the shutdown.
    end = min(active.end + window.after_s, max(data.end, active.end))
    return Span(active.start, end)


@dataclass
class Evaluator:
    """Evaluates SLOs over one run, sharing the work several SLOs need (the attempt log grouped
    by request, each fault's recovery analysis)."""

    data: RunData
    policy: RecoveryPolicy = field(default_factory=RecoveryPolicy)
    _grouped: dict[str | int, list[AttemptRecord]] | None = field(
        default=None, init=False, repr=False
    )
    _recoveries: dict[tuple[str, str | None], FaultRecovery] = field(
        default_factory=dict, init=False, repr=False
    )

    def evaluate(self, slo: SloExpr) -> Verdict:
        measurement, label, worst = self._measure(slo)
        threshold = slo.threshold.value
        detail = measurement.evidence
        missing: Missing | None = None if measurement.value is not None else measurement.missing
        if slo.against is not None:
            # Compared with another metric of the same run: its value is the threshold.
            other, _, _ = self._measure(
                SloExpr(slo.name, slo.text, slo.against, "==", slo.threshold, slo.window)
            )
            detail = f"{slo.metric}: {detail}; {slo.against}: {other.evidence}"
            if other.value is None:
                missing = missing or other.missing
            else:
                threshold = other.value
        outcome: Outcome
        if missing == "n/a":
            outcome, passed = "n/a", True
        elif missing == "no data":
            outcome, passed = "no data", slo.no_data == "pass"
        elif missing == "fail" or measurement.value is None:
            outcome, passed = "fail", False
        else:
            passed = compare(measurement.value, slo.comparator, threshold)
            outcome = "pass" if passed else "fail"
        return Verdict(
            name=slo.name,
            expression=slo.text,
            window_label=label,
            observed=measurement.value,
            threshold=threshold,
            comparator=slo.comparator,
            unit=slo.threshold.unit,
            passed=passed,
            detail=detail,
            outcome=outcome,
            worst=worst,
        )

    def recovery(self, fault: str, baseline: str | None = None) -> FaultRecovery:
        key = (fault, baseline)
        if key not in self._recoveries:
            found = analyse_fault(self.data, fault, baseline=baseline, policy=self.policy)
            overlapping = overlapping_faults(self.data, fault, found.recovered_at)
            self._recoveries[key] = dataclasses.replace(found, overlapping=overlapping)
        return self._recoveries[key]

    def _measure(self, slo: SloExpr) -> tuple[Measurement, str, WorstWindow | None]:
        metric = slo.metric
        if isinstance(metric, FaultMetric):
            return self._fault_metric(metric), f"after fault {metric.fault}", None
        if isinstance(metric, CheckValue):
            found = check_measurement(metric, self.data.checks.get(metric.check))
            return found, "whole run", None
        if isinstance(metric, RequestCount):
            return count_by_name(metric, self.data.names), "whole run", None
        label = slo.slide_label
        span = resolve_window(slo.window, self.data)
        if isinstance(span, str):
            return Measurement(None, span), label, None
        if slo.over_s is not None:
            measurement, worst = self._sliding(slo, slo.over_s, span)
            return measurement, label, worst
        return self._in_span(metric, span), label, None

    def _sliding(
        self, slo: SloExpr, over_s: float, span: Span
    ) -> tuple[Measurement, WorstWindow | None]:
        """The worst ``over_s`` window inside ``span`` (see :mod:`~.worst`)."""
        lo, hi = span.bucket_range
        measurement, worst = worst_window(
            slo.metric,
            self.data.buckets_between(lo, hi),
            lo,
            hi,
            round(over_s * BUCKETS_PER_SECOND),
            slo.comparator,
            self.data.failed_statuses,
        )
        if worst is None:
            return measurement, None
        # From the start of the first phase: the "t = 0" of the report's plots and tables.
        origin = next((s.start for _, s in self.data.phases if s is not None), self.data.start)
        start = measured(worst.start - origin, "s")
        end = measured(worst.end - origin, "s")
        where = f"worst of {worst.windows} windows at +{start}..+{end}: "
        return dataclasses.replace(measurement, evidence=where + measurement.evidence), worst

    def _in_span(self, metric: Metric, span: Span) -> Measurement:
        if metric.per_bucket:
            return measure_buckets(metric, self.data.buckets_in(span), self.data.failed_statuses)
        grouped = self._by_request()
        buckets = self.data.buckets_in(span)
        if isinstance(metric, RetryAfterCompliance):
            return backoff.retry_after_compliance(grouped, span, buckets)
        if isinstance(metric, BackoffGrowth):
            return backoff.backoff_growth(grouped, span, buckets)
        if isinstance(metric, JitterSpread):
            return backoff.jitter_spread(grouped, span, buckets)
        if isinstance(metric, AttemptCapRespected):
            cap = metric.cap if metric.cap is not None else self.data.max_attempts
            return backoff.attempt_cap_respected(grouped, buckets, span, cap)
        raise TypeError(f"no evaluation for {metric}")  # a metric added to the model only

    def _fault_metric(self, metric: FaultMetric) -> Measurement:
        recovery = self.recovery(metric.fault, metric.baseline)
        confounded = (
            f" (not this fault's alone: {', '.join(recovery.overlapping)} also in force)"
            if recovery.overlapping
            else ""
        )
        if metric.kind == "recovery_time":
            never = (
                recovery.recovery_time is None
                and recovery.bounds is not None
                and recovery.reference_at is not None
            )
            # Never recovering is the failure the SLO is about, not an absence of data.
            missing: Missing = "fail" if never else "no data"
            return Measurement(recovery.recovery_time, recovery.detail + confounded, missing)
        if metric.kind == "time_to_first_impact":
            impact = recovery.time_to_first_impact
            if impact is None and recovery.bounds is not None:
                until = "its recovery" if recovery.recovered else "the end of the run"
                return Measurement(
                    None,
                    f"no impact seen: from the injection to {until} every second "
                    f"had {recovery.bounds.describe()}",
                    # Not n/a: "< 2s" asks that the fault bites, and none did. Not data to
                    # miss either: no_data: pass must not turn "it never bit" into a pass.
                    "fail",
                )
            if impact is None:
                return Measurement(None, recovery.detail)
            return Measurement(
                impact, f"first out of bounds {measured(impact, 's')} after the injection"
            )
        failed = recovery.failed_requests
        if failed is None:
            return Measurement(None, recovery.detail)
        until = "the recovery" if recovery.recovered else "the end of the run (never recovered)"
        return Measurement(
            failed,
            f"{failed} responses were not 2xx/3xx from the injection to {until}{confounded}",
        )

    def _by_request(self) -> dict[str | int, list[AttemptRecord]]:
        if self._grouped is None:
            self._grouped = backoff.by_request(self.data.attempts)
        return self._grouped


def evaluate(slo: SloExpr, data: RunData, *, policy: RecoveryPolicy | None = None) -> Verdict:
    """One SLO over ``data``; see :class:`Evaluator` to judge several over the same run."""
    return Evaluator(data, policy or RecoveryPolicy()).evaluate(slo)
