"""The scenario's post-run checks (``checks:``), read twice: before any load (the baseline) and
after every fault is reverted; each reading is a ``check`` event in the run store, and the SLOs
that use a check judge the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from harness.errors import HarnessError
from harness.integrity import CheckTarget, record_checks
from harness.record import RunDir
from harness.safety import TargetPolicy
from harness.scenario import Scenario
from harness.stack.base import StackInfo

__all__ = ["POST_CHECK_SETTLE_S", "check_target", "record_post_checks"]

# How long the post-run checks wait for a stack that is still healing after the run.
POST_CHECK_SETTLE_S: Final = 20.0


def check_target(
    entry_url: str, info: StackInfo, compose_project: str, policy: TargetPolicy
) -> CheckTarget:
    """Where the checks read: the entry, the stack's database, the compose project's (if any)."""
    return CheckTarget(
        entry_url=entry_url,
        database_url=info.database_url,
        compose_project=compose_project,
        policy=policy,
    )


def record_post_checks(
    run_dir: RunDir,
    scenario: Scenario,
    target: CheckTarget,
    stage: Literal["before", "after"],
    tell: Callable[[str], None],
    *,
    settle_s: float = 0.0,
) -> None:
    """Read the scenario's post-run checks and record them in the run store (``check`` events).
    Never raises: a check that cannot be read, or a store that refuses it, leaves the SLOs that
    use the check without a value, and so failing."""
    if not scenario.checks:
        return
    try:
        writer = run_dir.writer()
    except HarnessError as exc:
        tell(f"post-run checks ({stage}) not recorded: {exc}")
        return
    try:
        record_checks(scenario.checks, target, stage, writer, settle_s=settle_s, tell=tell)
    except HarnessError as exc:
        tell(f"post-run checks ({stage}) not recorded: {exc}")
    finally:
        writer.close()
