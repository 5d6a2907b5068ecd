"""How a well-behaved client retries, as data: exponential backoff with full jitter, Retry-After
honoured, a cap on attempts. Pure Python (no Locust), so it is unit-tested without gevent.

The wait before retry ``n`` (``n = 0`` for the first retry) is::

    backoff = uniform(0, min(cap_s, base_s * 2**n))        # "full jitter"
    wait    = max(backoff, retry_after)                     # never earlier than the server asked

A ``Retry-After`` longer than ``max_retry_after_s`` ends the logical request instead: the client
gives up rather than retry early or park a simulated user for minutes. :data:`NAIVE` is the
opposite, a client that retries at once and ignores Retry-After: a retry storm on purpose.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = [
    "NAIVE",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "clients_of",
    "max_attempts_of",
    "parse_retry_after",
    "policy_of",
]

# 429 and 503 say "come back later"; 502 and 504 are what a load balancer answers when the backend
# behind it is gone or too slow, the usual face of an outage seen from a client.
RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """A ``Retry-After`` header in seconds from now; None when absent or unreadable.

    RFC 9110 allows delta-seconds (``"120"``) or an HTTP-date; a date in the past means 0. A
    decimal (``"1.5"``) is not standard but unambiguous, so it is read too.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is taken as such
        return None
    return max(0.0, when.timestamp() - now())


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before the next attempt of one logical request."""

    max_attempts: int = 4
    """Attempts in total, the first included; 1 means never retry."""
    base_s: float = 0.1
    cap_s: float = 5.0
    retry_statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)
    retry_connection_errors: bool = True
    """Retry attempts that got no response at all (status 0: refused, reset, timed out)."""
    honour_retry_after: bool = True
    jitter: bool = True
    """Full jitter; without it the wait is the exponential ceiling itself (deterministic)."""
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("base_s", "cap_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")

    def retryable(self, status: int) -> bool:
        """Is an attempt that ended with ``status`` (0 = no response) worth another one?"""
        if status == 0:
            return self.retry_connection_errors
        return status in self.retry_statuses

    def should_retry(self, status: int, attempt: int, retry_after: float | None) -> bool:
        """After attempt number ``attempt`` (from 1) ended with ``status``: try again?"""
        if attempt >= self.max_attempts or not self.retryable(status):
            return False
        return not (
            self.honour_retry_after
            and retry_after is not None
            and retry_after > self.max_retry_after_s
        )

    def backoff(self, retry: int, uniform: Callable[[float, float], float]) -> float:
        """The backoff before retry ``retry`` (0 for the first), before Retry-After is applied."""
        # min() before the power would overflow: 2**1100 is a float overflow, not a big wait.
        ceiling = self.cap_s if retry >= 64 else min(self.cap_s, self.base_s * 2.0**retry)
        return uniform(0.0, ceiling) if self.jitter else ceiling

    def describe(self) -> str:
        """The policy in words, for reports: ``up to 4 attempts, backoff 0.2s..4s with full
        jitter, Retry-After honoured``."""
        if self.max_attempts == 1:
            return "never retries"
        attempts = f"up to {self.max_attempts} attempts"
        if self.cap_s == 0:
            backoff = "immediate retries"
        else:
            jitter = "with full jitter" if self.jitter else "without jitter"
            backoff = f"backoff {_seconds(self.base_s)}..{_seconds(self.cap_s)} {jitter}"
        honoured = "Retry-After honoured" if self.honour_retry_after else "Retry-After ignored"
        return f"{attempts}, {backoff}, {honoured}"

    def wait(
        self, retry: int, retry_after: float | None, uniform: Callable[[float, float], float]
    ) -> float:
        """Seconds to wait, from the arrival of the last response, before retry ``retry``."""
        delay = self.backoff(retry, uniform)
        if self.honour_retry_after and retry_after is not None:
            delay = max(delay, retry_after)
        return delay


def _seconds(value: float) -> str:
    return f"{value:g}s"


NAIVE: Final = RetryPolicy(
    max_attempts=10, base_s=0.0, cap_s=0.0, honour_retry_after=False, jitter=False
)
"""Retry at once, up to ten attempts, whatever the server says: the retry storm."""


def policy_of(user_class: type) -> RetryPolicy | None:
    """The retry policy a User class declares (``retry_policy``), if it declares one."""
    policy = getattr(user_class, "retry_policy", None)
    return policy if isinstance(policy, RetryPolicy) else None


def max_attempts_of(user_classes: Iterable[type]) -> int | None:
    """The largest attempt cap of the User classes that declare a retry policy (what
    ``attempt_cap_respected`` without N judges against); None when none declares one."""
    caps = [policy.max_attempts for cls in user_classes if (policy := policy_of(cls)) is not None]
    return max(caps, default=None)


def clients_of(user_classes: Iterable[type]) -> list[dict[str, str]]:
    """The clients of a run as its report shows them: each User class and how it retries."""
    return [
        {
            "user_class": cls.__name__,
            "retries": policy.describe() if (policy := policy_of(cls)) else "its own code",
        }
        for cls in user_classes
    ]
