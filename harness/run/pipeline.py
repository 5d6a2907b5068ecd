"""The one pipeline that owns a run: scenario → stack → load + faults → record → verdict → report.
``harness run``, ``harness gameday``, ``harness capacity``, :mod:`harness.testing` and the pytest
plugin all come through :func:`run`, in the caller's own process (no Locust, no gevent here).

::

    this process (run)                        python -m harness.run.master    (Locust master)
    ──────────────────                        ─────────────────────────────
    preflight (= validate); ports free        reads scenario.json, opens the run store (the one
    stack up, or one up set as asked          writer), listens for workers, writes master.json,
    RunDir.create; post-run checks "before"   fires the run's hooks (extensions: game day,
    scenario.json; spawn the master ────────► capacity), runs the phases and the fault timeline,
    spawn N workers (once master.json says    reverts every fault on its way out, records how
      where it listens) ────────────────────► it ended        python -m harness.load.worker
    forward SIGINT / SIGTERM to the master    (a guard's breach: the master stops the load,
    wait for the master; stop the workers      reverts its faults, and records "aborted")
    settle: the master died without recording an end? roll back pending faults, record the run
      as crashed (or interrupted); post-run checks "after"
    conclude: judge the run, write summary.json, junit.xml, report.html; the verdict table
    the exit code: 0 every SLO met · 1 one failed · 4 aborted · 130 interrupted · 3 crashed

The Locust processes run in their own sessions, so a Ctrl-C at the terminal reaches this process
only, which forwards it to the master: the master stops the load and reverts the faults itself,
and stops the workers. Every child is stopped (by PID) before :func:`run` returns.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Final

from rich.console import Console

from harness.faults import check_fault_env
from harness.load.launch import MasterArgs
from harness.record import RunDir
from harness.run.children import (
    MASTER_OVERRUN_S,
    MASTER_START_TIMEOUT_S,
    Children,
    run_locust,
)
from harness.run.conclude import conclude
from harness.run.postchecks import POST_CHECK_SETTLE_S, check_target, record_post_checks
from harness.run.preflight import check_catalogue_faults, preflight, resolve_scenario
from harness.run.request import RunOutcome, RunRequest, ScenarioOverrides
from harness.run.settle import settle
from harness.run.signals import Signals
from harness.run.stackup import RunStack, stack_up
from harness.safety import run_policy
from harness.scenario import Scenario

__all__ = ["LIVE_METRICS_EXTENSION", "run", "run_file"]

# The module the master imports for --metrics-port (it imports gevent: never imported here).
LIVE_METRICS_EXTENSION: Final = "harness.run.live_metrics"


def run(
    scenario: Scenario,
    request: RunRequest | None = None,
    *,
    say: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Run a validated scenario from start to verdict. Raises :class:`BadInputError` (bad
    scenario or flags), :class:`InfrastructureError` (the stack would not start) or
    ``KeyboardInterrupt`` (interrupted before the run directory existed); anything later is in
    the outcome.

    ``say`` gets the progress lines (stderr by default); ``console`` the verdict table at the
    end (stdout by default). ``request``: None, a plain run with the defaults."""
    request = request or RunRequest()
    tell = say or _stderr
    # Everything checkable before anything starts (as `harness validate`), then what a run
    # adds: no stack is started and no run directory made until these pass.
    chosen = preflight(scenario, request).stack
    check_catalogue_faults(scenario, request)
    check_fault_env(scenario.faults)  # a ${VAR} a fault needs is set now, not when it is due
    chosen.check_ports()  # a taken port: one line naming it and its flag (exit 3)
    with Signals() as signals:
        stack = stack_up(chosen, scenario, tell)
        try:
            return _run_on(stack, scenario, request, signals, tell, console)
        finally:
            # What the run started for itself only (a front proxy), once every fault is reverted.
            chosen.release()


def _run_on(
    stack: RunStack,
    scenario: Scenario,
    request: RunRequest,
    signals: Signals,
    tell: Callable[[str], None],
    console: Console | None,
) -> RunOutcome:
    """The run on a stack that is up: the load and its faults, recorded, then judged."""
    entry_url = stack.info.entry_url
    run_dir = RunDir.create(request.reports, scenario.name)
    tell(f"run directory: {run_dir.root}")
    checks = check_target(
        entry_url,
        stack.info,
        stack.compose_project,
        run_policy(scenario.allow_targets, entry_url),
    )
    # The baseline of the post-run checks, before any load: their deltas are the run's.
    record_post_checks(run_dir, scenario, checks, "before", tell)
    deadline = (
        time.monotonic()
        + MASTER_START_TIMEOUT_S
        + request.worker_timeout_s
        + scenario.total_duration
        + MASTER_OVERRUN_S
        + (request.metrics_linger_s if request.metrics_port is not None else 0.0)
    )
    with Children() as children:
        master_rc = run_locust(
            children,
            signals,
            run_dir=run_dir,
            scenario=scenario,
            master_args=_master_args(scenario, request, stack, run_dir, entry_url),
            deadline=deadline,
            tell=tell,
        )
    settled = settle(
        run_dir,
        master_rc,
        interrupted=bool(signals.received),
        state_dir=stack.journal_dir,
        tell=tell,
    )
    # Every fault is reverted by now (or the run says it is not): read the checks again,
    # giving a stack that is still healing (an instance restarting) time to answer.
    record_post_checks(
        run_dir,
        scenario,
        checks,
        "after",
        tell,
        settle_s=0.0 if signals.received else POST_CHECK_SETTLE_S,
    )
    # Still under the signal handlers: a second Ctrl-C is noted, and cannot cut the report
    # of an interrupted run short.
    return conclude(settled, scenario, tell=tell, console=console, baseline=request.baseline)


def run_file(
    path: Path,
    request: RunRequest | None = None,
    overrides: ScenarioOverrides | None = None,
    *,
    say: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """:func:`run` for a caller holding a scenario file: read with ``overrides`` applied
    (:func:`~harness.run.preflight.resolve_scenario`), and named in the messages."""
    request = request or RunRequest()
    scenario = resolve_scenario(path, overrides)
    return run(
        scenario, replace(request, source=request.source or str(path)), say=say, console=console
    )


def _master_args(
    scenario: Scenario, request: RunRequest, stack: RunStack, run_dir: RunDir, entry_url: str
) -> MasterArgs:
    return MasterArgs(
        run_dir=run_dir.root.absolute(),
        host=entry_url,
        state_dir=request.state_dir.absolute(),
        stack_ref=stack.ref,
        toxiproxy_url=scenario.stack.toxiproxy_url or "",
        workers=scenario.load.workers + request.remote_workers,
        bind_host=request.master_bind,
        bind_port=request.master_port,
        worker_timeout_s=request.worker_timeout_s,
        web_host=request.web_host,
        web_port=request.web_port,
        extensions=_extensions(request),
        metrics_host=request.metrics_host,
        metrics_port=-1 if request.metrics_port is None else request.metrics_port,
        metrics_linger_s=request.metrics_linger_s,
        metrics_fallback=request.metrics_fallback,
        otel=request.otel,
    )


def _extensions(request: RunRequest) -> tuple[str, ...]:
    """The request's extensions, and the live metrics endpoint's when a port was asked for
    (named, not imported: it runs in the master)."""
    if request.metrics_port is None or LIVE_METRICS_EXTENSION in request.extensions:
        return request.extensions
    return (*request.extensions, LIVE_METRICS_EXTENSION)


def _stderr(line: str) -> None:
    print(f"harness: {line}", file=sys.stderr, flush=True)
