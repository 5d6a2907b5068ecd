"""Everything a report shows, read from a run directory once and held in one frozen object.

The HTML, the JUnit file, the JSON summary and the terminal table are all renderings of a
:class:`RunReport`; none of them opens the store itself, so they cannot disagree on what the run
recorded, and each can be tested with a report built in memory.

The scenario is read from the store's meta leniently (plain dict lookups, not the scenario
model): a report must still come out for a run recorded by an older harness, or one that crashed
before it stored its scenario.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.compare import Comparison
from harness.history import HistoryRow, previous_runs
from harness.integrity.readings import CheckValues, check_values
from harness.record import Event, EventKind, RunDir, RunStatus
from harness.record.buckets import BUCKETS_PER_SECOND, Bucket
from harness.record.outcome import DEFINITION, describe_failed
from harness.report.loadmodel import CLOSED, LoadModelInfo, load_model_of
from harness.report.model import (
    JudgementLike,
    Outcome,
    Recovery,
    exit_code,
    outcome_of,
    recovery_of,
)
from harness.report.series import Series, build_series
from harness.report.stats import WindowStats, phase_stats, window_stats
from harness.report.thresholds import slo_thresholds, with_worst

__all__ = ["RunReport", "SloRef", "collect", "outside_window", "slos_of"]


@dataclass(frozen=True)
class SloRef:
    """An SLO as the scenario declares it (before any verdict)."""

    name: str
    expression: str


@dataclass(frozen=True)
class RunReport:
    run_name: str  # the run directory's name
    scenario: str
    description: str
    stack: str  # "local", or "external http://..." when the scenario names its entry URL
    harness_version: str
    status: RunStatus
    outcome: Outcome
    exit_code: int
    started_at: float
    ended_at: float | None
    error: str  # what the run_end event said went wrong, if anything
    judgement: JudgementLike
    recoveries: tuple[Recovery, ...]  # the judgement's, as the report reads them
    unjudged: tuple[SloRef, ...]  # SLOs of the scenario that no verdict covers
    series: Series
    phases: tuple[WindowStats, ...]
    totals: WindowStats
    events: tuple[Event, ...]
    notes: tuple[str, ...]  # said in every rendering (e.g. "the verdict module is missing")
    # The User classes that made the load and how each retries ("ShopUser: up to 4 attempts,
    # ..."): two runs of one scenario with different clients must not read alike.
    clients: tuple[str, ...] = ()
    aborted_by: tuple[str, ...] = ()  # the guard breaches that stopped the run, in words
    # The post-run checks (harness.integrity): readings before the load and after the run.
    checks: tuple[CheckValues, ...] = ()
    # Closed or open (with its rates and dropped arrivals): latencies mean different things.
    load_model: LoadModelInfo = CLOSED
    # Attempts recorded outside the whole-run window of ``totals`` (see data._totals).
    outside_window: int = 0
    # What counts as failed in this run, in one short line (harness.record.outcome).
    failed_rule: str = DEFINITION
    # `harness run --baseline`: the comparison with the baseline run (harness.report.baseline).
    comparison: Comparison | None = None
    # The latest runs of the same scenario before this one, newest first (report trends).
    history: tuple[HistoryRow, ...] = ()

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def slos_of(scenario: Mapping[str, Any]) -> tuple[SloRef, ...]:
    """The SLOs a resolved scenario (its dict form) declares."""
    slos = scenario.get("slos")
    if not isinstance(slos, list):
        return ()
    refs = []
    for slo in slos:
        if isinstance(slo, Mapping) and isinstance(slo.get("name"), str):
            expr = slo.get("expr")
            refs.append(SloRef(slo["name"], expr if isinstance(expr, str) else slo["name"]))
    return tuple(refs)


def _stack_of(scenario: Mapping[str, Any]) -> str:
    stack = scenario.get("stack")
    if not isinstance(stack, Mapping):
        return "unknown"
    kind = str(stack.get("kind", "unknown"))
    url = stack.get("entry_url")
    return f"{kind} {url}" if isinstance(url, str) and url else kind


def _clients_of(meta: Mapping[str, Any], scenario: Mapping[str, Any]) -> tuple[str, ...]:
    """What the master recorded about its User classes; else the classes the scenario names."""
    recorded = meta.get("clients")
    if isinstance(recorded, list):
        clients = []
        for client in recorded:
            if isinstance(client, Mapping) and isinstance(client.get("user_class"), str):
                retries = client.get("retries")
                how = f" ({retries})" if isinstance(retries, str) and retries else ""
                clients.append(f"{client['user_class']}{how}")
        return tuple(clients)
    load = scenario.get("load")
    named = load.get("user_classes") if isinstance(load, Mapping) else None
    return tuple(str(name) for name in named) if isinstance(named, list) else ()


def _breaches_of(events: Sequence[Event]) -> tuple[str, ...]:
    return tuple(
        str(e.detail.get("detail") or e.name) for e in events if e.kind is EventKind.GUARD_BREACH
    )


def _error_of(events: Sequence[Event]) -> str:
    for event in reversed(events):
        if event.kind is EventKind.RUN_END:
            error = event.detail.get("error")
            return str(error) if error else ""
    return ""


def _ended_early(events: Sequence[Event]) -> tuple[str, ...]:
    """Why a run that completed stopped before its last phase (a capacity step broke)."""
    for event in reversed(events):
        if event.kind is EventKind.RUN_END and event.detail.get("ended_early"):
            return (f"ended early, as planned: {event.detail['ended_early']}",)
    return ()


def failed_statuses_of(scenario: Mapping[str, Any]) -> tuple[int, ...]:
    """The statuses a resolved scenario (its dict form) declares failed; anything malformed is
    skipped, as everything read from the store's meta."""
    declared = scenario.get("failed_statuses")
    if not isinstance(declared, list | tuple):
        return ()
    return tuple(code for code in declared if type(code) is int)


