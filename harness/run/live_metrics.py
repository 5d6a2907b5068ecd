"""The run's live metrics endpoint: a run extension (:mod:`harness.run.hooks`) that serves the
families of :mod:`harness.load.live_metrics` over HTTP from the Locust master, for Prometheus.

Imported by the master only (``--extension harness.run.live_metrics``, added by the pipeline
when ``RunRequest.metrics_port`` is set): it imports gevent. What it wires::

    shipment listener   every stored shipment's buckets ─► LiveTotals (the counters, the windows)
    refresher (0.5 s)   phase, users, faults (the timeline's views), guards and SLOs (the
                        verdict's own measures) ─► the LiveState the scrapes read
    gevent WSGI server  prometheus_client's WSGI app on a private registry: text or OpenMetrics
                        as the scraper's Accept header asks
    the run's cleanup   (after the final shipments are in and every fault reverted) a final
                        refresh, ``harness_load_finished 1``, then the endpoint stays up until
                        one scrape has read those final values, for ``--metrics-linger`` at
                        most, and only when someone scraped it during the run: Prometheus
                        scrapes every 15 s by default, and the last seconds of a run are the
                        ones a game day wants to see settle. An interrupted run does not wait.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Final

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from gevent.event import Event  # type: ignore[import-untyped]
from gevent.pywsgi import WSGIServer  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, make_wsgi_app

from harness.errors import InfrastructureError
from harness.faults import FaultTimeline
from harness.load.live_metrics import CheckGauge, FaultGauge, LiveState, LiveTotals, RunMetrics
from harness.run.hooks import MasterHooks, MasterRun
from harness.safety import is_loopback
from harness.verdict.checks import parse_checks
from harness.verdict.guards import DEFAULT_SETTLE_S
from harness.verdict.metrics import measure_buckets
from harness.verdict.model import GuardExpr, SloExpr, compare

__all__ = ["LiveView", "MetricsEndpoint", "attach", "open_live_metrics"]

logger = logging.getLogger("harness.load")

REFRESH_S: Final = 0.5  # "at least every second", with room for a busy master
SLO_WINDOW_S: Final = 30.0  # as the game day's live board (harness.gameday.live)
FAULT_VIEW_WAIT_S: Final = 0.05  # a fault step in progress holds the timeline's lock


def attach(hooks: MasterHooks) -> None:
    hooks.master_ready.add_listener(open_live_metrics)


def open_live_metrics(run: MasterRun) -> None:
    """Serve the run's metrics until its cleanup closes. Nothing unless a port was asked for."""
    args = run.args
    if args.metrics_port < 0:
        return
    totals = LiveTotals()
    run.master.shipment_listeners.append(totals.add)
    view = LiveView(run, totals)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunMetrics(totals, view.state))

    def finished() -> bool:  # whether a scrape now reads the final values
        return view.state().finished

    endpoint = MetricsEndpoint(registry, args.metrics_host, args.metrics_port, finished)
    try:
        endpoint.start()
    except InfrastructureError:
        if not args.metrics_fallback:
            raise
        endpoint = MetricsEndpoint(registry, args.metrics_host, 0, finished)
        endpoint.start()
        _say(f"port {args.metrics_port} is taken: the live metrics moved to a free port")
    refresher = gevent.spawn(_refresh_loop, view)

    def close() -> None:
        refresher.kill(block=True)
        try:
            view.refresh(final=True)
            endpoint.serve_final(args.metrics_linger_s, cut=lambda: _interrupted(run))
        except Exception:  # the run's end (its faults' journal, its record) goes on regardless
            logger.exception("the live metrics' final refresh failed")
        finally:
            endpoint.stop()

    run.cleanup.callback(close)
    _say(f"live metrics: {endpoint.url}")
    if not is_loopback(args.metrics_host):
        _say(f"live metrics listen on {args.metrics_host}: other machines can read them")


