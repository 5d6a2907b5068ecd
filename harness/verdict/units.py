"""Values shown the way the user wrote them: a share as ``7.5%``, a latency as ``287ms``.

Everything inside the verdict code is in base units (fractions, seconds); only messages and
reports convert, and only here.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["DURATION_UNITS", "format_value", "short_number"]

# Seconds per unit. A compound duration (``1m30s``) is displayed in seconds.
DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def short_number(x: float) -> str:
    """A number for people: whole numbers as such, others to about four significant digits."""
    if not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    if abs(x) >= 1000:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.4g}"


def format_value(value: float, unit: str) -> str:
    """``value`` (base units) in ``unit``: ``%`` for a share, ``ms``/``s``/``m``/``h`` for a
    duration, anything else (empty) as a plain number."""
    if unit == "%":
        return f"{short_number(value * 100)}%"
    if unit in DURATION_UNITS:
        return f"{short_number(value / DURATION_UNITS[unit])}{unit}"
    return short_number(value)
