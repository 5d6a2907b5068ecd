"""The verdict on a whole run: every SLO, every fault's recovery, and how the run ended.

Exit codes are the CLI's business (``harness.cli``); this only says what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.record import EventKind, RunDir, RunStatus
from harness.scenario import Scenario
from harness.verdict.checks import parse_checks
from harness.verdict.evaluate import Evaluator, Verdict
from harness.verdict.model import FaultMetric
from harness.verdict.recovery import FaultRecovery, RecoveryPolicy
from harness.verdict.rundata import RunData

__all__ = ["Judgement", "judge", "judge_data"]

# A run that did not get to the end of its phases: its verdicts speak of a part of the run only.
_INCOMPLETE = frozenset({RunStatus.CRASHED, RunStatus.INTERRUPTED, RunStatus.RUNNING})


@dataclass(frozen=True)
class Judgement:
    """``passed``: every SLO met, and the run neither aborted by a guard nor incomplete.
    ``aborted``: a guard stopped it (a ``guard_breach`` event). ``incomplete``: it crashed, was
    interrupted, or is still running, so its verdicts cover only what was recorded."""

    verdicts: tuple[Verdict, ...]
    recoveries: tuple[FaultRecovery, ...]
    passed: bool
    aborted: bool
    incomplete: bool
    status: RunStatus
    abort_reasons: tuple[str, ...] = ()


def judge(
    run_dir: RunDir, scenario: Scenario, *, policy: RecoveryPolicy | None = None
) -> Judgement:
    """Judge a recorded run against ``scenario`` (the run's own, as resolved).

    Raises BadInputError when an SLO does not parse or names what the scenario lacks (the run
    CLI checks that before running, so here it means a scenario edited since), and
    InfrastructureError when the store cannot be read.
    """
    status = run_dir.status
    breaches = tuple(
        str(event.detail.get("detail") or event.name)
        for event in run_dir.events()
        if event.kind is EventKind.GUARD_BREACH
    )
    data = RunData.from_run_dir(run_dir, scenario)
    return judge_data(
        data,
        scenario,
        status=status,
        aborted=bool(breaches) or status is RunStatus.ABORTED,
        abort_reasons=breaches,
        policy=policy,
    )


def judge_data(
    data: RunData,
    scenario: Scenario,
    *,
    status: RunStatus = RunStatus.COMPLETED,
    aborted: bool = False,
    abort_reasons: tuple[str, ...] = (),
    policy: RecoveryPolicy | None = None,
) -> Judgement:
    """:func:`judge` over data already read (or built by a test)."""
    checks = parse_checks(scenario)
    evaluator = Evaluator(data, policy or RecoveryPolicy())
    verdicts = tuple(evaluator.evaluate(slo) for slo in checks.slos)
    # Each fault's recovery against the baseline its SLOs judge it by, so the report's fault
    # table and a recovery_time(F, baseline P) SLO never show two recoveries of one fault.
    baselines: dict[str, str] = {}
    for slo in checks.slos:
        if isinstance(slo.metric, FaultMetric) and slo.metric.baseline is not None:
            baselines.setdefault(slo.metric.fault, slo.metric.baseline)
    recoveries = tuple(
        evaluator.recovery(fault.name, baselines.get(fault.name)) for fault in scenario.faults
    )
    incomplete = status in _INCOMPLETE
    return Judgement(
        verdicts=verdicts,
        recoveries=recoveries,
        passed=all(v.passed for v in verdicts) and not aborted and not incomplete,
        aborted=aborted,
        incomplete=incomplete,
        status=status,
        abort_reasons=abort_reasons,
    )
