"""The open load model: requests start at a target arrival rate, whatever the answers do.

A closed model (Locust's users, each waiting for its answer before the next request) slows down
when the system stalls, so it stops asking exactly when asking would show the stall: coordinated
omission. Here arrivals follow the schedule; each runs in its own greenlet, and the latency of
its first request counts from the *intended* send time (:data:`~harness.load.recording.
INTENDED_KEY`), so time spent waiting for a free slot counts too.

    from locust import task
    from harness.load.open_model import OpenModelUser

    class Shopper(OpenModelUser):         # with load.model: open and a rate per phase
        @task
        def browse(self):
            self.client.get("/products")

How it runs: the shape (``harness.load.plan``) keeps ``drivers`` users up, one per load process.
Each driver takes 1/drivers of the phases' rates (:class:`ArrivalSchedule`, evenly spaced
arrivals), and at each arrival starts one of its tasks (by weight) in a pool of at most
``max_in_flight / drivers`` greenlets that grows as answers get slow. An arrival that finds the
pool full is dropped and counted (:data:`~harness.load.recording.ARRIVALS`), never sent late.

Where the schedule comes from: the master's :class:`~harness.load.plugin.PhaseShape` (the run's
start ``t0`` and the phases); in a single process the drivers read it there, and a master sends
it to its workers as a ``harness_open_plan`` message before their users start.

Importing this module imports Locust (and gevent's monkey-patching); the plain-Python pieces,
:class:`~harness.load.plan.ArrivalSchedule` and :class:`~harness.load.plan.OpenPlan`, live in
:mod:`harness.load.plan`.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Final

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from gevent.event import Event  # type: ignore[import-untyped]
from gevent.pool import Pool  # type: ignore[import-untyped]
from locust import FastHttpUser, events
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from harness.load.plan import ArrivalSchedule, OpenPlan
from harness.load.recording import ARRIVALS, INTENDED_KEY

__all__ = ["MESSAGE_TYPE", "OpenModelUser"]

MESSAGE_TYPE: Final = "harness_open_plan"
PLAN_WAIT_S: Final = 30.0  # for the master's plan to reach a worker's driver

logger = logging.getLogger("harness.load")


class _PlanHolder:
    """The plan of the run this process takes part in (one run per process)."""

    def __init__(self) -> None:
        self.plan: OpenPlan | None = None
        self.ready = Event()

    def set(self, plan: OpenPlan) -> None:
        self.plan = plan
        self.ready.set()


_HOLDER = _PlanHolder()


def _plan_of(environment: Environment) -> OpenPlan | None:
    """The open plan of the run's shape, when it is a harness PhaseShape of the open model."""
    shape: Any = environment.shape_class
    plan = getattr(shape, "plan", None)
    t0 = getattr(shape, "t0", None)
    if plan is None or t0 is None or getattr(plan, "model", "closed") != "open":
        return None
    return OpenPlan(
        t0=float(t0),
        phases=tuple(plan.arrivals()),
        drivers=int(plan.drivers),
        max_in_flight=int(plan.max_in_flight),
    )


def _on_init(environment: Environment, **_: object) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(MESSAGE_TYPE, _on_plan)


def _on_plan(environment: Environment, msg: Any, **_: object) -> None:
    """A worker's copy of the master's plan (Locust passes both by keyword)."""
    _HOLDER.set(OpenPlan.from_message(msg.data))


def _on_test_start(environment: Environment, **_: object) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    plan = _plan_of(environment)
    if plan is None:
        return
    _HOLDER.set(plan)
    if isinstance(runner, MasterRunner):
        # Before Locust's spawn messages (test_start fires first), on the same socket.
        runner.send_message(MESSAGE_TYPE, plan.to_message())


# Locust's EventHook methods are unannotated; registered at import, as a Locust plugin does, so
# every process that loads a locustfile using this module takes part.
_events: Any = events
_events.init.add_listener(_on_init)
_events.test_start.add_listener(_on_test_start)


class OpenModelUser(FastHttpUser):
    """A driver of the open model: its tasks are what one arrival does (picked by weight). The
    first request of an arrival is timed from the arrival's intended send time; any further
    requests of the same task from their own start."""

    abstract = True
    # The HTTP client's connection pool must not be the hidden limit on arrivals in flight:
    # it is made as large as the driver's pool when the plan is known.
    concurrency = 1000
    connection_timeout = 5.0
    network_timeout = 10.0

    def context(self) -> dict[str, Any]:
        greenlet: Any = gevent.getcurrent()
        intended = getattr(greenlet, "harness_intended", None)
        if intended is None:
            return {}
        greenlet.harness_intended = None  # only the request that starts the arrival
        return {INTENDED_KEY: intended}

    # Locust marks run() final; a driver must replace the closed loop of tasks and waits.
    def run(self) -> None:  # type: ignore[misc]
        if not _HOLDER.ready.wait(timeout=PLAN_WAIT_S) or _HOLDER.plan is None:
            logger.error(
                "open model: no arrival plan (load.model: open, run by the harness?); idle"
            )
            gevent.sleep(1e9)
            return
        plan = _HOLDER.plan
        pool = Pool(size=plan.pool_size)
        schedule = ArrivalSchedule(
            plan.t0, plan.phases, share=1.0 / plan.drivers, offset=random.random()
        )
        tasks = list(self.tasks)
        if not tasks:
            raise StopUser()
        # The runner stops a driver by killing its greenlet (GreenletExit): it must leave run()
        # then, not linger, or the runner's stop waits for it.
        try:
            self.on_start()
            for intended in schedule:
                wait = intended - time.time()
                if wait > 0:
                    gevent.sleep(wait)
                ARRIVALS.arrivals += 1
                if pool.full():
                    ARRIVALS.dropped += 1
                    continue
                pool.spawn(self._arrive, random.choice(tasks), intended)
            # The schedule is over (the last phase ended): let the last answers come in, then
            # wait to be stopped (returning would make Locust count a user that finished).
            pool.join(timeout=self.network_timeout)
            gevent.sleep(1e9)
        except StopUser:
            pass
        finally:
            pool.kill(block=False)
            self.on_stop()  # type: ignore[no-untyped-call]  # Locust leaves it unannotated

    def _arrive(self, task: Any, intended: float) -> None:
        greenlet: Any = gevent.getcurrent()
        greenlet.harness_intended = intended
        try:
            task(self)
        except StopUser:
            pass
        except Exception as exc:
            # As Locust does for a task's error: logged and reported, the load goes on.
            logger.exception("open model: a task raised")
            self.environment.events.user_error.fire(
                user_instance=self, exception=exc, tb=exc.__traceback__
            )
