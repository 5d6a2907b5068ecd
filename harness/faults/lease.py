"""Fault leases: the run's toxics lift themselves when the process that placed them dies.

``harness rollback`` reverts what a crashed run left, but only where its state directory
survives. A CI runner killed by a job timeout takes the state directory with it, and a shared
staging would keep its toxics for good. So, where the Toxiproxy server supports it (the embedded
one; :meth:`~harness.proxy.client.ToxiproxyClient.supports_leases`), the process that injects the
faults (the run's Locust master) opens a lease on the server and renews it every second, and
every toxic it adds (``toxic``, ``database``, ``http-abort``, ``http-delay`` and ``maintenance``
through the ``http`` toxic) and every proxy it disables (``down``) is attached to it. When the
renewals stop for ``fault_lease`` seconds (default 10 s), the server removes those toxics and
enables those proxies by itself. A real Toxiproxy has no leases:
there only the revert on the way out and ``harness rollback`` apply.

One lease per Toxiproxy API per process, kept in a small registry here, so the fault injectors
(:mod:`harness.faults.toxic`, :mod:`harness.faults.http_toxic`) only ask :func:`current_lease` for
the URL they talk to; whoever runs the timeline opens it with :func:`fault_lease`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Final

from pydantic import PlainValidator, ValidationInfo

from harness.errors import BadInputError, ProxyNotFound, ToxiproxyError
from harness.fields import duration, invalid, show
from harness.proxy.client import ToxiproxyClient

__all__ = [
    "DEFAULT_LEASE_S",
    "MAX_LEASE_S",
    "MIN_LEASE_S",
    "RENEW_INTERVAL_S",
    "LeaseDuration",
    "LeaseRenewer",
    "current_lease",
    "fault_lease",
]

RENEW_INTERVAL_S: Final = 1.0
DEFAULT_LEASE_S: Final = 10.0
# Renewed every second: a lease of 3 s survives two renewals lost to a busy machine. An hour is
# far beyond a stall of a living harness, and a staging link faulted for longer is an outage.
MIN_LEASE_S: Final = 3.0
MAX_LEASE_S: Final = 3600.0
# Short: a renewal must never hang the renewer past the lease it renews.
_CALL_TIMEOUT_S: Final = 2.0

Warn = Callable[[str], None]


def _lease_seconds(value: object, info: ValidationInfo) -> float:
    seconds = duration(positive=True)(value, info)
    if not MIN_LEASE_S <= seconds <= MAX_LEASE_S:
        raise invalid(f"expected a duration from 3s to 1h, got {show(value)}")
    return seconds


# The scenario's ``fault_lease``.
LeaseDuration = Annotated[float, PlainValidator(_lease_seconds)]

_active: dict[str, str] = {}  # the Toxiproxy API URL (as the client spells it) -> lease id
_active_lock = threading.Lock()


def _key(toxiproxy_url: str) -> str:
    try:
        return ToxiproxyClient(toxiproxy_url).api_url
    except BadInputError:
        return toxiproxy_url


def current_lease(toxiproxy_url: str) -> str | None:
    """The lease this process renews on that Toxiproxy, to attach new toxics to; None without
    one (no timeline running here, or a server without leases)."""
    with _active_lock:
        return _active.get(_key(toxiproxy_url))


def _stderr(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr, flush=True)


class LeaseRenewer:
    """Opens a lease on one Toxiproxy and renews it every ``interval_s`` on a thread of its own
    (a greenlet under the gevent-patched Locust master), until :meth:`stop`.

    A renewal that fails for want of an answer is retried at the next interval: the lease only
    runs out if the server stays unreachable for all of it. A lease the server no longer knows
    (the process stalled for longer than the lease) has had its toxics lifted: that is said,
    and a new lease covers the faults injected from then on.
    """

    def __init__(
        self,
        toxiproxy_url: str,
        lease_s: float,
        *,
        owner: str,
        interval_s: float = RENEW_INTERVAL_S,
        warn: Warn = _stderr,
    ) -> None:
        self.toxiproxy_url = toxiproxy_url
        self.lease_s = lease_s
        self.owner = owner
        self.interval_s = interval_s
        self._warn = warn
        self._client = ToxiproxyClient(toxiproxy_url, timeout_s=_CALL_TIMEOUT_S)
        self._key = _key(toxiproxy_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.supported: bool | None = None  # known once start() has asked the server
        self.lease_id: str | None = None
        self.renewals = 0

    def start(self) -> bool:
        """Open the lease and start renewing it; False (and nothing started) when the server
        has no leases or does not answer."""
        try:
            self.supported = self._client.supports_leases()
            if not self.supported:
                return False
            self._open()
        except ToxiproxyError as exc:
            self._warn(f"no fault lease on {self.toxiproxy_url}: {exc}")
            return False
        self._thread = threading.Thread(target=self._run, name="fault-lease", daemon=True)
        self._thread.start()
        return True

    def renew_once(self) -> None:
        """One renewal (the thread's step; tests call it directly)."""
        lease_id = self.lease_id
        if lease_id is None:
            return
        try:
            self._client.renew_lease(lease_id)
        except ProxyNotFound:
            self._warn(
                f"fault lease {lease_id} on {self.toxiproxy_url} ran out (no renewal for "
                f"{self.lease_s:g}s): the server lifted the toxics this run had placed; "
                "a new lease covers the next ones"
            )
            self._reopen()
            return
        except ToxiproxyError as exc:
            if not self._failing:
                self._warn(f"fault lease {lease_id}: renewal failed, retrying: {exc}")
            self._failing = True
            return
        self._failing = False
        self.renewals += 1

    def stop(self) -> None:
        """Stop renewing and release the lease: the server lifts whatever is still attached (a
        revert that failed); everything reverted on the way out has nothing left there."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + _CALL_TIMEOUT_S + 1.0)
        lease_id = self.lease_id
        self._register(None)
        if lease_id is not None:
            # Unreachable, or expired already: then the lease runs out, or ran out, by itself.
            with contextlib.suppress(ToxiproxyError):
                self._client.release_lease(lease_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.renew_once()

    def _open(self) -> None:
        lease = self._client.create_lease(round(self.lease_s * 1000), owner=self.owner)
        self._register(lease.id)

    def _reopen(self) -> None:
        self._register(None)
        try:
            self._open()
        except ToxiproxyError as exc:
            self._warn(f"no new fault lease on {self.toxiproxy_url}: {exc}")

    def _register(self, lease_id: str | None) -> None:
        self.lease_id = lease_id
        with _active_lock:
            if lease_id is None:
                _active.pop(self._key, None)
            else:
                _active[self._key] = lease_id


@contextlib.contextmanager
def fault_lease(
    toxiproxy_url: str | None, lease_s: float, *, owner: str, warn: Warn = _stderr
) -> Iterator[LeaseRenewer | None]:
    """A lease renewed for the block on ``toxiproxy_url`` (None: no Toxiproxy, nothing to do);
    yields the renewer, or None where the server has no leases (a real Toxiproxy: then only
    the revert and ``harness rollback`` lift the faults, which is said once)."""
    if not toxiproxy_url:
        yield None
        return
    renewer = LeaseRenewer(toxiproxy_url, lease_s, owner=f"{owner} (pid {os.getpid()})", warn=warn)
    if not renewer.start():
        if renewer.supported is False:
            warn(
                f"Toxiproxy at {toxiproxy_url} has no fault leases (a real Toxiproxy): if this "
                "run is killed, only harness rollback lifts its toxics"
            )
        yield None
        return
    try:
        yield renewer
    finally:
        renewer.stop()
