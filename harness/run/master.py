"""The Locust master of one run: ``python -m harness.run.master --run-dir DIR --host URL ...``.

Started by the pipeline (:mod:`harness.run.pipeline`), never imported by it: importing this module
imports Locust, which monkey-patches the process with gevent. In order:

    the resolved scenario the pipeline left in the run directory (scenario.json)
    the socket guard (harness.safety), then the locustfile: no connection leaves for a host the
    scenario did not allow, nor the stack the harness started
    the live guard evaluator (harness.verdict), the stack found again, the run's extensions
    the run store's one writer; the fault timeline on its journal (harness.faults)
    Locust's master with the harness plugin (harness.load.master), the hooks fired
    the load, run to its end: faults reverted on every way out; the end recorded

Exit codes: 0 the run completed · 2 bad input (the locustfile, a guard) · 3 infrastructure (the
stack, the workers, the store, an extension) · 4 aborted by a guard (faults reverted) · 130
interrupted (SIGINT or SIGTERM, faults reverted first; or SIGHUP when the harness that started
the master is gone, load stopped first) · 1 anything else. The run store says the
same in its ``status``; when the master dies before it can write it, the pipeline does.
"""

from __future__ import annotations

# Locust first: it monkey-patches the standard library, which must happen before anything else
# imports socket, ssl or threading.
import locust  # isort: skip  # noqa: F401

import contextlib
import json
import sys
import time
from collections.abc import Sequence

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from locust.user import User

from harness.errors import BadInputError, HarnessError
from harness.exit_codes import ExitCode
from harness.faults import (
    FaultTimeline,
    Journal,
    fault_lease,
    faults_of_scenario,
    run_store_listener,
    with_target_policy,
)
from harness.load.entry import configure_logging, load_user_classes
from harness.load.launch import SCENARIO_FILE, MasterArgs
from harness.load.master import LocustMaster, MasterSignals, record_clients
from harness.load.otel import enable_otel
from harness.load.plugin import RunResult
from harness.load.timeline import NoFaults, Timeline
from harness.record import RunDir, RunStatus, RunWriter
from harness.run.hooks import LoadStarted, MasterHooks, MasterRun, load_extensions
from harness.run.stackup import master_stack
from harness.safety import guard_sockets, run_policy
from harness.scenario import Scenario
from harness.stack.base import Stack, StackInfo
from harness.verdict.guards import GuardEvaluator

__all__ = ["build_timeline", "main", "read_scenario"]


def main(argv: Sequence[str] | None = None) -> int:
    args = MasterArgs.parse(argv)
    configure_logging("master")
    signals = MasterSignals.install()

    try:
        run = RunDir.open(args.run_dir)
        scenario = read_scenario(run)
        # Before the locustfile runs (its import is code too): no connection leaves for a host
        # the scenario did not allow, nor the stack the harness started (harness.safety).
        started: list[str] = []
        policy = run_policy(scenario.allow_targets, args.host, args.toxiproxy_url)
        guard_sockets(policy, extra_hosts=lambda: started)
        user_classes = load_user_classes(scenario.load.locustfile, scenario.load.user_classes)
        if args.otel:  # before any user exists, as `locust --otel` does it
            enable_otel(str(scenario.load.locustfile))
        # Parsed again here (the pipeline checked them): the master runs on the scenario file it
        # reads, and a bad guard must stop it before any load, not halfway.
        guards = GuardEvaluator(scenario.guards, failed_statuses=scenario.failed_statuses)
        stack, info = master_stack(args)
        started.extend(info.hosts())
        hooks = load_extensions(args.extensions)
    except HarnessError as exc:
        print(f"harness master: {exc}", file=sys.stderr)
        return exc.exit_code
    if signals.pending:
        return ExitCode.INTERRUPTED  # nothing started: the pipeline records the run as interrupted

    with run.writer() as writer:
        try:
            result = _run(
                args, run, writer, scenario, user_classes, guards, stack, info, hooks, signals
            )
        except HarnessError as exc:
            print(f"harness master: {exc}", file=sys.stderr)
            writer.finish(RunStatus.CRASHED, detail={"error": str(exc)})
            return exc.exit_code
        if signals.parent_gone:  # its lifeline broke: say why no report came with the record
            result.detail["orphaned"] = "the harness process that started the run died"
        writer.finish(result.status, detail=result.detail)
    return _exit_code(result)


