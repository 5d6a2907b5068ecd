"""What counts as a failed request: the one definition every table, plot, SLO, impact and
recovery uses.

A response *failed* when there was no response at all (status 0: connection error, reset,
timeout), when it is a 5xx, or when its status is one the scenario declares failed
(``failed_statuses: [429]``). Anything else is an answer: a ``409`` (sold out) or a ``404`` is the
service doing its job honestly, and a resilience gate that counted it would report an impact
where the service was fine. A scenario whose clients must never see a given 4xx says so.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Final

__all__ = ["DEFINITION", "describe_failed", "failed_count", "is_failed"]

DEFINITION: Final = "failed = no response or 5xx"
"""The rule in words, for the line a report shows next to its counts."""


def is_failed(status: int, declared: Collection[int] = ()) -> bool:
    """Whether a response with ``status`` (0 = no response) is a failed request."""
    return status == 0 or 500 <= status <= 599 or status in declared


def failed_count(counts: Mapping[int, int], declared: Collection[int] = ()) -> int:
    """How many of the responses in ``counts`` (status -> n) failed."""
    return sum(n for code, n in counts.items() if is_failed(code, declared))


def describe_failed(declared: Iterable[int] = ()) -> str:
    """One short line: what counts as failed in this run."""
    extra = sorted(set(declared) - {0} - set(range(500, 600)))
    if not extra:
        return DEFINITION
    return f"failed = no response, 5xx or {', '.join(str(code) for code in extra)}"
