"""The early stop of a capacity search, inside the Locust master: each step is judged from the
run store as soon as its last answers are in, and the first that broke ends the run (completed,
not aborted: finding the break is what the run is for).

A run extension (:mod:`harness.run.hooks`): the master imports it by name when the capacity
search (or any caller, :func:`harness.capacity.runner.extensions_for`) attaches it; it watches
the steps of a scenario whose ``capacity`` section says ``stop_at_break``, and does nothing
otherwise. Imported only inside the master: it imports gevent.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import gevent  # type: ignore[import-untyped]  # gevent ships no type information

from harness.capacity.steps import is_step, judge_step, step_slos
from harness.load.plugin import MasterPlugin
from harness.record import RunDir
from harness.run.hooks import LoadStarted, MasterHooks
from harness.scenario import Scenario

__all__ = ["JUDGE_LAG_S", "attach", "watch_steps"]

# A step's last buckets reach the store with the next shipment (every second), and an answer to
# a request of the step's last moments may take up to the shop's database deadline (500 ms).
JUDGE_LAG_S: Final = 1.8
_POLL_S: Final = 0.1

logger = logging.getLogger("harness.load")


def attach(hooks: MasterHooks) -> None:
    """The run extension's entry: the steps are watched from the moment the load starts."""
    hooks.load_started.add_listener(_on_load_started)


def _on_load_started(started: LoadStarted) -> None:
    scenario = started.run.scenario
    if scenario.capacity is not None and scenario.capacity.stop_at_break:
        watch_steps(started.run.master, started.run.run_dir, scenario, started.t0)


def watch_steps(master: MasterPlugin, run: RunDir, scenario: Scenario, t0: float) -> Any:
    """Start judging the steps of ``master``'s run, whose load started at ``t0``; the greenlet
    ends by itself."""
    judged, _ = step_slos(scenario)
    return gevent.spawn(_watch, master, run, scenario, judged, t0)


def _watch(
    master: MasterPlugin,
    run: RunDir,
    scenario: Scenario,
    judged: list[tuple[str, str]],
    t0: float,
) -> None:
    # The last step ends the run anyway: judging it early would change nothing.
    for phase in master.plan.phases[:-1]:
        if not is_step(phase.name):
            continue
        due = t0 + phase.end + JUDGE_LAG_S
        while (wait := due - time.time()) > 0:
            if master.ending:
                return
            gevent.sleep(min(wait, _POLL_S))
        if master.ending:
            return
        try:
            step = judge_step(run, scenario, phase.name, judged)
        except Exception:  # a bug here must not end the run: it then plays every step
            logger.exception("judging capacity step %s failed", phase.name)
            continue
        if step is not None and not step.held:
            why = ", ".join(step.failed) or "no responses"
            master.end_early(f"{phase.name} ({step.offered:g}/s) broke: {why}")
            return
