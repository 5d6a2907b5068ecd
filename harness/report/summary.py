"""``summary.json``: the run's verdict for machines. The keys are a contract, published as a
JSON Schema shipped in this package (``summary.schema.json``, :func:`schema`): add keys freely,
but rename or retype one only with a new ``format``.

Every number is in the unit its key or its ``unit`` field names, nothing else: ``*_s`` and
``*_at`` are seconds (``*_at`` unix time), ``*_ms`` milliseconds, ``ratio_*`` and shares a
fraction 0..1 (5% is 0.05), ``rps`` attempts per second; an SLO's ``observed`` and
``threshold`` are in its ``unit``: ``"s"`` (seconds), ``"ratio"`` (a fraction 0..1) or
``"number"`` (a count, attempts per request, a check's reading); ``written_unit`` is the unit
the SLO was written in, which the terminal, HTML and JUnit show the values in. Numbers are
plain JSON numbers (never NaN or Infinity: those become null).

::

    format        2 (1 had "unit" as the written unit beside values in base units)
    scenario      the scenario's name
    run           the run directory's name
    status        how the run ended, as the store says: completed | aborted | interrupted |
                  crashed | running
    outcome       PASS | FAIL | ABORTED | INCOMPLETE (the report's badge)
    passed        outcome == PASS
    exit_code     the exit code of the process that wrote the summary (``harness run``, or
                  ``harness report`` rebuilding it): 0 pass, 1 an SLO failed, 2 bad input,
                  3 infrastructure, 4 aborted, 130 interrupted
    started_at    unix seconds (the run directory's creation)
    ended_at      unix seconds, null when the run never recorded an end
    duration_s    ended_at - started_at, or null
    origin        unix seconds of "t = 0": the start of the first phase; every *_s offset
                  below (phases, faults) counts from it
    stack         the stack kind, with the scenario's entry URL when it names one
    error         what went wrong, when the run recorded an error; else null
    notes         things every reader must know (e.g. the SLOs were not judged, and why)
    clients       the User classes that made the load, each with how it retries, as text
    load_model    {"model": "closed"}, or for the open model also rates ({phase: arrivals/s}),
                  max_in_flight, arrivals and arrivals_dropped (null when not recorded)
    aborted_by    the guard breaches that stopped the run, as text; empty unless aborted
    slos[]        one per SLO of the scenario: name, expression, window, detail (strings),
                  observed (null: no data), threshold, comparator, unit, written_unit, passed,
                  outcome (pass | fail | n/a | no data; null when not judged), judged (false
                  when no verdict covers it: then the numbers are null), worst_window (for
                  ``over any N``: start_at, end_at, start_s, end_s of the worst window, its
                  value in ``unit`` and how many windows were compared; else null)
    recoveries[]  one per fault the verdict assessed: fault, detail, recovered, injected_at,
                  reverted_at, reference_at, recovered_at, recovery_time_s,
                  time_to_first_impact_s, failed_requests, overlapping (the other faults in
                  force before it recovered: its recovery may be theirs)
    faults[]      the faults as the events recorded them: name, description, injected_s,
                  reverted_s (when in force and when lifted), reverted, manual, who,
                  reverted_by, scheduled_s and scheduled_revert_s (when the schedule said;
                  null when not the schedule's step)
    phases[]      one per phase, from its phase_start event to its phase_end: name, start_s,
                  end_s, duration_s, users, attempts, requests, failed, retries, status_503,
                  status_5xx, no_response, rps, ratio_503, p50_ms, p95_ms, p99_ms,
                  retry_amplification
    totals        the same numbers over the whole run: the window a whole-run SLO judges
                  (first phase start to last phase end), so its counts are the SLOs' counts
    outside_window  attempts recorded outside that window (users stopping after the last
                  phase): in the plots, in no count above
    checks[]      the post-run checks: name, before, after, delta, errors

The schema's descriptions say the same, key by key.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any, Final

from harness.report.data import RunReport
from harness.report.model import verdict_outcome
from harness.report.stats import WindowStats
from harness.verdict.units import DURATION_UNITS

__all__ = ["FORMAT", "KEYS", "SCHEMA_FILE", "json_unit", "render_summary", "schema", "summary"]

FORMAT: Final = 2
SCHEMA_FILE: Final = "summary.schema.json"
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
    "outside_window",
    "checks",
)


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of ``summary.json`` (draft 2020-12), read from the package, so it is there
    in an installed wheel too."""
    text = resources.files("harness.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def json_unit(written: str) -> str:
    """The unit an SLO's numbers are stored in, for the unit the SLO was written in: a share
    (``%``) as a ``ratio``, a duration (``ms``, ``s``, ``m``, ``h``) in ``s``, anything without
    a unit as a ``number``; any other unit as written (the value was never converted)."""
    written = written.strip()
    if written == "%":
        return "ratio"
    if written in DURATION_UNITS:
        return "s"
    return written or "number"


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


def _worst(verdict: object, origin: float) -> dict[str, Any] | None:
    """Where an ``over any N`` SLO's worst window was; None for a fixed window. Read by name:
    a verdict of another kind (a test's fake) has none."""
    worst = getattr(verdict, "worst", None)
    if worst is None:
        return None
    return {
        "start_at": worst.start,
        "end_at": worst.end,
        "start_s": worst.start - origin,
        "end_s": worst.end - origin,
        "value": _num(worst.value),
        "windows": worst.windows,
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
            "unit": json_unit(v.unit),
            "written_unit": v.unit,
            "passed": v.passed,
            "outcome": verdict_outcome(v),
            "judged": True,
            "detail": v.detail,
            "worst_window": _worst(v, report.series.origin),
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
            "written_unit": None,
            "passed": None,
            "outcome": None,
            "judged": False,
            "detail": "not judged",
            "worst_window": None,
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
            "overlapping": list(r.overlapping),
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
            "scheduled_s": _num(f.scheduled_start),
            "scheduled_revert_s": _num(f.scheduled_end),
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
        "outside_window": report.outside_window,
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