class LiveView:
    """The run as the last refresh saw it: phase, users, faults, guards, SLOs."""

    def __init__(self, run: MasterRun, totals: LiveTotals) -> None:
        self._run = run
        self._totals = totals
        checks = parse_checks(run.scenario)
        self._slos = checks.slos
        self._guards = checks.guards
        self._failed = tuple(run.scenario.failed_statuses)
        self._actions = {fault.name: fault.action for fault in run.scenario.faults}
        # Every fault of the scenario is known from the start (0 until in force): scheduled
        # ones by their schedule, catalogue ones (no `at`) as a person would inject them.
        self._faults: dict[tuple[str, str], bool] = {
            (fault.name, "scheduled" if fault.at is not None else "manual"): False
            for fault in run.scenario.faults
        }
        self._phases = tuple(phase.name for phase in run.master.plan.phases)
        self._state = LiveState(phases=self._phases)

    def state(self) -> LiveState:
        return self._state

    def refresh(self, *, final: bool = False) -> None:
        master = self._run.master
        now = master.clock()
        elapsed = None if master.t0 is None else now - master.t0
        phase = None if elapsed is None or final else master.plan.at(elapsed)
        runner = self._run.environment.runner
        self._state = LiveState(
            phases=self._phases,
            phase=phase.name if phase is not None else None,
            elapsed_s=elapsed,
            users=0 if final or runner is None else int(runner.user_count),
            users_target=phase.users if phase is not None else None,
            planned_rate=phase.rate if phase is not None else None,
            finished=final,
            faults=self._fault_gauges(),
            guards=tuple(self._guard(g, now) for g in self._guards),
            slos=tuple(self._slo(s, now, phase.name if phase else None) for s in self._slos),
            at=now,
        )

    def _fault_gauges(self) -> tuple[FaultGauge, ...]:
        timeline = self._run.timeline
        if isinstance(timeline, FaultTimeline):
            views = None
            with gevent.Timeout(FAULT_VIEW_WAIT_S, False):
                views = timeline.views()
            if views is not None:  # else: a fault step holds the lock, keep the last known
                for key in self._faults:
                    self._faults[key] = False
                for fault in views:
                    key = (fault.name, "manual" if fault.manual else "scheduled")
                    self._faults[key] = self._faults.get(key, False) or fault.state == "active"
        return tuple(
            FaultGauge(name, self._actions.get(name, ""), source, active)
            for (name, source), active in sorted(self._faults.items())
        )

    def _active(self) -> set[str]:
        return {name for (name, _), active in self._faults.items() if active}

    def _guard(self, guard: GuardExpr, now: float) -> CheckGauge:
        gauge = CheckGauge(
            guard.name, _kind(guard.metric), guard.text, None, guard.threshold.value, "no_data"
        )
        if guard.name in {breach.name for breach in self._run.master.aborted_by}:
            return replace(gauge, state="breached")
        last = self._totals.recent(now, 1.0, settle_s=DEFAULT_SETTLE_S)
        value = measure_buckets(guard.metric, last, self._failed).value
        if value is None:
            return gauge
        holds = compare(value, guard.comparator, guard.threshold.value)
        return replace(gauge, value=value, state="holding" if holds else "ok")

    def _slo(self, slo: SloExpr, now: float, phase: str | None) -> CheckGauge:
        gauge = CheckGauge(slo.name, _kind(slo.metric), slo.text, None, slo.threshold.value, "")
        if not slo.metric.per_bucket or slo.against is not None:
            return replace(gauge, state="at_end")  # needs the whole run: judged at the end
        scope = slo.window
        if scope.kind != "run":
            now_in = (scope.kind in ("phase", "either") and scope.name == phase) or (
                scope.kind in ("fault", "either") and scope.name in self._active()
            )
            if not now_in:
                return replace(gauge, state="not_now")
        buckets = self._totals.recent(now, SLO_WINDOW_S, settle_s=DEFAULT_SETTLE_S)
        measurement = measure_buckets(slo.metric, buckets, self._failed)
        if measurement.value is None:
            state = {"n/a": "n_a", "fail": "fail"}.get(measurement.missing, "no_data")
            return replace(gauge, state=state)
        passed = compare(measurement.value, slo.comparator, slo.threshold.value)
        return replace(gauge, value=measurement.value, state="pass" if passed else "fail")


class MetricsEndpoint:
    """prometheus_client's WSGI app on gevent's server; counts the scrapes it answers, and
    notes the first that served the final values (``finished()`` true: nothing changes after)."""

    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, finished: Callable[[], bool]
    ) -> None:
        self._app = make_wsgi_app(registry)
        self._host = host
        self._server = WSGIServer((host, port), self._serve, log=None)
        self.scrapes = 0
        self._finished = finished
        self._final_read = Event()

    def start(self) -> None:
        try:
            self._server.start()
        except OSError as exc:
            # gevent's strerror repeats the address: the system's words for the errno alone.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise InfrastructureError(
                f"live metrics cannot listen on {self._host}:{self._server.server_port} "
                f"({reason}); choose another with --metrics-port"
            ) from None

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._server.server_port}/metrics"

    def _serve(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        final = self._finished()  # read first: this scrape's values are at least as new
        body: Iterable[bytes] = self._app(environ, start_response)
        self.scrapes += 1
        if final:
            self._final_read.set()
        return body

    def serve_final(self, linger_s: float, *, cut: Callable[[], bool]) -> None:
        """The final values are in place (``finished()``): wait until one scrape read them,
        ``linger_s`` at most; not at all when nobody scraped the run, or when ``cut()`` says it
        is stopping."""
        if linger_s <= 0 or not self.scrapes or cut():
            return
        deadline = time.monotonic() + linger_s
        while not self._final_read.is_set() and not cut():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._final_read.wait(timeout=min(left, 0.2))

    def stop(self) -> None:
        self._server.stop(timeout=2.0)  # a scrape being answered finishes first


def _refresh_loop(view: LiveView) -> None:
    while True:
        try:
            view.refresh()
        except Exception:  # a bug in a live view must not end the run, nor its recording
            logger.exception("refreshing the live metrics failed")
        gevent.sleep(REFRESH_S)


def _interrupted(run: MasterRun) -> bool:
    return run.master.interrupted_by is not None or run.master.stopped_by is not None


_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def _kind(metric: object) -> str:
    """``RetryAfterShare`` -> ``retry_after_share``: what kind of measure a check is."""
    return _CAMEL.sub("_", type(metric).__name__).lower()


def _say(line: str) -> None:
    print(f"harness: {line}", file=sys.stderr, flush=True)
