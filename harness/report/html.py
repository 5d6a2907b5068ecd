"""``report.html``: one self-contained file (inline CSS, plots as base64 PNG, no script, no URL),
so it can be attached to a CI run, mailed, or opened from a file share years later.

The template is package data (``harness/report/templates/report.html.j2``), read through
:mod:`importlib.resources` so it is found from a wheel or a zip as well as from a checkout.
Autoescaping is on for everything: scenario names, SLO expressions, event details and error
messages all come from files a user wrote or from a system under test.

Formatting happens here, in Python, so the template only lays out strings.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Final

import jinja2

from harness.compare import Comparison, comparison_rows, headline
from harness.compare.output import NOISE_METHOD
from harness.record import Event, RunStatus
from harness.report import fmt
from harness.report.data import RunReport
from harness.report.model import VerdictLike, verdict_outcome
from harness.report.plots import PLOTS
from harness.report.series import FaultSpan
from harness.report.stats import WindowStats
from harness.report.terminal import check_rows
from harness.report.trends import trends_context

__all__ = ["TEMPLATE", "detail_value", "load_template", "render_html"]

TEMPLATE: Final = "report.html.j2"
_DETAIL_LIMIT: Final = 240  # characters of an event's detail shown in the timeline
# Keys an event detail repeats from elsewhere in the row, or that only the harness reads.
_DETAIL_HIDDEN: Final = frozenset({"id", "planned", "index", "description", "scheduled"})
# A fault step further than this from its schedule shows the scheduled time beside its own.
_OFF_SCHEDULE_S: Final = 0.010
_DESCRIBED: Final = frozenset({"kind", "target"})  # a fault's description already says them
# A number above this under a ``*_at`` key is a unix time (2001 on), not a duration.
_UNIX_TIME_FLOOR: Final = 1e9


@cache  # parsed and compiled once per process: a rebuild of many reports pays it once
def load_template() -> jinja2.Template:
    source = resources.files("harness.report").joinpath("templates", TEMPLATE).read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.from_string(source)


def _result(v: VerdictLike) -> str:
    outcome = verdict_outcome(v)
    # A "no data" the SLO's no_data: pass lets through is shown as such, not as a pass.
    return "no data (pass)" if outcome == "no data" and v.passed else outcome


def _verdict_rows(report: RunReport) -> list[dict[str, str]]:
    rows = []
    for v in report.judgement.verdicts:
        observed, threshold = fmt.measured_pair(v.observed, v.threshold, v.unit)
        if v.observed is None:  # "n/a" is an outcome of its own: no value is "none" else
            observed = "n/a" if _result(v) == "n/a" else "none"
        rows.append(
            {
                "name": v.name,
                "expression": v.expression if v.expression != v.name else "",
                "window": v.window_label,
                "observed": observed,
                "threshold": f"{v.comparator} {threshold}",
                "result": _result(v),
                "css": "skip" if _result(v) == "n/a" else ("pass" if v.passed else "fail"),
                "detail": v.detail,
            }
        )
    for slo in report.unjudged:
        rows.append(
            {
                "name": slo.name,
                "expression": slo.expression if slo.expression != slo.name else "",
                "window": "",
                "observed": fmt.NA,
                "threshold": "",
                "result": "not judged",
                "css": "skip",
                "detail": "",
            }
        )
    return rows


def _at(t: float | None, origin: float, missing: str) -> str:
    return missing if t is None else fmt.offset(t - origin)


def _fault_rows(report: RunReport) -> list[dict[str, str]]:
    """The recorded faults joined with their recoveries by name (either may lack the other: a
    fault the verdict did not assess, or an assessed fault the events do not show injected)."""
    origin = report.series.origin
    recoveries = {r.fault: r for r in report.recoveries}
    spans: dict[str, FaultSpan] = {}
    repeats: list[tuple[str, FaultSpan]] = []  # a fault injected again (by hand): a row each
    for fault in report.series.faults:
        if fault.name in spans:
            repeats.append((fault.name, fault))
        spans.setdefault(fault.name, fault)
    rows = []
    keys: list[tuple[str, FaultSpan | None]] = [
        (name, spans.get(name)) for name in dict.fromkeys([*spans, *recoveries])
    ]
    for index, (name, span) in enumerate([*keys, *repeats]):
        # The verdict judges a fault's first injection; a repeat's recovery is not judged.
        rec = recoveries.get(name) if index < len(keys) else None
        # The events say when a fault was injected and reverted; the verdict, how it recovered.
        injected = _on_time(span.start, span.scheduled_start) if span else "not injected"
        reverted = (
            _on_time(span.end, span.scheduled_end) if span and span.reverted else "not reverted"
        )
        if rec is None:
            recovery, css, impact, failed, detail = "not judged", "skip", fmt.NA, fmt.NA, ""
        else:
            if span is None:
                injected = _at(rec.injected_at, origin, "not injected")
                reverted = _at(rec.reverted_at, origin, "not reverted")
            if rec.recovered_at is None:
                recovery, css = "never recovered", "fail"
            else:
                recovery, css = fmt.duration(rec.recovery_time_s), "pass"
            impact = (
                "no impact seen"
                if rec.time_to_first_impact_s is None
                else fmt.duration(rec.time_to_first_impact_s)
            )
            failed = fmt.count(rec.failed_requests)
            detail = rec.detail
            if rec.overlapping:
                # Another fault in force before it recovered: the time may be that fault's.
                recovery += f" (overlaps {', '.join(rec.overlapping)})"
                css = "fail" if css == "fail" else "warn"
        rows.append(
            {
                "name": name,
                "description": span.description if span else "",
                # A game day's fault injected by hand: who did it, for the review.
                "manual": f"manual, by {span.who or '?'}" if span and span.manual else "",
                "injected": injected,
                "reverted": reverted,
                "impact": impact,
                "recovery": recovery,
                "css": css,
                "failed": failed,
                "detail": detail,
            }
        )
    return rows


def _on_time(at: float, scheduled: float | None) -> str:
    """When a fault step took effect; with its scheduled time when they differ by more than
    10 ms (a fault's time is judged to the 100 ms bucket: its lateness must be seen)."""
    text = fmt.offset(at)
    if scheduled is None or abs(at - scheduled) <= _OFF_SCHEDULE_S:
        return text
    late = at - scheduled
    word = "late" if late > 0 else "early"
    return f"{text} (due {fmt.offset(scheduled)}, {fmt.ms(abs(late) * 1000)} {word})"


def _phase_row(stats: WindowStats, *, total: bool = False) -> dict[str, str]:
    return {
        "name": stats.name,
        "span": f"{fmt.offset(stats.start)} … {fmt.offset(stats.end)}",
        "users": "" if stats.users is None else str(stats.users),
        "attempts": fmt.count(stats.attempts),
        "requests": fmt.count(stats.requests),
        "rps": fmt.number(stats.rps),
        "ratio_503": fmt.percent(stats.ratio_503),
        "errors": fmt.count(stats.errors),
        "p99": fmt.ms(stats.p99_ms),
        "css": "total" if total else "",
    }


def _rounded(value: Any) -> Any:
    """``value`` with every float in it cut to 4 significant digits (JSON stays JSON)."""
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def detail_value(key: str, value: Any, origin: float) -> str:
    """One value of an event's detail as the timeline shows it: seconds since the run's start
    (``offset``) and unix times (``*_at``) as the At column writes times, ``+40.0s``; other
    numbers to 4 significant digits. Never ``offset=40.04419779777527``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if key == "offset" or key.endswith("_offset"):
            return fmt.offset(value)
        if key.endswith("_at") and value > _UNIX_TIME_FLOOR:
            return fmt.offset(value - origin)
        return fmt.number(value)
    return json.dumps(_rounded(value), separators=(",", ":"), ensure_ascii=False)


def _detail_text(detail: Mapping[str, Any], origin: float = 0.0, t: float | None = None) -> str:
    hidden = _DETAIL_HIDDEN | (_DESCRIBED if "description" in detail else frozenset())
    shown = {k: v for k, v in detail.items() if k not in hidden}
    due = detail.get("scheduled")
    if t is not None and isinstance(due, int | float) and abs(t - due) > _OFF_SCHEDULE_S:
        # A fault step off its schedule: when it was due, and by how much it missed.
        late = t - due
        word = "late" if late > 0 else "early"
        shown["scheduled"] = f"{fmt.offset(due - origin)} ({fmt.ms(abs(late) * 1000)} {word})"
    if not shown:
        return str(detail.get("description", ""))
    text = ", ".join(f"{k}={detail_value(k, v, origin)}" for k, v in shown.items())
    if "description" in detail:
        text = f"{detail['description']}; {text}"
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _event_rows(report: RunReport) -> list[dict[str, str]]:
    origin = report.series.origin
    return [
        {
            "at": fmt.offset(e.t - origin),
            "kind": e.kind.value,
            "name": e.name,
            "detail": _detail_text(e.detail, origin, e.t),
            "css": e.kind.value.split("_")[0],
        }
        # By time: the store's order is the write order, and a late writer (the CLI recording
        # a crash, a rollback) may write an earlier time after a later one.
        for e in sorted(report.events, key=lambda e: (e.t, e.id))
        if not _is_noise(e)
    ]


def _is_noise(event: Event) -> bool:
    # fault_journaled precedes fault_injected by a millisecond and says nothing more.
    return event.kind.value == "fault_journaled"


def _crash_note(report: RunReport) -> str:
    """For a run that never recorded its end, what the page shows and what may be left behind.

    Only a writer that died says nothing: the Locust master records every end it lives through,
    and `harness run` records a master that died. So both were killed (SIGKILL, the OOM killer,
    a machine that stopped), and with them whatever would have reverted the faults.
    """
    if report.ended_at is not None or report.status is not RunStatus.CRASHED:
        return ""
    return (
        "The run recorded no end: `harness run` and its Locust master were killed (or the "
        f"machine stopped) about {fmt.offset(report.totals.end)} into the run. Below is "
        "everything it recorded up to then. Faults it had in force may still be: `harness "
        "rollback` reverts them."
    )


def _badge_caption(report: RunReport) -> str:
    j = report.judgement
    failed = sum(1 for v in j.verdicts if not v.passed)
    parts = [f"{len(j.verdicts)} SLOs judged, {failed} failed"]
    if report.unjudged:
        parts.append(f"{len(report.unjudged)} not judged")
    return " · ".join(parts)


def context(report: RunReport, plots: Mapping[str, bytes]) -> dict[str, Any]:
    """What the template is given: strings (and lists of dicts of strings) only."""
    return {
        "title": f"{report.scenario}: {report.outcome.value}",
        "scenario": report.scenario,
        "description": report.description,
        "run_name": report.run_name,
        "stack": report.stack,
        "started": fmt.utc(report.started_at),
        "ended": fmt.utc(report.ended_at) if report.ended_at is not None else "did not end",
        "duration": fmt.duration(report.duration),
        "status": report.status.value,
        "outcome": report.outcome.value,
        "outcome_css": report.outcome.value.lower(),
        "badge_caption": _badge_caption(report),
        "exit_code": str(report.exit_code),
        "error": report.error,
        "crash_note": _crash_note(report),
        "notes": list(report.notes),
        "clients": ", ".join(report.clients) or "not recorded",
        "load_model": report.load_model.text,
        "aborted_by": list(report.aborted_by),
        "verdicts": _verdict_rows(report),
        "faults": _fault_rows(report),
        "failed_rule": report.failed_rule,
        "checks": [
            dict(zip(("name", "before", "after", "delta", "error"), row, strict=True))
            for row in check_rows(report)
        ],
        "phases": [_phase_row(p) for p in report.phases],
        "totals": _phase_row(report.totals, total=True),
        "plots": [
            {
                "title": title,
                "alt": f"{title} over the run",
                "data": base64.b64encode(plots[stem]).decode("ascii"),
            }
            for stem, title, _ in PLOTS
            if stem in plots
        ],
        "events": _event_rows(report),
        "comparison": comparison_context(report.comparison),
        "trends": trends_context(report),
        "harness_version": report.harness_version,
        "generated": fmt.utc(time.time()),
    }


def render_html(report: RunReport, plots: Mapping[str, bytes]) -> str:
    """The whole page."""
    return load_template().render(context(report, plots))


def comparison_context(comparison: Comparison | None) -> dict[str, Any] | None:
    """The section of ``harness run --baseline``: the comparison's table, as strings."""
    if comparison is None:
        return None
    css = {"regression": "fail", "ok": "pass", "improved": "pass"}
    return {
        "headline": headline(comparison),
        "noise": NOISE_METHOD,
        "rows": [
            {**row, "css": css.get(row["status"], "skip")} for row in comparison_rows(comparison)
        ],
    }
