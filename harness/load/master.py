"""The Locust master of one run: ``python -m harness.load.master --run-dir DIR --host URL ...``.

Started by ``harness run`` (:mod:`harness.engine`), never imported by it: importing this module
imports Locust, which monkey-patches the process with gevent. It reads the resolved scenario the
CLI left in the run directory, becomes the run store's one writer, and runs the load through
:class:`~harness.load.plugin.MasterPlugin`: a Locust ``MasterRunner`` when workers are expected
(they connect to the port it writes to ``master.json``), a ``LocalRunner`` otherwise.

Exit codes: 0 the run completed · 2 bad input (the locustfile, a guard) · 3 infrastructure (the
stack, the workers, the store) · 4 aborted by a guard (faults reverted) · 130 interrupted (SIGINT
or SIGTERM; faults reverted first) · 1 anything else. The run store says the same in its
``status``; when the master dies before it can write it, the CLI does.
"""

from __future__ import annotations

# Locust first: it monkey-patches the standard library, which must happen before anything else
# imports socket, ssl or threading.
import locust  # isort: skip

import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust.env import Environment
from locust.exception import RPCError
from locust.runners import Runner
from locust.user import User

from harness.errors import BadInputError, HarnessError, InfrastructureError
from harness.exit_codes import ExitCode
from harness.load.entry import configure_logging, load_user_classes
from harness.load.launch import SCENARIO_FILE, MasterArgs, write_master_file
from harness.load.plan import PhasePlan
from harness.load.plugin import (
    MasterPlugin,
    NoFaults,
    PhaseShape,
    RunResult,
    Timeline,
    WorkerPlugin,
)
from harness.load.retry import clients_of, max_attempts_of
from harness.record import RunDir, RunStatus, RunWriter
from harness.safety import guard_sockets, run_policy, stack_hosts
from harness.scenario import Scenario
from harness.stack.base import Stack, StackInfo
from harness.verdict.guards import GuardEvaluator

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = MasterArgs.parse(argv)
    configure_logging("master")
    signals = _Signals()
    gevent.signal_handler(signal.SIGINT, signals.received, signal.SIGINT)
    gevent.signal_handler(signal.SIGTERM, signals.received, signal.SIGTERM)

    try:
        run = RunDir.open(args.run_dir)
        scenario = read_scenario(run)
        # Before the locustfile runs (its import is code too): no connection leaves for a host
        # the scenario did not allow, nor the stack the harness started (harness.safety).
        started: list[str] = []
        policy = run_policy(scenario.allow_targets, args.host, args.toxiproxy_url)
        guard_sockets(policy, extra_hosts=lambda: started)
        user_classes = load_user_classes(scenario.load.locustfile, scenario.load.user_classes)
        # Parsed again here (the CLI checked them): the master runs on the scenario file it
        # reads, and a bad guard must stop it before any load, not halfway.
        guards = GuardEvaluator(scenario.guards)
        stack, info = resolve_stack(args)
        started.extend(stack_hosts(info))
    except HarnessError as exc:
        print(f"harness master: {exc}", file=sys.stderr)
        return exc.exit_code
    if signals.pending:
        return ExitCode.INTERRUPTED  # nothing started: the CLI records the run as interrupted

    with run.writer() as writer:
        try:
            result = _run(args, run, writer, scenario, user_classes, guards, stack, info, signals)
        except HarnessError as exc:
            print(f"harness master: {exc}", file=sys.stderr)
            writer.finish(RunStatus.CRASHED, detail={"error": str(exc)})
            return exc.exit_code
        writer.finish(result.status, detail=result.detail)
    if result.status is RunStatus.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if result.status is RunStatus.ABORTED:
        return ExitCode.ABORTED
    if result.status is RunStatus.COMPLETED:
        return 0
    if result.error is not None:
        print(f"harness master: {result.error}", file=sys.stderr)
        return result.error.exit_code
    return 1


def _run(
    args: MasterArgs,
    run: RunDir,
    writer: RunWriter,
    scenario: Scenario,
    user_classes: list[type[User]],
    guards: GuardEvaluator,
    stack: Stack | None,
    info: StackInfo,
    signals: _Signals,
) -> RunResult:
    writer.set_scenario(scenario.to_dict())
    writer.set_meta("entry_url", args.host)
    writer.set_meta("workers", args.workers)
    writer.set_meta("clients", clients_of(user_classes))
    max_attempts = max_attempts_of(user_classes)
    if max_attempts is not None:
        writer.set_meta("max_attempts", max_attempts)
    with contextlib.ExitStack() as cleanup:
        gameday = bool(args.web_host)
        timeline = build_timeline(scenario, stack, info, writer, cleanup, args.state_dir)
        plan = PhasePlan.from_scenario(scenario)
        shape = PhaseShape(plan)
        environment = Environment(
            user_classes=user_classes,
            shape_class=shape,
            host=args.host,
            events=locust.events,
            # Remote workers without the locustfile ask the master for it (Locust's protocol).
            parsed_locustfiles=[str(scenario.load.locustfile)],
            locustfile=scenario.load.locustfile.name,
        )
        runner: Runner
        if args.workers > 0:
            try:
                runner = environment.create_master_runner(
                    master_bind_host=args.bind_host, master_bind_port=args.bind_port
                )
            except RPCError as exc:
                raise InfrastructureError(
                    f"Locust master: cannot listen on {args.bind_host}:{args.bind_port}: {exc}"
                ) from None
            write_master_file(run.root, host=args.bind_host, port=int(runner.server.port))
        else:
            runner = environment.create_local_runner()
            write_master_file(run.root, host=args.bind_host, port=None)
        master = MasterPlugin(
            environment,
            writer=writer,
            plan=plan,
            shape=shape,
            timeline=timeline,
            expected_workers=args.workers,
            guards=guards,
            worker_timeout_s=args.worker_timeout_s,
        )
        master.install()
        if args.workers == 0:
            WorkerPlugin(environment).install()  # the local runner records its own requests
        if gameday:
            open_gameday(args, run, environment, master, scenario, timeline, stack, info, cleanup)
        if scenario.capacity is not None and scenario.capacity.stop_at_break:
            from harness.capacity.stepstop import watch_steps

            watch_steps(master, run, scenario)  # a capacity search ends at its broken step
        events: Any = environment.events  # Locust's EventHook methods are unannotated
        events.init.fire(environment=environment, runner=runner, web_ui=environment.web_ui)
        signals.deliver_to(master)
        return master.run()


