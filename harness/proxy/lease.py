"""Leases: faults that lift themselves when the harness that placed them stops renewing them.

An extension of the embedded server (the real Toxiproxy 2.12.0 has none). A client opens a lease
with a time to live, attaches toxics to it when it creates them (the optional ``"lease"`` field of
the toxic body) and proxies when it disables them (the same field beside ``"enabled": false``),
and renews it; a lease not renewed within its time to live expires, and the server removes every
toxic still attached to it and enables those proxies again. So a harness killed with ``kill -9``
(its state directory gone with the CI runner, no ``harness rollback`` ever run) leaves no fault
behind for longer than the lease.

This module is the table of leases and their deadlines only: pure, no event loop, the clock
injectable, so the expiry rules are unit-tested without waiting. The collection
(:mod:`harness.proxy.proxy`) removes the toxics; the API (:mod:`harness.proxy.api`) serves it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_LEASES",
    "MAX_OWNER_CHARS",
    "MAX_TTL_MS",
    "MIN_TTL_MS",
    "Lease",
    "LeaseError",
    "LeaseTable",
]

# A lease shorter than a scheduler hiccup would lift faults of a live harness; a day is far
# beyond any run that renews once a second.
MIN_TTL_MS: Final = 100
MAX_TTL_MS: Final = 86_400_000
# Expired leases leave the table, so only a client that opens leases without end reaches this:
# a bound on memory, not a limit anyone meets.
MAX_LEASES: Final = 1024
MAX_OWNER_CHARS: Final = 256


class LeaseError(ValueError):
    """A lease request the server refuses; ``status`` is the HTTP status the API answers."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Lease:
    """One lease: renewed means its deadline moves to now + ttl."""

    id: str
    owner: str
    ttl_s: float
    deadline: float  # on the table's clock


class LeaseTable:
    """Every live lease by id. ``clock`` is monotonic seconds (a fake one in tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._leases: dict[str, Lease] = {}

    def __contains__(self, lease_id: object) -> bool:
        """Live: known and before its deadline (the sweep may not have taken it yet)."""
        lease = self._leases.get(lease_id) if isinstance(lease_id, str) else None
        return lease is not None and lease.deadline > self._clock()

    def __len__(self) -> int:
        return len(self._leases)

    def create(self, ttl_ms: int, owner: str = "") -> Lease:
        if not MIN_TTL_MS <= ttl_ms <= MAX_TTL_MS:
            raise LeaseError(f"ttl_ms must be from {MIN_TTL_MS} to {MAX_TTL_MS}, got {ttl_ms}", 400)
        if len(owner) > MAX_OWNER_CHARS:
            raise LeaseError(f"owner longer than {MAX_OWNER_CHARS} characters", 400)
        if len(self._leases) >= MAX_LEASES:
            raise LeaseError(
                f"too many leases ({MAX_LEASES}): release some or let them expire", 409
            )
        ttl_s = ttl_ms / 1000.0
        lease = Lease(secrets.token_hex(8), owner, ttl_s, self._clock() + ttl_s)
        self._leases[lease.id] = lease
        return lease

    def get(self, lease_id: str) -> Lease:
        lease = self._leases.get(lease_id)
        # A lease past its deadline that the sweep has not reached yet is gone all the same:
        # renewing it would bring back a lease whose faults may already be lifted.
        if lease is None or lease.deadline <= self._clock():
            raise LeaseError("lease not found", 404)
        return lease

    def renew(self, lease_id: str) -> Lease:
        lease = self.get(lease_id)
        lease.deadline = self._clock() + lease.ttl_s
        return lease

    def release(self, lease_id: str) -> Lease:
        lease = self.get(lease_id)
        del self._leases[lease_id]
        return lease

    def remaining_s(self, lease: Lease) -> float:
        return max(0.0, lease.deadline - self._clock())

    def expired(self) -> list[Lease]:
        """Take every lease whose deadline has passed out of the table, and return them."""
        now = self._clock()
        gone = [lease for lease in self._leases.values() if lease.deadline <= now]
        for lease in gone:
            del self._leases[lease.id]
        return gone

    def all(self) -> list[Lease]:
        """The live leases, oldest first."""
        now = self._clock()
        return [lease for lease in self._leases.values() if lease.deadline > now]
