"""Retry-aware Locust users for locustfiles: a client that backs off politely, and a naive one.

    from harness.load.users import RetryingHttpUser

    class Shopper(RetryingHttpUser):
        @task
        def browse(self):
            self.logical_request("GET", "/products")

:meth:`RetryingHttpUser.logical_request` is one *logical* request: it sends attempts until one
succeeds, the response is not worth retrying, or the policy gives up. Every attempt is an ordinary
Locust request (in Locust's stats, and in the harness recorder) carrying an
:class:`~harness.load.recording.AttemptContext` in its request context, so the recorder files it
under its logical request, with its attempt number, and knows whether a retry follows; the
Retry-After a retry followed is derived from the attempt before it.

Between attempts the user waits as its :class:`~harness.load.retry.RetryPolicy` says, counted
from the arrival of the last response and never shorter than its Retry-After.
:class:`NaiveRetryUser` retries at once, ignoring Retry-After: the retry storm a resilient
service must survive. Importing this module imports Locust (and gevent's monkey-patching).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent  # type: ignore[import-untyped]
from locust import FastHttpUser
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from harness.load.recording import CONTEXT_KEY, AttemptContext
from harness.load.retry import NAIVE, RetryPolicy, parse_retry_after

__all__ = ["LogicalResult", "NaiveRetryUser", "RetryingHttpUser"]

# Logical request numbers, unique within the process; the recorder adds the worker's tag.
_logical_ids = itertools.count(1)


@dataclass(frozen=True)
class LogicalResult:
    """How a logical request ended: whether it counts as a success, its last attempt's
    ``status`` (0: no response), how many attempts it took, and the last response."""

    ok: bool
    status: int
    attempts: int
    response: Any

    def json(self) -> Any:
        """The last response's JSON body; None when there was none or it was not JSON."""
        if not self.status:
            return None
        try:
            return self.response.json()
        except Exception:  # an empty or non-JSON body: callers check for None
            return None


class RetryingHttpUser(FastHttpUser):
    """A FastHttpUser whose :meth:`logical_request` retries with backoff, full jitter and
    Retry-After honoured (:attr:`retry_policy`)."""

    abstract = True
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy()
    # Fail fast instead of FastHttpUser's 60 s: a hung attempt is an outage to record, not to
    # wait out. A timed-out attempt is status 0, like a refused connection.
    connection_timeout = 5.0
    network_timeout = 10.0

    def logical_request(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        ok_statuses: Collection[int] | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
    ) -> LogicalResult:
        """Send ``method path`` until it succeeds or the policy gives up.

        A status in ``ok_statuses`` (default: any 2xx or 3xx) is a success; anything else is a
        failure in Locust's stats. ``headers`` (an ``Idempotency-Key``, say) go unchanged with
        every attempt.
        """
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()  # asked to stop with nothing in flight: no new request goes out
        policy = self.retry_policy
        logical = next(_logical_ids)
        attempt = 0
        while True:
            attempt += 1
            info = AttemptContext(logical, attempt)
            with self.client.request(
                method,
                path,
                name=name,
                headers=headers,
                json=json,
                catch_response=True,
                context={CONTEXT_KEY: info},
            ) as response:
                status = response.status_code or 0
                ok = _is_ok(status, ok_statuses)
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if status and response.headers is not None
                    else None
                )
                retry = not ok and policy.should_retry(status, attempt, retry_after)
                info.final = not retry
                info.ok = ok
                if ok:
                    response.success()
                else:
                    response.failure(_why(status, response, retry))
                arrived = time.time()
                if not retry:
                    return LogicalResult(ok, status, attempt, response)
            # Outside the with-block: Locust has reported the attempt (and the recorder filed it)
            # before the user sleeps.
            self._wait_to_retry(arrived + policy.wait(attempt - 1, retry_after, random.uniform))

    def _wait_to_retry(self, deadline: float) -> None:
        """Sleep until ``deadline`` as Locust's own ``wait()`` does: a user asked to stop (a
        ramp-down, the end of the run) stops here at once, with no request in flight. A user
        asked to stop mid-request stops when its answer is in (here or at the next request).

        Without it a user sleeping out a Retry-After counts as busy: the ramp-down waits for it
        up to the stop timeout, the user count stalls, and at the timeout Locust kills every such
        user at once, possibly mid-request (the flash sale's cool-down: 30 s Retry-After sleeps
        from maintenance held the ramp-down 10 s, then were cut at the moment they all retried).
        """
        if self._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        # While WAITING, Locust's stop() kills this greenlet in the sleep (GreenletExit).
        self._state = LOCUST_STATE_WAITING
        _sleep_until(deadline)
        self._state = LOCUST_STATE_RUNNING


class NaiveRetryUser(RetryingHttpUser):
    """Retries at once, up to ten attempts, ignoring Retry-After: a retry storm."""

    abstract = True
    retry_policy: ClassVar[RetryPolicy] = NAIVE


def _is_ok(status: int, ok_statuses: Collection[int] | None) -> bool:
    if ok_statuses is not None:
        return status in ok_statuses
    return 200 <= status < 400


def _why(status: int, response: Any, retry: bool) -> str:
    then = "retrying" if retry else "giving up"
    if status == 0:
        error = getattr(response, "error", None)
        return f"no response ({type(error).__name__ if error else 'error'}), {then}"
    return f"HTTP {status}, {then}"


def _sleep_until(deadline: float) -> None:
    """Sleep until the wall clock reads ``deadline``: gevent's timers may fire a little early, and
    a retry must never go out before its Retry-After is over."""
    while (left := deadline - time.time()) > 0:
        gevent.sleep(left)
