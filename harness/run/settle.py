"""How the run ended, once the master is gone: what the store says, or, when the master died
without recording an end, a ``crashed`` (or ``interrupted``) end recorded here; and the faults a
master could not revert rolled back from the journal, as ``harness rollback`` would.

The exit code decided here is final unless the run completed: then the verdict decides
(:mod:`harness.run.conclude`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError
from harness.exit_codes import ExitCode
from harness.faults import Journal, roll_back, run_store_listener
from harness.faults.targets import check_record
from harness.record import RunDir, RunStatus, RunWriter
from harness.run.request import RunOutcome
from harness.safety import run_policy

__all__ = ["rollback_faults", "settle"]


def settle(
    run_dir: RunDir,
    master_rc: int | None,
    *,
    interrupted: bool,
    state_dir: Path | None,
    tell: Callable[[str], None],
) -> RunOutcome:
    """The run's end as recorded (by the master, else here), its faults rolled back if any were
    left in the journal in ``state_dir`` (None: a stack without one), and the exit code."""
    status = run_dir.status
    # "running" in the store: no one recorded an end (the store's status says crashed then).
    ended = run_dir.meta.get("status") != RunStatus.RUNNING.value
    # The master is gone, so the store's writer lock is free: what is done here is recorded too.
    writer = run_dir.writer()
    try:
        # The master reverts its faults on every way out it lives through; a killed one, or one
        # whose reverts failed, leaves them in the journal: roll back from here, as
        # `harness rollback` would, with each step an event of this run.
        clean = state_dir is None or rollback_faults(state_dir, tell, on_event=writer)
        if ended:
            ends = [e for e in run_dir.events() if e.kind == "run_end"]
            detail = dict(ends[-1].detail) if ends else {}
        else:
            detail = {"error": f"the Locust master exited ({_exit_text(master_rc)}) mid-run"}
            status = RunStatus.INTERRUPTED if interrupted else RunStatus.CRASHED
            writer.finish(status, detail=detail)
    finally:
        writer.close()
    if not clean:
        detail["error"] = "faults are still in force: fix the cause, then run `harness rollback`"
        code = ExitCode.INFRASTRUCTURE
    elif status is RunStatus.COMPLETED:
        code = ExitCode.OK  # until the verdict says otherwise (conclude)
    elif status is RunStatus.ABORTED:
        code = ExitCode.ABORTED
    elif status is RunStatus.INTERRUPTED:
        code = ExitCode.INTERRUPTED
    elif master_rc == ExitCode.BAD_INPUT:
        code = ExitCode.BAD_INPUT
    else:
        code = ExitCode.INFRASTRUCTURE
    return RunOutcome(run_dir, status, code, detail)


def rollback_faults(
    state_dir: Path, tell: Callable[[str], None], *, on_event: RunWriter | None = None
) -> bool:
    """Revert whatever the stack's fault journal says may still be in force; True when nothing
    is left (also when there was nothing to do). ``on_event``: a run store to record it in."""
    listener = run_store_listener(on_event) if on_event is not None else None
    journal = Journal.in_state_dir(state_dir, on_event=listener)
    try:
        if not journal.pending():
            return True
        tell("rolling back the faults the run left in force")
        # Loopback, $HARNESS_ALLOW_TARGETS and a TCP Docker engine only: a journal is a file,
        # and a crafted one must not send requests (or the admin token) elsewhere.
        policy = run_policy(())
        result = roll_back(
            journal,
            on_outcome=lambda outcome: tell(outcome.line),
            check=lambda record: check_record(record, policy),
        )
    except HarnessError as exc:
        tell(f"rollback failed: {exc}")
        return False
    tell(result.summary)
    return result.clean


def _exit_text(rc: int | None) -> str:
    if rc is None:
        return "killed by the harness"
    if rc < 0:
        return f"signal {-rc}"
    return f"exit code {rc}"
