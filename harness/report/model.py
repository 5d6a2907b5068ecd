"""What the report reads from the verdict, and the one place a run's outcome becomes a label and
an exit code.

The verdict's result types live in :mod:`harness.verdict`; the report depends only on the
read-only shape below (protocols), so it neither imports the verdict module nor breaks when that
module adds fields. Properties, not plain attributes: a frozen dataclass satisfies a read-only
protocol member, not a settable one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from harness.exit_codes import ExitCode
from harness.record import RunStatus

__all__ = [
    "EXIT_CODES",
    "JudgementLike",
    "Outcome",
    "Recovery",
    "Unjudged",
    "VerdictLike",
    "exit_code",
    "outcome_of",
    "recovery_of",
    "verdict_outcome",
]


class VerdictLike(Protocol):
    """One SLO, judged (``harness.verdict.Verdict``). ``observed`` and ``threshold`` are in base
    units (a share as a fraction, a duration in seconds); ``unit`` is the one the SLO was written
    in (``%``, ``ms``, ``s``, ``m``, ``h`` or empty), which the report shows them in."""

    @property
    def name(self) -> str: ...
    @property
    def expression(self) -> str: ...
    @property
    def window_label(self) -> str: ...
    @property
    def observed(self) -> float | None: ...
    @property
    def threshold(self) -> float: ...
    @property
    def comparator(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def detail(self) -> str: ...


@dataclass(frozen=True)
class Recovery:
    """How the system came back from one fault, as the report shows it. Times are unix seconds
    (as the run store keeps them); None where the thing never happened or was not measured."""

    fault: str
    injected_at: float | None
    reverted_at: float | None
    reference_at: float | None  # what recovery counts from: the revert, or the injection
    recovered_at: float | None  # None: never recovered
    recovery_time_s: float | None
    time_to_first_impact_s: float | None
    failed_requests: int | None
    detail: str = ""
    overlapping: tuple[str, ...] = ()  # other faults in force before it recovered


def verdict_outcome(v: VerdictLike) -> str:
    """``pass``, ``fail``, ``n/a`` or ``no data``: the verdict's own ``outcome``, or, from a
    verdict without one, what its value and ``passed`` say."""
    outcome = getattr(v, "outcome", None)
    if outcome in ("pass", "fail", "n/a", "no data"):
        return str(outcome)
    if v.observed is None:
        return "no data"
    return "pass" if v.passed else "fail"


def _attr(obj: object, *names: str) -> object:
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def recovery_of(obj: object) -> Recovery:
    """A verdict's fault recovery as a :class:`Recovery`.

    Read by attribute, under either of the names the verdict has used (``recovery_time_s`` or
    ``recovery_time``, ``time_to_first_impact_s`` or ``time_to_first_impact``), and with
    ``reverted_at`` and ``detail`` optional: the one place the report adapts to the verdict's
    result type, so a renamed field there costs a line here rather than a broken report.
    """
    failed = _attr(obj, "failed_requests")
    detail = _attr(obj, "detail")
    return Recovery(
        fault=str(_attr(obj, "fault") or "?"),
        injected_at=_seconds(_attr(obj, "injected_at")),
        reverted_at=_seconds(_attr(obj, "reverted_at")),
        reference_at=_seconds(_attr(obj, "reference_at")),
        recovered_at=_seconds(_attr(obj, "recovered_at")),
        recovery_time_s=_seconds(_attr(obj, "recovery_time_s", "recovery_time")),
        time_to_first_impact_s=_seconds(
            _attr(obj, "time_to_first_impact_s", "time_to_first_impact")
        ),
        failed_requests=failed
        if isinstance(failed, int) and not isinstance(failed, bool)
        else None,
        detail=detail if isinstance(detail, str) else "",
        overlapping=_names(_attr(obj, "overlapping")),
    )


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple | list):
        return ()
    return tuple(str(name) for name in value)


class JudgementLike(Protocol):
    """The whole verdict of a run (``harness.verdict.Judgement``)."""

    @property
    def verdicts(self) -> Sequence[VerdictLike]: ...
    @property
    def recoveries(self) -> Sequence[object]: ...  # read through recovery_of()
    @property
    def passed(self) -> bool: ...
    @property
    def aborted(self) -> bool: ...
    @property
    def incomplete(self) -> bool: ...


@dataclass(frozen=True)
class Unjudged:
    """A judgement with nothing judged: what the report uses when the verdict could not run.

    ``passed`` is a parameter, not a constant: "the verdict module is not installed yet" may be
    reported as a pass (nothing failed), but "the verdict crashed" must not turn a CI gate green.
    """

    passed: bool
    aborted: bool
    incomplete: bool
    verdicts: tuple[VerdictLike, ...] = ()
    recoveries: tuple[object, ...] = ()


class Outcome(enum.StrEnum):
    """The badge: what a person and a CI should conclude from the run, in one word."""

    PASS = "PASS"  # noqa: S105  # a verdict, not a password
    FAIL = "FAIL"
    ABORTED = "ABORTED"
    INCOMPLETE = "INCOMPLETE"


# ARCHITECTURE.md's exit codes. An incomplete run is an infrastructure failure (the harness or
# its load generator died) unless it was interrupted on purpose.
EXIT_CODES: Final = {
    Outcome.PASS: ExitCode.OK,
    Outcome.FAIL: ExitCode.FAILED,
    Outcome.ABORTED: ExitCode.ABORTED,
    Outcome.INCOMPLETE: ExitCode.INFRASTRUCTURE,
}

# Store statuses that mean the run did not get to the end of its phases.
_INCOMPLETE: Final = frozenset({RunStatus.RUNNING, RunStatus.CRASHED, RunStatus.INTERRUPTED})


def outcome_of(status: RunStatus, judgement: JudgementLike) -> Outcome:
    """The badge. The store's status and the verdict's flags are both trusted: either saying the
    run was cut short wins over any SLO result, since SLOs over half a run mean little."""
    if status is RunStatus.ABORTED or judgement.aborted:
        return Outcome.ABORTED
    if status in _INCOMPLETE or judgement.incomplete:
        return Outcome.INCOMPLETE
    return Outcome.PASS if judgement.passed else Outcome.FAIL


def exit_code(status: RunStatus, outcome: Outcome) -> int:
    """The process exit code a CI gates on, as ``harness run`` would have returned it."""
    if outcome is Outcome.INCOMPLETE and status is RunStatus.INTERRUPTED:
        return ExitCode.INTERRUPTED
    return EXIT_CODES[outcome]
