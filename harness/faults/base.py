"""The ``Fault`` protocol: one way to hurt the stack, injected and reverted.

Every family (``process``, ``toxic``, ``database``, ``maintenance``) implements it. The timeline
and ``harness rollback`` only ever see this protocol, so they treat a killed instance and a
latency toxic alike.

The contract the rest of the harness relies on:

* ``revert()`` is idempotent. It may be called when ``inject()`` never ran, when it ran halfway
  and raised, twice in a row, or from another process after the injecting one was SIGKILLed.
  Reverting what is already clean is a no-op, never an error. It reverts only what the fault
  itself did (a pause's revert resumes a paused instance; it does not restart a dead one).
* ``to_record()`` is a JSON-ready dict holding everything needed to rebuild the fault, and so
  revert it, in another process: :func:`harness.faults.factory.fault_from_record` reads it back.
  It may hold the shop's admin token, so whatever stores it must be owner-only.
* ``self_healing`` faults (a restart) leave nothing to revert once ``inject()`` returned; the
  timeline counts them as reverted at once. Their ``revert()`` still exists, for an inject that
  was cut short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

from harness.errors import BadInputError

__all__ = [
    "RECORD_VERSION",
    "Fault",
    "error_text",
    "fault_summary",
    "record_str",
    "record_strs",
]

# The version of what ``to_record`` writes; a record of another version is refused, not guessed.
RECORD_VERSION: Final = 1


@runtime_checkable
class Fault(Protocol):
    """One fault, bound to the stack it hurts."""

    @property
    def name(self) -> str:
        """The scenario's name for it; unique within a run."""
        ...

    @property
    def kind(self) -> str:
        """The scenario action: kill, pause, restart, toxic, down, db-throttle, maintenance."""
        ...

    @property
    def target(self) -> str | None:
        """The instance or proxy it hurts; None for maintenance (the whole shop)."""
        ...

    @property
    def self_healing(self) -> bool:
        """True when the stack is whole again as soon as ``inject()`` returned."""
        ...

    def describe(self) -> str:
        """One line for people: what it does to what."""
        ...

    def inject(self) -> None:
        """Hurt the stack; a ``HarnessError`` when it could not (it may have half-applied)."""
        ...

    def revert(self) -> None:
        """Undo ``inject``; idempotent (see the module docstring)."""
        ...

    def to_record(self) -> dict[str, Any]:
        """Everything needed to revert it from another process, as JSON-ready data."""
        ...


def fault_summary(fault: Fault) -> dict[str, Any]:
    """What an event says about a fault: never the record itself, which may hold a token."""
    return {"kind": fault.kind, "target": fault.target, "description": fault.describe()}


def error_text(exc: BaseException) -> str:
    """An error as a journal line or a rollback line shows it: its type, and its message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- reading records back: each bad field is one clear error naming the fault and the field ---


def record_str(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise BadInputError(f"{_which(record)}: {key}: expected a non-empty string, got {value!r}")
    return value


def record_strs(record: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = record.get(key)
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise BadInputError(f"{_which(record)}: {key}: expected a list of strings, got {value!r}")
    return tuple(value)


def _which(record: Mapping[str, Any]) -> str:
    return f"fault record {record.get('name')!r} ({record.get('kind')})"
