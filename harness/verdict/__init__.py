"""The verdict: SLO expressions, their evaluation over a recorded run, recovery after faults,
client backoff analysis, and the live abort guards.

Pure Python over the run store: no Locust, no gevent (a test keeps it so)::

    checks = parse_checks(scenario)               # at load time: BadInputError -> exit 2
    guards = GuardEvaluator(checks.guards)        # on the master: add(bucket), check(now)
    judgement = judge(RunDir.open(path), scenario)  # after the run

Modules: ``language`` (the lark grammar and the parse), ``model`` (what it parses into),
``checks`` (names against the scenario), ``rundata`` (the run as read), ``metrics`` (bucket
metrics), ``backoff`` (attempt-log metrics), ``recovery`` (recovery time), ``evaluate`` (one
SLO), ``worst`` (``over any N``: the worst sliding window), ``judge`` (a whole run),
``guards`` (live, on the master), ``units`` (display).
"""

from harness.verdict.checks import Checks, check_names, parse_checks
from harness.verdict.evaluate import Verdict
from harness.verdict.guards import GuardBreach, GuardEvaluator
from harness.verdict.judge import Judgement, judge
from harness.verdict.language import parse_guard, parse_slo
from harness.verdict.recovery import FaultRecovery, RecoveryPolicy

__all__ = [
    "Checks",
    "FaultRecovery",
    "GuardBreach",
    "GuardEvaluator",
    "Judgement",
    "RecoveryPolicy",
    "Verdict",
    "check_names",
    "judge",
    "parse_checks",
    "parse_guard",
    "parse_slo",
]
