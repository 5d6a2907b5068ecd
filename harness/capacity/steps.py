"""One capacity step measured from a run store: what came back over its hold, and which SLOs
failed there. Pure Python (no Locust): the capacity command measures every step after the run,
and the master (:mod:`harness.capacity.stepstop`) measures each as it ends, to stop at the first
that broke; both read the store the same way, so they agree on where the search broke.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.capacity.analysis import StepResult
from harness.record import RunDir
from harness.scenario import Scenario
from harness.verdict.evaluate import Evaluator
from harness.verdict.language import parse_slo
from harness.verdict.model import FaultMetric
from harness.verdict.rundata import RunData

__all__ = ["SETTLE_PHASE", "is_step", "judge_step", "measure_step", "measure_steps", "step_slos"]

# The staircase's first phase, at the first step's load, before anything is measured.
SETTLE_PHASE = "settle"


def is_step(phase: str) -> bool:
    """Whether a phase of a staircase is a step (measured, judged) rather than the settling."""
    return phase != SETTLE_PHASE


def step_slos(scenario: Scenario) -> tuple[list[tuple[str, str]], list[str]]:
    """``(name, expression)`` of the SLOs judged per step, and the names of those skipped."""
    judged, skipped = [], []
    for slo in scenario.slos:
        parsed = parse_slo(slo.expr, name=slo.name)
        if parsed.window.kind == "run" and not isinstance(parsed.metric, FaultMetric):
            judged.append((slo.name, slo.expr))
        else:
            skipped.append(slo.name)
    return judged, skipped


def measure_steps(
    run_dir: RunDir, stair: Scenario, judged: Sequence[tuple[str, str]]
) -> list[StepResult]:
    """Each step that ran, up to and including the first that broke: the steps after it (the
    one cut short when the run stopped there) measure nothing the search needs."""
    evaluator = Evaluator(RunData.from_run_dir(run_dir, stair))
    steps = []
    for phase in stair.load.phases:
        if not is_step(phase.name):
            continue
        step = measure_step(evaluator, phase.name, float(phase.rate or 0.0), judged)
        if step is None:
            break
        steps.append(step)
        if not step.held:
            break
    return steps


def measure_step(
    evaluator: Evaluator, phase: str, offered: float, judged: Sequence[tuple[str, str]]
) -> StepResult | None:
    """The step played as ``phase``; None when it never started."""
    known, span = evaluator.data.phase(phase)
    if not known or span is None:
        return None

    def observed(expr: str) -> float | None:
        return evaluator.evaluate(parse_slo(expr, name="measure")).observed

    during = f"during phase {phase}"
    responses = observed(f"count(status >= 0) >= 0 {during}") or 0.0
    good = observed(f"count(status == 2xx) >= 0 {during}") or 0.0
    failed = tuple(
        name
        for name, expr in judged
        if not evaluator.evaluate(parse_slo(f"{expr} {during}", name=name)).passed
    )
    return StepResult(
        name=phase,
        offered=offered,
        throughput=good / max(span.seconds, 1e-9),
        p99_s=observed(f"p99(latency) < 1s {during}"),
        ratio_503=observed(f"ratio(status == 503) < 1% {during}"),
        responses=int(responses),
        failed=failed,
    )


def judge_step(
    run_dir: RunDir, stair: Scenario, phase: str, judged: Sequence[tuple[str, str]]
) -> StepResult | None:
    """One step, from the store as it is now (the run may still be going)."""
    offered = next((float(p.rate or 0.0) for p in stair.load.phases if p.name == phase), 0.0)
    evaluator = Evaluator(RunData.from_run_dir(run_dir, stair))
    return measure_step(evaluator, phase, offered, judged)
