"""The Locust side of a run's master process: the Environment, the runner, ``master.json``, the
harness plugin, and the signals that stop it.

The process itself is :mod:`harness.run.master` (``python -m harness.run.master``), which reads
the scenario, builds the guard evaluator, the stack and the fault timeline, and fires the run's
hooks; this module only puts what it is given into Locust. Importing it imports Locust, which
monkey-patches the process with gevent: never import it outside a Locust process.

A Locust ``MasterRunner`` when workers are expected (they connect to the port written to
``master.json``), a ``LocalRunner`` otherwise, which then records its own requests.
"""

from __future__ import annotations

# Locust first: it monkey-patches the standard library, which must happen before anything else
# imports socket, ssl or threading.
import locust  # isort: skip

import signal
from dataclasses import dataclass
from typing import Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from locust.env import Environment
from locust.exception import RPCError
from locust.runners import STATE_RUNNING, STATE_SPAWNING, Runner
from locust.user import User

from harness.errors import InfrastructureError
from harness.exit_codes import ExitCode
from harness.load.guarding import LiveGuards
from harness.load.launch import MasterArgs, write_master_file
from harness.load.lifeline import watch_parent
from harness.load.plan import PhasePlan
from harness.load.plugin import MasterPlugin, RunResult
from harness.load.retry import clients_of, max_attempts_of
from harness.load.shape import PhaseShape
from harness.load.timeline import Timeline
from harness.load.worker_plugin import WorkerPlugin
from harness.record import RunWriter
from harness.scenario import Scenario

__all__ = ["ORPHAN_GRACE_S", "LocustMaster", "MasterSignals", "record_clients"]

# After the harness died: the time the master has to stop its load and revert its faults before
# it ends itself (the harness, alive, would give it as long before killing it).
ORPHAN_GRACE_S = 90.0


class MasterSignals:
    """SIGINT / SIGTERM for the master plugin; those that arrive before it exists wait for it.
    :meth:`install` them first thing: a signal during the start must not be lost.

    SIGHUP says the harness that started this master is gone (its lifeline broke,
    :mod:`harness.load.lifeline`): no one is left to read the run, and whoever killed it wants
    the load gone, so the load stops first, then the faults are reverted (a plain interrupt
    reverts first, under load, so the record shows the healing)."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.parent_gone = False
        self._target: MasterPlugin | None = None

    @classmethod
    def install(cls) -> MasterSignals:
        signals = cls()
        gevent.signal_handler(signal.SIGINT, signals.received, signal.SIGINT)
        gevent.signal_handler(signal.SIGTERM, signals.received, signal.SIGTERM)
        gevent.signal_handler(signal.SIGHUP, signals.received, signal.SIGHUP)
        # After the handlers: the watch's SIGHUP must find this process ready for it.
        watch_parent(grace_s=ORPHAN_GRACE_S, exit_code=ExitCode.INTERRUPTED)
        return signals

    def received(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.parent_gone = True
        if self._target is not None:
            self._target.interrupt(signum)
            if signum == signal.SIGHUP:
                _stop_load_now(self._target)
        else:
            self.pending.append(signum)

    def deliver_to(self, target: MasterPlugin) -> None:
        self._target = target
        for signum in self.pending:
            target.interrupt(signum)


def _stop_load_now(plugin: MasterPlugin) -> None:
    """Stop the users (a master's workers are told to) before the faults are reverted. Only
    a load under way: a runner stopped before it started would start when the plugin runs."""
    runner = plugin.environment.runner
    if runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
        runner.stop()


def record_clients(writer: RunWriter, user_classes: list[type[User]]) -> None:
    """What the run's users are, for the report: their clients, and their largest attempt cap
    (for ``attempt_cap_respected``)."""
    writer.set_meta("clients", clients_of(user_classes))
    max_attempts = max_attempts_of(user_classes)
    if max_attempts is not None:
        writer.set_meta("max_attempts", max_attempts)


@dataclass(frozen=True)
class LocustMaster:
    """A run's Locust master, ready to run: :meth:`create` it, let the run's hooks attach to
    ``environment`` and ``plugin``, then :meth:`run` it."""

    environment: Environment
    runner: Runner
    plugin: MasterPlugin

    @classmethod
    def create(
        cls,
        args: MasterArgs,
        *,
        scenario: Scenario,
        user_classes: list[type[User]],
        writer: RunWriter,
        timeline: Timeline,
        guards: LiveGuards,
    ) -> LocustMaster:
        """The Environment, its runner (listening for workers, ``master.json`` written) and the
        harness plugin installed on it. ``InfrastructureError`` when it cannot listen."""
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
            write_master_file(args.run_dir, host=args.bind_host, port=int(runner.server.port))
        else:
            runner = environment.create_local_runner()
            write_master_file(args.run_dir, host=args.bind_host, port=None)
        plugin = MasterPlugin(
            environment,
            writer=writer,
            plan=plan,
            shape=shape,
            timeline=timeline,
            expected_workers=args.workers,
            guards=guards,
            worker_timeout_s=args.worker_timeout_s,
        )
        plugin.install()
        if args.workers == 0:
            WorkerPlugin(environment).install()  # the local runner records its own requests
        return cls(environment, runner, plugin)

    def run(self, signals: MasterSignals) -> RunResult:
        """Fire Locust's ``init``, hand the signals to the plugin, and run the load to its end
        (faults reverted on every way out); how it ended."""
        events: Any = self.environment.events  # Locust's EventHook methods are unannotated
        events.init.fire(
            environment=self.environment, runner=self.runner, web_ui=self.environment.web_ui
        )
        signals.deliver_to(self.plugin)
        return self.plugin.run()
