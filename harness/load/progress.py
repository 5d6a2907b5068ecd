"""The live progress line the master writes to stderr once a second. Pure formatting."""

from __future__ import annotations

from collections.abc import Iterable

from harness.load.collector import Window
from harness.load.plan import PlannedPhase

__all__ = ["fault_names", "progress_line"]


def fault_names(active: Iterable[object]) -> list[str]:
    """Names of the active faults, whatever the timeline hands out (names or fault objects)."""
    return [item if isinstance(item, str) else str(getattr(item, "name", item)) for item in active]


def progress_line(
    *,
    elapsed: float,
    total: float,
    phase: PlannedPhase | None,
    phases: int,
    users: int,
    window: Window,
    faults: Iterable[str] = (),
) -> str:
    """``  12.0s/40.0s  spike 2/3  users 60  rps 523.0  err 0.4%  faults: kill-app-1``

    ``window`` is the last complete second the master has received (shipments lag by about one).
    """
    where = f"{phase.name} {phase.index + 1}/{phases}" if phase else "-"
    active = ", ".join(faults) or "none"
    return (
        f"{elapsed:6.1f}s/{total:.1f}s  {where}  users {users}  rps {window.rate:.1f}  "
        f"err {100 * window.error_ratio:.1f}%  faults: {active}"
    )