def open_gameday(
    args: MasterArgs,
    run: RunDir,
    environment: Environment,
    master: MasterPlugin,
    scenario: Scenario,
    timeline: Timeline,
    stack: Stack | None,
    info: StackInfo,
    cleanup: contextlib.ExitStack,
) -> None:
    """A game day: Locust's web UI with the chaos tab, until ``cleanup`` closes (after the run's
    faults are reverted: the tab shows them going)."""
    from harness.faults import FaultTimeline
    from harness.gameday.desk import CatalogueEntry, DeskTimeline, EmptyTimeline
    from harness.gameday.session import catalogue_of, gameday_ui

    desk_timeline: DeskTimeline = EmptyTimeline()
    entries: list[CatalogueEntry] = []
    if isinstance(timeline, FaultTimeline):
        builders, entries = catalogue_of(scenario, stack, info)
        timeline.set_catalogue(builders)
        desk_timeline = timeline
    cleanup.enter_context(
        gameday_ui(
            environment,
            master,
            scenario=scenario,
            timeline=desk_timeline,
            catalogue=entries,
            web_host=args.web_host,
            web_port=args.web_port,
            state_dir=args.state_dir,
            run_dir=run.root,
        )
    )


class _Signals:
    """SIGINT / SIGTERM for the master plugin; those that arrive before it exists wait for it."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self._target: MasterPlugin | None = None

    def received(self, signum: int) -> None:
        if self._target is not None:
            self._target.interrupt(signum)
        else:
            self.pending.append(signum)

    def deliver_to(self, target: MasterPlugin) -> None:
        self._target = target
        for signum in self.pending:
            target.interrupt(signum)


def read_scenario(run: RunDir) -> Scenario:
    path = run.root / SCENARIO_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{path}: cannot read the resolved scenario: {exc}") from None
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: not a scenario")
    return Scenario.from_dict(data)


def resolve_stack(args: MasterArgs) -> tuple[Stack | None, StackInfo]:
    """The stack the faults act on, found again from what the CLI passed."""
    if args.stack_kind == "local":
        from harness.stack.local import LocalStack

        if args.state_dir is None:
            raise BadInputError("a local stack needs --state-dir")
        stack = LocalStack(args.state_dir)
        return stack, stack.info()
    if args.stack_kind == "compose":
        from harness.stack.compose import ComposeStack

        try:
            ref = json.loads(args.stack_ref)
        except ValueError:
            ref = None
        if not isinstance(ref, dict):
            raise BadInputError(f"a compose stack needs --stack-ref JSON, got {args.stack_ref!r}")
        compose = ComposeStack.from_ref(ref)
        return compose, compose.info()
    if args.stack_kind == "external":
        info = StackInfo(
            entry_url=args.host,
            toxiproxy_url=args.toxiproxy_url,
            services=(),
            instances=(),
            proxies=(),
            admin_token="",
        )
        return None, info
    raise InfrastructureError(f"stack kind {args.stack_kind!r} is not supported by this harness")


def build_timeline(
    scenario: Scenario,
    stack: Stack | None,
    info: StackInfo,
    writer: RunWriter,
    cleanup: contextlib.ExitStack,
    state_dir: Path | None = None,
) -> Timeline:
    """The scenario's fault timeline on the run's clock, its journal held open (the lock) until
    ``cleanup`` closes; every journal step also becomes a ``fault_*`` event in the run store.
    The journal is in the local stack's state directory, else in ``state_dir`` (compose).
    Catalogue faults (without ``at``) are not scheduled: a game day injects them by hand."""
    if not scenario.faults:
        return NoFaults()
    from harness.faults import FaultTimeline, Journal, faults_of_scenario, run_store_listener
    from harness.stack.local import LocalStack

    if isinstance(stack, LocalStack):
        state_dir = stack.state_dir
    if stack is None or state_dir is None:
        raise BadInputError(
            f"scenario {scenario.name!r}: faults need a stack the harness runs (local or "
            "compose) and its state directory for the fault journal"
        )
    timed = tuple(fault for fault in scenario.faults if fault.at is not None)
    scheduled = faults_of_scenario(timed, scenario.total_duration, stack, info)
    journal = Journal.in_state_dir(state_dir, on_event=run_store_listener(writer))
    cleanup.enter_context(journal)
    # The run's clock (unix time), so start(t0) lines the faults up with the phases.
    return FaultTimeline(scheduled, journal, clock=time.time, sleep=gevent.sleep)


if __name__ == "__main__":
    sys.exit(main())
