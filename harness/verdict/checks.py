"""A scenario's SLOs and guards, parsed and checked against the scenario's own names.

The parse (:mod:`~.language`) cannot know which phases and faults exist; this can. Run it when the
scenario loads, so ``during phase spkie`` is exit code 2 before the stack starts, not a failed
verdict after a ten-minute run.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import BadInputError, clip
from harness.scenario import Scenario
from harness.verdict.language import parse_guard, parse_slo
from harness.verdict.model import CheckValue, FaultMetric, GuardExpr, SloExpr

__all__ = ["Checks", "check_names", "parse_checks"]


@dataclass(frozen=True)
class Checks:
    """A scenario's SLOs and guards, parsed and checked against its phases and faults."""

    slos: tuple[SloExpr, ...]
    guards: tuple[GuardExpr, ...]


def parse_checks(scenario: Scenario) -> Checks:
    """Parse every SLO and guard of ``scenario`` and check the names they use. Errors name the
    entry (``slos[2]: ...``); the caller prefixes the scenario file."""
    slos = []
    for index, slo in enumerate(scenario.slos):
        where = f"slos[{index}]"
        expr = parse_slo(slo.expr, name=slo.name, where=where)
        check_names(expr, scenario, where=where)
        no_data = slo.no_data if slo.no_data is not None else scenario.no_data
        slos.append(dataclasses.replace(expr, no_data=no_data))
    guards = []
    for index, guard in enumerate(scenario.guards):
        where = f"guards[{index}]"
        gexpr = parse_guard(guard.expr, name=guard.name, where=where)
        check_names(gexpr, scenario, where=where)
        guards.append(gexpr)
    return Checks(tuple(slos), tuple(guards))


def check_names(expr: SloExpr | GuardExpr, scenario: Scenario, *, where: str = "slo") -> None:
    """Every phase and fault ``expr`` names exists in ``scenario``; BadInputError otherwise,
    naming the unknown one and the closest known name, and pointing at its column."""
    try:
        _check_names(expr, scenario, where=where)
    except _Unknown as exc:
        raise BadInputError(_at_column(expr.text, where, exc.name, exc.message, exc.last)) from None


class _Unknown(Exception):
    """A name the scenario does not have: the message, and which occurrence to point at."""

    def __init__(self, name: str, message: str, *, last: bool = False) -> None:
        super().__init__(message)
        self.name, self.message, self.last = name, message, last


def _at_column(text: str, where: str, name: str, message: str, last: bool) -> str:
    """``where: message at column N: text with <<here>> before the name`` (as the parser's
    errors read), or without a column when the name cannot be found in the text."""
    found = [m.start() for m in re.finditer(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text)]
    if not found:
        return f"{where}: {message}"
    pos = found[-1] if last else found[0]
    shown = "".join(ch if ch.isprintable() else " " for ch in text)
    return f"{where}: {message} at column {pos + 1}: {shown[:pos]}<<here>>{shown[pos:]}"


def _check_names(expr: SloExpr | GuardExpr, scenario: Scenario, *, where: str) -> None:
    phases = [phase.name for phase in scenario.load.phases]
    faults = [fault.name for fault in scenario.faults]
    metrics = [expr.metric]
    if isinstance(expr, SloExpr) and expr.against is not None:
        metrics.append(expr.against)
    for metric in metrics:
        if isinstance(metric, FaultMetric):
            _known(metric.fault, "fault", faults, where)
            if metric.baseline is not None:
                _known(metric.baseline, "phase", phases, where)
        if isinstance(metric, CheckValue):
            _known(metric.check, "check", [check.name for check in scenario.checks], where)
    if isinstance(expr, GuardExpr):
        return
    window = expr.window
    if window.kind == "phase":
        _known(window.name, "phase", phases, where, last=True)
    elif window.kind == "fault":
        _known(window.name, "fault", faults, where, last=True)
    elif window.kind == "either":
        in_phases, in_faults = window.name in phases, window.name in faults
        if in_phases and in_faults:
            raise _Unknown(
                window.name,
                f'"{window.name}" is both a phase and a fault: write '
                f'"during phase {window.name}" or "during fault {window.name}"',
                last=True,
            )
        if not (in_phases or in_faults):
            _known(window.name, "phase or fault", phases + faults, where, last=True)
        if in_phases and window.after_s:
            raise _Unknown(
                window.name,
                f'"+ N" extends a fault\'s window; "{window.name}" is a phase',
                last=True,
            )


def _known(name: str, what: str, names: Sequence[str], where: str, *, last: bool = False) -> None:
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"?' if close else _listing(what, names)
    raise _Unknown(name, f'unknown {what} "{clip(name)}" ({hint})', last=last)


def _listing(what: str, names: Sequence[str]) -> str:
    if not names:
        return f"the scenario has no {what}s"
    return f"known: {', '.join(names)}"
