"""Revert several faults so that every one is attempted, whatever the others do.

Pass after pass: the first pass tries every fault, in the order given (callers pass them newest
first); each later pass, after a short backoff, retries only those that failed. Passes rather
than retrying one fault in place, because reverts can depend on each other: maintenance cannot be
switched off while every instance is dead, and the revert of the kill that comes after it in the
same pass brings one back.

An interrupt does not leave the rest undone. A ``KeyboardInterrupt`` (or any other
``BaseException``: a ``SystemExit``, a killed greenlet) during one revert is held while the pass
goes on (each revert is bounded by its own timeouts), no later pass starts, and the first one is
raised again at the end. Whatever was not reverted stays pending in the journal for ``harness
rollback``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["sweep"]

T = TypeVar("T")


def sweep(
    items: Sequence[T],
    revert: Callable[[T, int], None],
    *,
    attempts: int = 3,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[T, BaseException]]:
    """Call ``revert(item, attempt)`` for each item until it returns, at most ``attempts``
    passes; the items that never succeeded, each with its last error."""
    todo = list(items)
    failures: list[tuple[T, BaseException]] = []
    held: BaseException | None = None
    for attempt in range(1, max(1, attempts) + 1):
        if attempt > 1:
            if held is not None or not todo:
                break
            try:
                sleep(backoff_s * 2 ** (attempt - 2))
            except BaseException as exc:
                held = exc
                break
        failures = []
        for item in todo:
            try:
                revert(item, attempt)
            except Exception as exc:
                failures.append((item, exc))
            except BaseException as exc:
                held = held or exc
                failures.append((item, exc))
        todo = [item for item, _ in failures]
    if held is not None:
        raise held
    return failures
