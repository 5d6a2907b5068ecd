"""The master's side of the harness inside Locust: run store, phase events, fault timeline, abort
guards, progress line. The phase shape is :mod:`harness.load.shape`, the recorder on every worker
:mod:`harness.load.worker_plugin`; both are exported here too.

Imported only inside Locust processes (:mod:`harness.load.master`, :mod:`harness.load.worker`):
importing it imports Locust, which monkey-patches the process with gevent.

Who does what::

    worker (or the local runner)              master (or the local runner)
    ────────────────────────────              ────────────────────────────
    events.request ─► RequestRecorder         PhaseShape.tick(): users per phase, None at the end
    every second, and once on test_stop:      "harness_buckets" ─► Collector ─► run store
      runner.send_message("harness_buckets")─► phase clock (50 ms): phase_start / phase_end
                                              fault ticker: timeline.tick() when due
                                              guards (1 s): GuardWatch; a breach aborts
                                              progress (1 s): stderr, in place on a TTY
                                              test_stop, quitting, the end: timeline.revert_all()

The fault timeline and the guard evaluator come in as protocols (:class:`~harness.load.timeline.
Timeline`, :class:`~harness.load.guarding.LiveGuards`): the load layer never imports the faults
or the verdict that implement them. The pieces with logic (:mod:`~harness.load.plan`,
:mod:`~harness.load.recording`, :mod:`~harness.load.collector`) are pure Python and unit-tested;
this module only wires them to Locust's events, messages and greenlets.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from gevent.event import Event  # type: ignore[import-untyped]
from locust.env import Environment
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, MasterRunner

from harness.errors import HarnessError, InfrastructureError
from harness.load.collector import Collector
from harness.load.guarding import Breach, GuardWatch, LiveGuards, NoGuards
from harness.load.plan import PhaseMark, PhaseMarks, PhasePlan
from harness.load.progress import ProgressOutput, fault_names, progress_line
from harness.load.recording import MESSAGE_TYPE
from harness.load.shape import PhaseShape
from harness.load.timeline import NoFaults, Timeline
from harness.load.worker_plugin import WorkerPlugin
from harness.record import EventKind, RunStatus, RunWriter
from harness.record.buckets import BUCKETS_PER_SECOND

__all__ = [
    "MasterPlugin",
    "NoFaults",
    "PhaseShape",
    "RunResult",
    "Timeline",
    "WorkerPlugin",
]

logger = logging.getLogger("harness.load")

# The fault ticker sleeps until the timeline's next step is due, or until woken; at most this
# long, so a timeline that forgot to wake it still moves.
TIMELINE_IDLE_S = 1.0
PROGRESS_INTERVAL_S = 1.0
GUARD_CHECK_S = 1.0  # a guard holds "for N s" in whole seconds: checking more often adds nothing
STOP_GRACE_S = 15.0  # for the workers to stop their users and send their final shipment
FINAL_FLUSH_WAIT_S = 5.0
TICKER_STOP_WAIT_S = 30.0  # a fault's inject() in progress when the run ends may take this long


@dataclass
class RunResult:
    """How the master's run ended; ``error`` is the harness error that ended it, if one did."""

    status: RunStatus
    detail: dict[str, Any] = field(default_factory=dict)
    error: HarnessError | None = None


