"""A running game day in words, for ``harness status``, ``inject`` and ``revert``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["fault_line", "status_lines"]


def fault_line(fault: Mapping[str, Any]) -> str:
    """``slow-db  active  manual, by ana@host  since 12.0s, until 42.0s  (latency ...)``"""
    origin = f"manual, by {fault.get('who') or '?'}" if fault.get("manual") else "scheduled"
    until = fault.get("end")
    when = f"since {fault.get('start', 0.0):.1f}s" + (
        f", until {until:.1f}s" if isinstance(until, int | float) else ", until reverted"
    )
    error = f"; error: {fault['error']}" if fault.get("error") else ""
    return (
        f"{fault.get('name')}  {fault.get('state')}  {origin}  {when}  "
        f"({fault.get('description', '')}){error}"
    )


def status_lines(state: Mapping[str, Any]) -> list[str]:
    """The game day's phase, its active faults, and the live checks that fail."""
    elapsed = state.get("elapsed_s")
    where = (
        f"phase {state.get('phase') or '-'}, {elapsed:.0f}s of {state.get('total_s', 0):.0f}s"
        if isinstance(elapsed, int | float)
        else "the load has not started"
    )
    lines = [f"game day {state.get('scenario')}: {where}"]
    active = [f for f in state.get("timeline", []) if f.get("state") == "active"]
    lines.append(f"active faults: {len(active)}" if active else "active faults: none")
    lines += [f"  {fault_line(fault)}" for fault in active]
    failing = [
        c
        for c in [*state.get("slos", []), *state.get("guards", [])]
        if c.get("state") in ("fail", "holding", "breached")
    ]
    for check in failing:
        lines.append(f"  {check['state']}: {check['name']} {check['observed']} ({check['detail']})")
    return lines
