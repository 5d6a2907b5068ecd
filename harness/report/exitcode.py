"""The exit code of a run, decided once and kept with the run.

``harness run`` decides its code from two things: how the run ended (settle: aborted,
interrupted, crashed, faults left in force, bad input found late) and, for a run that completed,
its SLOs. Only the second can be judged again from the store; the first is a fact about the run
(a fault that could not be reverted is not in any bucket). So the run's own code and its reason
are stored in the run's meta, and ``harness report`` rebuilds with them: a run that exited 3
because faults were left says 3 again, with the same reason, however often it is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.exit_codes import ExitCode
from harness.record import RunDir

__all__ = ["SETTLED_KEY", "Settled", "decide", "record_settled", "settled_of"]

# The meta key; its value is {"exit_code": int, "reason": str}.
SETTLED_KEY = "settled"


@dataclass(frozen=True)
class Settled:
    """How the run ended before any verdict: ``exit_code`` 0 means "the verdict decides"."""

    exit_code: int
    reason: str = ""


def decide(run_code: int, verdict_code: int, notes: Sequence[str]) -> int:
    """The process's exit code: what the run decided (anything but 0) wins; for a run that
    completed, the SLOs decide (0 or 1), and a verdict that could not be reached (``notes`` say
    why) is 3."""
    if run_code != ExitCode.OK:
        return run_code
    return ExitCode.INFRASTRUCTURE if notes else verdict_code


def record_settled(run_dir: RunDir, settled: Settled) -> None:
    """Store how the run ended in its meta (the master is gone: the writer lock is free).

    InfrastructureError when the store cannot be written."""
    writer = run_dir.writer()
    try:  # not ``with``: leaving that block would record a second end of the run
        writer.set_meta(
            SETTLED_KEY, {"exit_code": int(settled.exit_code), "reason": settled.reason}
        )
    finally:
        writer.close()


def settled_of(run_dir: RunDir) -> Settled | None:
    """What :func:`record_settled` stored; None for a run that stored nothing (recorded by an
    older harness, or one killed before its end was settled) or something unreadable, which
    leaves the verdict to decide as before."""
    try:
        raw = run_dir.meta.get(SETTLED_KEY)
    except HarnessError:
        return None
    if not isinstance(raw, dict):
        return None
    code, reason = raw.get("exit_code"), raw.get("reason", "")
    if type(code) is not int or code not in {c.value for c in ExitCode}:
        return None
    return Settled(code, reason if isinstance(reason, str) else "")
