"""The recorder on a worker (or the local runner): every request recorded, shipped to the master.

Imported only inside Locust processes (:mod:`harness.load.worker`, the master of a run without
workers): importing it imports Locust, which monkey-patches the process with gevent. What is
recorded and how it is packed is :mod:`harness.load.recording` (pure, tested).
"""

from __future__ import annotations

import logging
from typing import Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from locust.env import Environment
from locust.runners import WorkerRunner

from harness.load.recording import MESSAGE_TYPE, RequestRecorder, Shipment

__all__ = ["SHIP_INTERVAL_S", "WorkerPlugin"]

logger = logging.getLogger("harness.load")

SHIP_INTERVAL_S = 1.0


class WorkerPlugin:
    """The recorder on a worker (or the local runner): every request recorded, shipped to the
    master every second and once more, in full, when the worker's users have stopped."""

    def __init__(
        self, environment: Environment, *, recorder: RequestRecorder | None = None
    ) -> None:
        self.environment = environment
        self.recorder = recorder if recorder is not None else RequestRecorder()
        self._unsent: list[Shipment] = []
        self._final_sent = False
        self._greenlet: Any = None

    def install(self) -> None:
        events: Any = self.environment.events  # Locust's EventHook methods are unannotated
        events.request.add_listener(self.recorder.on_request)
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        self._greenlet = gevent.spawn(self._ship_every_second)

    def close(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None

    def _on_test_start(self, environment: Environment, **_: object) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            # The master's index is unique among the workers it has; the logical ids of retried
            # requests carry it, so they are unique across the run.
            self.recorder.tag = f"w{runner.worker_index}"

    def _on_test_stop(self, environment: Environment, **_: object) -> None:
        # The users are stopped (test_stop fires after stop_users): nothing more is recorded.
        self.ship(final=True)

    def _ship_every_second(self) -> None:
        while not (self._final_sent and not self._unsent):
            gevent.sleep(SHIP_INTERVAL_S)
            self.ship(final=False)

    def ship(self, *, final: bool) -> None:
        """Send what the recorder holds, and anything a failed send left behind. After the final
        shipment only the leftovers are sent (the loop keeps trying them)."""
        if not self._final_sent:
            shipment = self.recorder.shipment(final=final)
            if shipment is not None:
                self._unsent.append(shipment)
            self._final_sent = final
        runner = self.environment.runner
        while self._unsent and runner is not None:
            try:
                runner.send_message(MESSAGE_TYPE, self._unsent[0])
            except Exception:  # Locust's RPC errors, or the local master's store refusing it
                logger.exception("sending buckets to the master failed; will retry")
                return
            self._unsent.pop(0)