def _run(
    args: MasterArgs,
    run: RunDir,
    writer: RunWriter,
    scenario: Scenario,
    user_classes: list[type[User]],
    guards: GuardEvaluator,
    stack: Stack,
    info: StackInfo,
    hooks: MasterHooks,
    signals: MasterSignals,
) -> RunResult:
    writer.set_scenario(scenario.to_dict())
    writer.set_meta("entry_url", args.host)
    writer.set_meta("workers", args.workers)
    record_clients(writer, user_classes)
    with contextlib.ExitStack() as cleanup:
        timeline = build_timeline(scenario, stack, info, writer, cleanup)
        locust_master = LocustMaster.create(
            args,
            scenario=scenario,
            user_classes=user_classes,
            writer=writer,
            timeline=timeline,
            guards=guards,
        )
        ready = MasterRun(
            environment=locust_master.environment,
            master=locust_master.plugin,
            scenario=scenario,
            timeline=timeline,
            stack=stack,
            info=info,
            run_dir=run,
            args=args,
            cleanup=cleanup,
        )
        locust_master.plugin.start_listeners.append(
            lambda t0: hooks.load_started.fire(LoadStarted(ready, t0))
        )
        hooks.master_ready.fire(ready)
        return locust_master.run(signals)


def _exit_code(result: RunResult) -> int:
    if result.status is RunStatus.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if result.status is RunStatus.ABORTED:
        return ExitCode.ABORTED
    if result.status is RunStatus.COMPLETED:
        return ExitCode.OK
    if result.error is not None:
        print(f"harness master: {result.error}", file=sys.stderr)
        return result.error.exit_code
    return 1


def read_scenario(run: RunDir) -> Scenario:
    """The resolved scenario the pipeline left in the run directory."""
    path = run.root / SCENARIO_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{path}: cannot read the resolved scenario: {exc}") from None
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: not a scenario")
    return Scenario.from_dict(data)


def build_timeline(
    scenario: Scenario,
    stack: Stack,
    info: StackInfo,
    writer: RunWriter,
    cleanup: contextlib.ExitStack,
) -> Timeline:
    """The scenario's fault timeline on the run's clock, its journal (in the stack's
    ``journal_dir``) held open (the lock) until ``cleanup`` closes; every journal step also
    becomes a ``fault_*`` event in the run store. Catalogue faults (without ``at``) are not
    scheduled: a game day injects them by hand."""
    if not scenario.faults:
        return NoFaults()
    journal_dir = stack.journal_dir
    if journal_dir is None:
        raise BadInputError(
            f"scenario {scenario.name!r}: faults need a stack the harness runs (local or "
            "compose) and its state directory for the fault journal"
        )
    timed = tuple(fault for fault in scenario.faults if fault.at is not None)
    # The user's own endpoints (the http family) are held to the run's target policy.
    policy = run_policy(scenario.allow_targets, info.entry_url, info.toxiproxy_url)
    scheduled = [
        (with_target_policy(fault, policy), at, until)
        for fault, at, until in faults_of_scenario(timed, scenario.total_duration, stack, info)
    ]
    journal = Journal.in_state_dir(journal_dir, on_event=run_store_listener(writer))
    cleanup.enter_context(journal)
    # Toxics lift themselves if this process dies unreverted (kill -9): renewed until cleanup.
    cleanup.enter_context(
        fault_lease(info.toxiproxy_url, scenario.fault_lease, owner=f"harness run {scenario.name}")
    )
    # The run's clock (unix time), so start(t0) lines the faults up with the phases. Each step
    # in its own greenlet, journaled (an fsync) 0.25 s ahead, called early by what such calls
    # take: the faults are in force on time.
    return FaultTimeline(
        scheduled,
        journal,
        clock=time.time,
        sleep=gevent.sleep,
        spawn=gevent.spawn,
        journal_ahead_s=0.25,
        lead_calls=True,
    )


if __name__ == "__main__":
    sys.exit(main())
