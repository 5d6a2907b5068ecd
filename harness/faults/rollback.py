"""``harness rollback`` (:func:`roll_back`): revert whatever a crashed run left behind, from
its fault journal.

Every pending fault (journaled, never known to be reverted) is rebuilt from its record and
reverted, newest first, in passes (:mod:`harness.faults.sweep`). Reverts are idempotent, so a
fault that was never injected, or was reverted just before the crash, costs a no-op. A record
that cannot be read is reported and skipped; the others are still reverted. Only when everything
is clean is the journal set aside, so a second rollback finds nothing to do; otherwise it keeps
what is left for the next try.

What a rollback trusts: the journal itself (opened without following links, only when it is this
user's own 0600 file, see :mod:`harness.private_files`), and the stack state of the journal's own
state directory. A record's stack reference is resolved through the stack registry bound to that
directory (:func:`~harness.faults.stackref.stack_from_ref`): a local stack elsewhere is refused,
so a record can never make a revert stop, truncate or start what another directory's
``stack.json`` names; and every host a revert would call goes through the target policy first
(``check``). A refused record is reported in one line and kept in the journal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.faults.base import Fault, error_text
from harness.faults.factory import fault_from_record
from harness.faults.journal import Journal, PendingFault
from harness.faults.sweep import sweep
from harness.stack import Stack

__all__ = ["RollbackOutcome", "RollbackResult", "roll_back"]


@dataclass(frozen=True)
class RollbackOutcome:
    """What became of one pending fault."""

    name: str
    description: str
    reverted: bool
    error: str = ""

    @property
    def line(self) -> str:
        if self.reverted:
            return _one_line(f"reverted: {self.name}: {self.description}")
        return _one_line(f"NOT reverted: {self.name}: {self.description}: {self.error}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_LINE_MAX = 1000


def _one_line(text: str) -> str:
    """Names and errors come from the journal, a file: one line, bounded, control characters
    escaped, whatever a record holds."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= _LINE_MAX else f"{text[:_LINE_MAX]}..."


@dataclass(frozen=True)
class RollbackResult:
    journal: Path
    outcomes: tuple[RollbackOutcome, ...]
    problems: tuple[str, ...]  # journal lines that could not be read
    cleared: bool  # the journal was set aside: nothing is pending any more

    @property
    def clean(self) -> bool:
        return not self.problems and all(o.reverted for o in self.outcomes)

    @property
    def summary(self) -> str:
        if self.clean and not self.outcomes:
            return f"nothing to roll back (journal {self.journal})"
        if self.clean:
            return f"rollback done: {len(self.outcomes)} fault(s) reverted, journal set aside"
        left = [o.name for o in self.outcomes if not o.reverted]
        parts = [f"could not revert {', '.join(left)}"] if left else []
        if self.problems:
            parts.append(
                f"{len(self.problems)} journal line(s) could not be read (check the stack by "
                f"hand, then delete {self.journal})"
            )
        return (
            f"rollback incomplete: {'; '.join(parts)}. The journal keeps what is left: fix the "
            "cause and run `harness rollback` again"
        )


def roll_back(
    journal: Journal,
    *,
    stack: Stack | None = None,
    on_outcome: Callable[[RollbackOutcome], None] | None = None,
    check: Callable[[Mapping[str, Any]], None] | None = None,
    attempts: int = 3,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> RollbackResult:
    """Revert every pending fault of ``journal``; ``on_outcome`` hears of each as it is settled.

    ``stack``, when given, is used for every record instead of the one the record names.
    ``check`` may refuse a record before anything is rebuilt from it (by raising; it is then
    reported and not reverted): ``harness.faults.targets.check_record``, so that a crafted journal
    cannot send requests to a host nobody allowed.
    ``InfrastructureError`` when a live run holds the journal.
    """
    if not journal.path.exists() and not journal.lock_file.exists():
        # Nothing was ever journaled here; and a rollback must not create a state directory.
        return RollbackResult(journal.path, (), (), cleared=False)
    outcomes: list[RollbackOutcome] = []

    def settle(outcome: RollbackOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    journal_dir = journal.path.parent
    with journal:  # the lock: never fight a run that is still going
        contents = journal.read()
        faults: list[tuple[PendingFault, Fault]] = []
        for pending in contents.pending():
            try:
                if check is not None:
                    check(pending.record)
                # Bound to the journal's own state directory: see the module docstring.
                fault = fault_from_record(pending.record, stack=stack, journal_dir=journal_dir)
                faults.append((pending, fault))
            except Exception as exc:  # a bad record, or a bug reading one: the others still run
                error = f"cannot rebuild it from its record: {error_text(exc)}"
                journal.failed(pending.id, pending.name, "rollback", error)
                where = f"{pending.kind} fault, line {pending.line} of the journal"
                settle(RollbackOutcome(pending.name, where, reverted=False, error=error))

        def revert(item: tuple[PendingFault, Fault], attempt: int) -> None:
            pending, fault = item
            try:
                fault.revert()
            except BaseException as exc:
                journal.failed(
                    pending.id, pending.name, "rollback", error_text(exc), fault, attempt=attempt
                )
                raise
            journal.reverted(pending.id, fault, by="rollback")
            settle(RollbackOutcome(fault.name, fault.describe(), reverted=True))

        failures = sweep(
            list(reversed(faults)), revert, attempts=attempts, backoff_s=backoff_s, sleep=sleep
        )
        for (_, fault), last_error in failures:
            description = fault.describe()
            settle(RollbackOutcome(fault.name, description, False, error_text(last_error)))
        result = RollbackResult(journal.path, tuple(outcomes), contents.problems, cleared=False)
        if result.clean:
            journal.clear()
            result = RollbackResult(journal.path, result.outcomes, (), cleared=True)
    return result
