"""``summary.json``: the run's verdict for machines. The keys below are a contract: add keys
freely, but rename or retype one only with a new ``format``.

::

    format        1
    scenario      the scenario's name
    run           the run directory's name
    status        how the run ended, as the store says: completed | aborted | interrupted |
                  crashed | running
    outcome       PASS | FAIL | ABORTED | INCOMPLETE (the report's badge)
    passed        outcome == PASS
    exit_code     0 pass, 1 an SLO failed, 3 incomplete (crashed), 4 aborted, 130 interrupted
    started_at    unix seconds (the run directory's creation)
    ended_at      unix seconds, null when the run never recorded an end
    duration_s    ended_at - started_at, or null
    origin        unix seconds of "t = 0": the start of the first phase; every *_s offset
                  below (phases, faults) counts from it
    stack         the stack kind, with the scenario's entry URL when it names one
    error         what went wrong, when the run recorded an error; else null
    notes         things every reader must know (e.g. the SLOs were not judged, and why)
    clients       the User classes that made the load, each with how it retries, as text
                  ("ShopUser (up to 4 attempts, ...)"); empty when the run recorded none
    load_model    {"model": "closed"}, or for the open model also rates ({phase: arrivals/s}),
                  max_in_flight, arrivals and arrivals_dropped (null when not recorded)
    aborted_by    the guard breaches that stopped the run, as text; empty unless aborted
    slos[]        one per SLO of the scenario:
        name, expression, window, detail      strings
        observed      number or null (no data in the window)
        threshold     number, comparator (string: "<", "<=", "==", ...)
        unit          the unit the SLO was written in ("%", "ms", "s", "m", "h" or ""); observed
                      and threshold are in base units whatever it says: a share as a
                      fraction (5% is 0.05), a duration in seconds
        passed        bool; null when judged is false
        judged        false when no verdict covers the SLO (then observed, threshold,
                      comparator, unit and passed are null)
    recoveries[]  one per fault the verdict assessed:
        fault, detail (why, in words), recovered (bool), and numbers or null where the thing
        never happened or was not measured: injected_at, reverted_at, reference_at (what
        recovery counts from), recovered_at (unix seconds), recovery_time_s,
        time_to_first_impact_s, failed_requests (int)
    faults[]      the faults as the events recorded them: name, description, injected_s,
                  reverted_s, reverted (false: still in force when the run ended; reverted_s
                  is then the end of the run), manual (injected by hand on a game day), who
                  (who injected it by hand, else ""), reverted_by (who reverted it by hand)
    checks[]      the post-run checks: name, before, after, delta (null where not read),
                  errors (why a reading is missing)
    totals        the numbers below, over the whole run
    phases[]      one per phase, from its phase_start event to its phase_end:
        name, start_s, end_s, duration_s, users (or null), attempts, requests (logical, done),
        failed, retries, status_503, status_5xx (503 included), no_response, rps (attempts/s),
        ratio_503, p50_ms, p95_ms, p99_ms, retry_amplification (attempts / requests); the
        ratios and percentiles are null when the window had no attempt

Numbers are plain JSON numbers (never NaN or Infinity: those become null).
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from harness.report.data import RunReport
from harness.report.stats import WindowStats

__all__ = ["FORMAT", "KEYS", "render_summary", "summary"]

FORMAT: Final = 1
KEYS: Final = (
    "format",
    "scenario",
    "run",
    "status",
    "outcome",
    "passed",
    "exit_code",
    "started_at",
    "ended_at",
    "duration_s",
    "origin",
    "stack",
    "error",
    "notes",
    "clients",
    "load_model",
    "aborted_by",
    "slos",
    "recoveries",
    "faults",
    "phases",
    "totals",
    "checks",
)


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def _stats(s: WindowStats) -> dict[str, Any]:
    return {
        "name": s.name,
        "start_s": s.start,
        "end_s": s.end,
        "duration_s": s.duration,
        "users": s.users,
        "attempts": s.attempts,
        "requests": s.requests,
        "failed": s.failed,
        "retries": s.retries,
        "status_503": s.status_503,
        "status_5xx": s.status_5xx,
        "no_response": s.errors,
        "rps": _num(s.rps),
        "ratio_503": _num(s.ratio_503),
        "p50_ms": _num(s.p50_ms),
        "p95_ms": _num(s.p95_ms),
        "p99_ms": _num(s.p99_ms),
        "retry_amplification": _num(s.retry_amplification),
    }


def summary(report: RunReport) -> dict[str, Any]:
    """The summary as a dict, keys in :data:`KEYS` order."""
    j = report.judgement
    slos: list[dict[str, Any]] = [
        {
            "name": v.name,
            "expression": v.expression,
            "window": v.window_label,
            "observed": _num(v.observed),
            "threshold": _num(v.threshold),
            "comparator": v.comparator,
            "unit": v.unit,
            "passed": v.passed,
            "judged": True,
            "detail": v.detail,
        }
        for v in j.verdicts
    ]
    slos += [
        {
            "name": s.name,
            "expression": s.expression,
            "window": "",
            "observed": None,
            "threshold": None,
            "comparator": None,
            "unit": None,
            "passed": None,
            "judged": False,
            "detail": "not judged",
        }
        for s in report.unjudged
    ]
    recoveries = [
        {
            "fault": r.fault,
            "injected_at": _num(r.injected_at),
            "reverted_at": _num(r.reverted_at),
            "reference_at": _num(r.reference_at),
            "recovered_at": _num(r.recovered_at),
            "recovered": r.recovered_at is not None,
            "recovery_time_s": _num(r.recovery_time_s),
            "time_to_first_impact_s": _num(r.time_to_first_impact_s),
            "failed_requests": r.failed_requests,
            "detail": r.detail,
        }
        for r in report.recoveries
    ]
    faults = [
        {
            "name": f.name,
            "description": f.description,
            "injected_s": f.start,
            "reverted_s": f.end,
            "reverted": f.reverted,
            "manual": f.manual,
            "who": f.who,
            "reverted_by": f.reverted_by,
        }
        for f in report.series.faults
    ]
    data: dict[str, Any] = {
        "format": FORMAT,
        "scenario": report.scenario,
        "run": report.run_name,
        "status": report.status.value,
        "outcome": report.outcome.value,
        "passed": report.outcome.value == "PASS",
        "exit_code": report.exit_code,
        "started_at": report.started_at,
        "ended_at": report.ended_at,
        "duration_s": report.duration,
        "origin": report.series.origin,
        "stack": report.stack,
        "error": report.error or None,
        "notes": list(report.notes),
        "clients": list(report.clients),
        "load_model": report.load_model.to_json(),
        "aborted_by": list(report.aborted_by),
        "slos": slos,
        "recoveries": recoveries,
        "faults": faults,
        "phases": [_stats(p) for p in report.phases],
        "totals": _stats(report.totals),
        "checks": [
            {
                "name": c.name,
                "before": _num(c.before),
                "after": _num(c.after),
                "delta": _num(c.delta),
                "errors": list(c.errors),
            }
            for c in report.checks
        ],
    }
    assert tuple(data) == KEYS  # the docstring, KEYS and this dict move together
    return data


def render_summary(report: RunReport) -> str:
    # allow_nan=False: a NaN that slipped past _num is a bug to see, not invalid JSON to ship.
    return json.dumps(summary(report), indent=2, allow_nan=False) + "\n"