class MasterPlugin:
    """The master's side of a run. :meth:`run` drives it from start to finish and returns how it
    ended; the caller records that with ``writer.finish``."""

    def __init__(
        self,
        environment: Environment,
        *,
        writer: RunWriter,
        plan: PhasePlan,
        shape: PhaseShape,
        timeline: Timeline,
        expected_workers: int,
        guards: LiveGuards | None = None,
        worker_timeout_s: float = 60.0,
        progress: IO[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.environment = environment
        self.writer = writer
        self.plan = plan
        self.shape = shape
        self.timeline = timeline
        self.collector = Collector(writer)
        self.guards = GuardWatch(guards if guards is not None else NoGuards(), writer)
        self.expected_workers = expected_workers
        self.worker_timeout_s = worker_timeout_s
        self.progress = progress if progress is not None else sys.stderr
        # In place on a terminal, a short line every few seconds elsewhere (load.progress).
        self._out = ProgressOutput(self.progress)
        self.clock = clock
        self.marks = PhaseMarks(plan)
        self.t0: float | None = None
        self.interrupted_by: int | None = None
        self.aborted_by: list[Breach] = []
        self._done = Event()
        self._ticking = True
        self._fault_wake = Event()  # the fault ticker ticks at once: the plan changed, or the end
        self._nodes: set[str] = set()
        self._store_errors: list[str] = []
        self._revert_errors: list[str] = []
        self._greenlets: list[Any] = []
        self._last_active: list[str] = []
        # Each shipment's buckets (serialized, after the store took them), for a game day's live
        # board; a person's Stop (a game day's web UI) ends the run as interrupted.
        self.shipment_listeners: list[Callable[[Sequence[Any]], None]] = []
        # Called with t0 once the load's clock has started (harness.run.hooks' load_started).
        # Unlike the shipment listeners', their errors are not caught: one that fails ends the
        # run (crashed, faults reverted) rather than leaving it half-extended.
        self.start_listeners: list[Callable[[float], None]] = []
        self.stopped_by: str | None = None
        # A planned early end that is not a failure (a capacity search's step broke): the run
        # completes with what it played (harness.capacity.stepstop).
        self.ended_early: str | None = None

    # --- wiring ---------------------------------------------------------------------------------

    def install(self) -> None:
        runner = self.environment.runner
        assert runner is not None, "create the runner before installing the plugin"
        runner.register_message(MESSAGE_TYPE, self._on_shipment)
        events: Any = self.environment.events
        # Belt and braces: run() reverts on its way out; these cover a runner stopped otherwise.
        events.test_stop.add_listener(self._revert_on_event)
        events.quitting.add_listener(self._revert_on_event)

    def interrupt(self, signum: int) -> None:
        """SIGINT / SIGTERM: stop the run now (faults reverted first)."""
        if self.interrupted_by is None:
            self.interrupted_by = signum
            logger.warning("signal %d: stopping the run, reverting faults", signum)
        self._done.set()

    def stop_by(self, who: str) -> None:
        """A person stopped the game day (the web UI's Stop): the run ends as interrupted, its
        faults reverted first, like a Ctrl-C."""
        if self.stopped_by is None and not self._done.is_set():
            self.stopped_by = who
            logger.warning("stopped by %s: stopping the run, reverting faults", who)
        self._done.set()

    def end_early(self, reason: str) -> None:
        """End the run now as completed, though phases are left (the load stops, the faults
        are reverted, the phase playing is marked cut short)."""
        if self.ended_early is None and not self._done.is_set():
            self.ended_early = reason
            self._say(f"ending the run early: {reason}")
        self._done.set()

    @property
    def ending(self) -> bool:
        """The run is stopping (or over): no fault may be injected any more."""
        return bool(self._done.is_set())

    def _on_shipment(self, environment: Environment, msg: Any, **_: object) -> None:
        try:
            self.collector.receive(str(msg.node_id), msg.data)
        except HarnessError as exc:
            if not self._store_errors:
                logger.error("recording a shipment failed: %s", exc)
            self._store_errors.append(str(exc))
            return
        # Stored, so well formed: the guards see exactly what the verdict will.
        self.guards.feed(msg.data["buckets"])
        for listener in self.shipment_listeners:
            try:
                listener(msg.data["buckets"])
            except Exception:  # a live view's bug must not cost the run its data
                logger.exception("a shipment listener failed")

    def _revert_on_event(self, **_: object) -> None:
        self._revert()

    def _revert(self) -> None:
        try:
            failures = self.timeline.revert_all()
        except Exception as exc:  # reported in the run's end; the CLI's rollback tries again
            logger.exception("reverting the faults failed")
            self._revert_errors = [f"{type(exc).__name__}: {exc}"]
            return
        # Each call retries what is left: the last one says what is still in force.
        self._revert_errors = [str(failure) for failure in failures]
        for failure in failures:
            logger.error("could not revert a fault: %s", failure)

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Wait for the workers, run the phases, stop; faults reverted on every way out."""
        error: HarnessError | None = None
        try:
            if self._wait_for_workers():
                self._run_phases()
        except HarnessError as exc:
            error = exc
        except BaseException:
            self._out.close()  # the terminal's line ended and cursor shown before the traceback
            raise
        finally:
            if self.aborted_by or self.ended_early is not None:
                # A guard stops the run to spare the system under test: the load that hurts it
                # stops first (its test_stop reverts the faults as well). So does an early end:
                # reverting first would record the healing under load the run no longer wants.
                self._stop_load()
            # Whatever happened above (an exception included), faults are reverted first.
            self._stop_fault_ticker()
            self._revert()
        result = self._finish()
        if error is not None:
            result.status = RunStatus.CRASHED
            result.detail["error"] = str(error)
            result.error = error
        return result

    def _run_phases(self) -> None:
        runner = self.environment.runner
        assert runner is not None
        # The run's clock starts on a bucket boundary, so every phase boundary (whole 100 ms from
        # it) is one too: no bucket holds the end of one phase and the start of the next.
        now = self.clock()
        t0 = math.ceil(now * BUCKETS_PER_SECOND) / BUCKETS_PER_SECOND
        gevent.sleep(max(0.0, t0 - now))
        self.t0 = t0
        self.writer.set_meta("load_started_at", t0)
        self.shape.begin(t0)
        self.timeline.start(t0)
        self._write_marks(self.marks.due(0.0))
        for listener in self.start_listeners:
            listener(t0)
        self._greenlets = [
            gevent.spawn(self._phase_clock),
            gevent.spawn(self._fault_ticker),
            gevent.spawn(self._progress_loop),
        ]
        if self.guards.armed:
            self._greenlets.append(gevent.spawn(self._guard_loop))
        runner.start_shape()
        shape_greenlet = runner.shape_greenlet
        if shape_greenlet is not None:
            gevent.spawn(self._set_when_done, shape_greenlet)
        self._done.wait()

    def _set_when_done(self, greenlet: Any) -> None:
        greenlet.join()
        self._done.set()

    def _wait_for_workers(self) -> bool:
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            self._nodes = {"local"}
            return True
        deadline = self.clock() + self.worker_timeout_s
        said = -1
        while not self._done.is_set():
            ready = list(runner.clients.ready)
            if len(ready) >= self.expected_workers:
                self._nodes = {str(node.id) for node in ready}
                return True
            if len(ready) != said:
                said = len(ready)
                self._say(f"waiting for Locust workers: {said}/{self.expected_workers} connected")
            if self.clock() > deadline:
                raise InfrastructureError(
                    f"only {said} of {self.expected_workers} Locust workers connected within "
                    f"{self.worker_timeout_s:g}s"
                )
            gevent.sleep(0.05)
        return False

    def _phase_clock(self) -> None:
        """Write each phase mark when its time comes: sleep until the next one, not a poll."""
        assert self.t0 is not None
        while (planned := self.marks.next_planned) is not None:
            wait = planned - (self.clock() - self.t0)
            if wait > 0:
                gevent.sleep(min(wait, 1.0))
                continue
            self._write_marks(self.marks.due(self.clock() - self.t0))

    def _fault_ticker(self) -> None:
        """Tick the timeline when its next step is due (a timer, not a poll); its waker (a
        fault injected by hand, a step that ended) makes it tick at once."""
        assert self.t0 is not None
        wake = self._fault_wake
        self.timeline.set_waker(wake.set)
        while self._ticking:
            due = None
            try:
                due = self.timeline.tick()
            except Exception:
                # The timeline reports a fault that failed as an event; an error escaping it is
                # a bug, which must not stop the ticking (and so the reverts) of the other faults.
                logger.exception("fault timeline tick failed")
            wait = TIMELINE_IDLE_S if due is None else due - (self.clock() - self.t0)
            if wait > 0:
                wake.wait(timeout=min(wait, TIMELINE_IDLE_S))
            else:
                gevent.sleep(0)  # overdue already (the tick took that long): let others run
            wake.clear()

    def _stop_fault_ticker(self) -> None:
        """Let a tick in progress finish (so what it journaled is whole), then stop ticking;
        the inject and revert steps it spawned are waited for by ``revert_all``."""
        self._ticking = False
        self._fault_wake.set()
        if self._greenlets:
            ticker = self._greenlets[1]
            ticker.join(timeout=TICKER_STOP_WAIT_S)
            ticker.kill(block=True)

    def _guard_loop(self) -> None:
        """Ask the guards once a second; the first breach ends the run as aborted."""
        while not self._done.is_set():
            gevent.sleep(GUARD_CHECK_S)
            if self._done.is_set():
                return  # stopped meanwhile (a signal, the end): a breach now is not why
            try:
                breaches = self.guards.check(self.clock())
            except HarnessError as exc:  # the store refused the event
                self._store_errors.append(str(exc))
                continue
            except Exception:  # a bug in a guard must not stop the run, nor the other guards
                logger.exception("checking the guards failed")
                continue
            if breaches:
                self.aborted_by = breaches
                for breach in breaches:
                    self._say(f"guard breached: {breach.detail}")
                self._say("aborting the run: stopping the load, reverting faults")
                self._done.set()
                return

    def _progress_loop(self) -> None:
        assert self.t0 is not None
        while True:
            gevent.sleep(PROGRESS_INTERVAL_S)
            now = self.clock()
            self._out.update(self._progress(now))

    def _progress(self, now: float) -> str:
        assert self.t0 is not None
        elapsed = now - self.t0
        runner = self.environment.runner
        return progress_line(
            elapsed=elapsed,
            total=self.plan.total,
            phase=self.plan.at(elapsed),
            phases=len(self.plan.phases),
            users=runner.user_count if runner is not None else 0,
            window=self.collector.window(now - 2.0),
            faults=self._active_faults(),
        )

    def _active_faults(self) -> list[str]:
        """The timeline's active faults, without waiting on a fault step in progress (it holds
        the timeline's lock for as long as an instance takes to restart): then the last known."""
        names = None
        with gevent.Timeout(0.05, False):
            names = fault_names(self.timeline.active())
        if names is not None:
            self._last_active = names
        return self._last_active

    def _say(self, line: str) -> None:
        self._out.say(line)  # never raises: a closed stderr must not end the run

    def _write_marks(self, marks: list[PhaseMark]) -> None:
        assert self.t0 is not None
        now = self.clock()
        for mark in marks:
            kind = EventKind.PHASE_START if mark.kind == "start" else EventKind.PHASE_END
            detail: dict[str, Any] = {
                "index": mark.phase.index,
                "planned": self.t0 + mark.planned,
                "users": mark.phase.users,
                "spawn_rate": mark.phase.spawn_rate,
            }
            if mark.cut_short:
                detail["cut_short"] = True
            # The time it was observed, not the planned one: a late master shows as late.
            try:
                self.writer.event(kind, mark.phase.name, detail, t=now)
            except HarnessError as exc:
                self._store_errors.append(str(exc))

    # --- the end ----------------------------------------------------------------------------------

    def _stop_load(self) -> None:
        runner = self.environment.runner
        assert runner is not None
        if runner.state not in (STATE_STOPPED, STATE_STOPPING, STATE_CLEANUP):
            with gevent.Timeout(STOP_GRACE_S, False):
                runner.stop()

    def _finish(self) -> RunResult:
        runner = self.environment.runner
        assert runner is not None
        self._stop_load()
        self._wait_for_final_shipments()
        for greenlet in self._greenlets:
            greenlet.kill(block=True)
        self._out.close()  # the last progress line stays, the end-of-load line goes below it
        now = self.clock()
        if self.t0 is not None:
            self._write_marks(self.marks.close(now - self.t0))
            # No counts here: the collector's include what users sent while stopping, which no
            # SLO judges; the verdict table's "totals" line gives the record's, over the SLOs'
            # window (harness.report.data).
            self._say(f"load over after {now - self.t0:.1f}s")
        runner.quit()
        return self._result()

    def _wait_for_final_shipments(self) -> None:
        deadline = self.clock() + FINAL_FLUSH_WAIT_S
        while not self._nodes <= set(self.collector.finals) and self.clock() < deadline:
            gevent.sleep(0.05)

    def _result(self) -> RunResult:
        detail: dict[str, Any] = {
            "attempts": self.collector.attempts,
            "errors": self.collector.errors,
        }
        missing = sorted(self._nodes - set(self.collector.finals))
        if missing:
            detail["missing_final_shipments"] = missing
        if self._store_errors:
            detail["store_errors"] = self._store_errors[:10]
        if self._revert_errors:
            detail["revert_errors"] = self._revert_errors
        if self.aborted_by:
            # Whatever else happened on the way out (a signal during the stop), a guard is why
            # the run stopped: the guard loop only fires while the run still goes.
            detail["guards"] = [breach.name for breach in self.aborted_by]
            detail["aborted_by"] = "; ".join(breach.detail for breach in self.aborted_by)
            if self.interrupted_by is not None:
                detail["signal"] = self.interrupted_by
            return RunResult(RunStatus.ABORTED, detail)
        if self.interrupted_by is not None:
            detail["signal"] = self.interrupted_by
            return RunResult(RunStatus.INTERRUPTED, detail)
        if self.stopped_by is not None:
            detail["stopped_by"] = self.stopped_by
            return RunResult(RunStatus.INTERRUPTED, detail)
        if self.t0 is None:
            detail["error"] = "the load never started"
            return RunResult(RunStatus.CRASHED, detail)
        if self.ended_early is not None:
            detail["ended_early"] = self.ended_early
        elif not self.shape.finished:
            detail["error"] = "the load stopped before its last phase ended (every worker quit?)"
            return RunResult(RunStatus.CRASHED, detail)
        if self._store_errors or self._revert_errors:
            detail["error"] = "recording or reverting failed during the run"
            return RunResult(RunStatus.CRASHED, detail)
        return RunResult(RunStatus.COMPLETED, detail)