def _totals(
    buckets: Sequence[Bucket], series: Series, failed_statuses: tuple[int, ...] = ()
) -> WindowStats:
    """The whole run's numbers over the window a whole-run SLO judges (``harness.verdict``'s
    rundata): from the start of the first phase to the end of the last one, or the end of the
    run if that came first. So the totals, the end-of-run line and ``count(status == 500)``
    count the same attempts; what Locust's users still sent while they stopped after the last
    phase is left out of all of them (:func:`outside_window` says how much).

    A run that recorded no phase (it crashed before the load started) has no such window: then
    everything recorded counts, nothing left out.
    """
    if series.phases:
        return window_stats(
            buckets,
            "whole run",
            0.0,
            min(series.phases[-1].end, series.end),
            origin=series.origin,
            failed_statuses=failed_statuses,
        )
    start = series.x[0] if series.x else 0.0
    last = (buckets[-1].idx + 1) / BUCKETS_PER_SECOND - series.origin if buckets else 0.0
    return window_stats(
        buckets,
        "whole run",
        start,
        max(series.end, last),
        origin=series.origin,
        failed_statuses=failed_statuses,
    )


def outside_window(buckets: Sequence[Bucket], totals: WindowStats) -> int:
    """Attempts recorded outside the whole-run window (before the first phase, or while the
    users stopped after the last): recorded, shown in the plots, judged by no SLO."""
    return sum(b.attempts for b in buckets) - totals.attempts


def _with_reverts(recoveries: tuple[Recovery, ...], series: Series) -> tuple[Recovery, ...]:
    """Recoveries with ``reverted_at`` from the events where the verdict left it out: the
    events are the record of when a fault was reverted."""
    reverted: dict[str, float] = {}
    for span in series.faults:
        if span.reverted:
            reverted.setdefault(span.name, series.origin + span.end)
    return tuple(
        replace(r, reverted_at=reverted[r.fault])
        if r.reverted_at is None and r.fault in reverted
        else r
        for r in recoveries
    )


def collect(
    run_dir: RunDir,
    judgement: JudgementLike,
    *,
    notes: Sequence[str] = (),
    step: float = 1.0,
) -> RunReport:
    """Read the run directory and put it together with ``judgement``."""
    meta = run_dir.meta
    status = run_dir.status
    events = run_dir.events()
    buckets = run_dir.buckets()
    scenario = meta.get("scenario")
    scenario = scenario if isinstance(scenario, Mapping) else {}
    started_at = float(meta.get("started_at", 0.0))
    ended_raw = meta.get("ended_at")
    ended_at = float(ended_raw) if isinstance(ended_raw, int | float) else None
    recoveries = tuple(recovery_of(r) for r in judgement.recoveries)
    series = build_series(
        buckets,
        events,
        started_at=started_at,
        ended_at=ended_at,
        recoveries=recoveries,
        step=step,
    )
    # The SLO limits the plots draw, over the windows the SLOs judge.
    series = replace(
        series,
        thresholds=with_worst(
            slo_thresholds(
                ((s.name, s.expression) for s in slos_of(scenario)),
                run=(series.x[0] if series.x else 0.0, series.end),
                phases=series.phases,
                faults=series.faults,
            ),
            judgement.verdicts,
            series.origin,
        ),
    )
    recoveries = _with_reverts(recoveries, series)
    name = str(meta.get("scenario_name") or scenario.get("name") or "unknown")
    judged = {v.name for v in judgement.verdicts}
    outcome = outcome_of(status, judgement)
    declared = failed_statuses_of(scenario)
    totals = _totals(buckets, series, declared)
    return RunReport(
        run_name=Path(run_dir.root).name,
        scenario=name,
        description=str(scenario.get("description") or ""),
        stack=_stack_of(scenario),
        harness_version=str(meta.get("harness_version", "")),
        status=status,
        outcome=outcome,
        exit_code=exit_code(status, outcome),
        started_at=started_at,
        ended_at=ended_at,
        error=_error_of(events),
        judgement=judgement,
        recoveries=recoveries,
        unjudged=tuple(s for s in slos_of(scenario) if s.name not in judged),
        series=series,
        phases=phase_stats(buckets, series.phases, origin=series.origin, failed_statuses=declared),
        totals=totals,
        events=tuple(events),
        notes=(*notes, *_ended_early(events)),
        clients=_clients_of(meta, scenario),
        aborted_by=_breaches_of(events),
        checks=_checks_of(events, scenario),
        load_model=load_model_of(scenario, events),
        outside_window=outside_window(buckets, totals),
        failed_rule=describe_failed(declared),
        history=previous_runs(Path(run_dir.root), name),
    )


def _checks_of(events: Sequence[Event], scenario: Mapping[str, Any]) -> tuple[CheckValues, ...]:
    declared = scenario.get("checks")
    names = [
        str(c["name"])
        for c in (declared if isinstance(declared, list) else [])
        if isinstance(c, Mapping) and "name" in c
    ]
    return tuple(check_values(events, names).values())
