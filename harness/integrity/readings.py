"""Post-run check readings in the run store: one ``check`` event per check and stage, written as
each is read (so the baseline survives a crash of the run), and read back as before/after/delta.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from harness.integrity.probe import CheckError, CheckTarget, read_check
from harness.record import Event, EventKind, EventSink
from harness.scenario import PostCheck

__all__ = ["CheckValues", "Stage", "check_values", "record_checks"]

Stage = Literal["before", "after"]

# After the run the stack may still be healing (an instance restarting, the breaker closing):
# a check that fails then is tried again for this long before its error is recorded.
SETTLE_S: Final = 20.0
RETRY_EVERY_S: Final = 1.0


@dataclass(frozen=True)
class CheckValues:
    """One check's readings; None where it was not read or failed (``errors`` says why)."""

    name: str
    before: float | None = None
    after: float | None = None
    errors: tuple[str, ...] = ()

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def value(self, which: str) -> float | None:
        if which == "before":
            return self.before
        if which == "delta":
            return self.delta
        return self.after

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "errors": list(self.errors),
        }


def record_checks(
    checks: Sequence[PostCheck],
    target: CheckTarget,
    stage: Stage,
    writer: EventSink,
    *,
    settle_s: float = 0.0,
    tell: Callable[[str], None] = lambda line: None,
    read: Callable[[PostCheck, CheckTarget], float] = read_check,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, float | None]:
    """Read every check and write each reading as a ``check`` event. A check that fails is
    retried until ``settle_s`` has passed, then recorded with its error; never raises for a
    failing check (the SLOs that use it fail, saying why)."""
    deadline = clock() + settle_s
    values: dict[str, float | None] = {}
    for check in checks:
        while True:
            try:
                value: float | None = read(check, target)
                error = ""
            except CheckError as exc:
                value, error = None, str(exc)
            if value is not None or clock() >= deadline:
                break
            sleep(RETRY_EVERY_S)
        detail: dict[str, Any] = {"stage": stage, "value": value}
        if error:
            detail["error"] = error
            tell(f"check {check.name} ({stage}): {error}")
        else:
            tell(f"check {check.name} ({stage}): {value:g}")
        writer.event(EventKind.CHECK, check.name, detail)
        values[check.name] = value
    return values


def check_values(events: Iterable[Event], names: Sequence[str] = ()) -> dict[str, CheckValues]:
    """Every check's readings from the run's events (the last reading of a stage wins), with an
    empty entry for each of ``names`` never read."""
    found: dict[str, dict[str, Any]] = {name: {} for name in names}
    for event in events:
        if event.kind is not EventKind.CHECK:
            continue
        stage = event.detail.get("stage")
        if stage not in ("before", "after"):
            continue
        entry = found.setdefault(event.name, {})
        value = event.detail.get("value")
        entry[stage] = float(value) if isinstance(value, int | float) else None
        error = event.detail.get("error")
        errors = [e for e in entry.get("errors", []) if not e.startswith(f"{stage}: ")]
        if isinstance(error, str) and error:
            errors.append(f"{stage}: {error}")
        entry["errors"] = errors
    return {
        name: CheckValues(
            name, entry.get("before"), entry.get("after"), tuple(entry.get("errors", ()))
        )
        for name, entry in found.items()
    }
