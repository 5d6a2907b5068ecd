"""How every number reads, in one place: the verdict's messages, the SLO rows, the terminal table,
the HTML and the JUnit messages all format through here, so one value never shows as ``0.2708s``
in one place and ``0.3 s`` in another.

The rules (README "Reading the numbers"):

* Values are held in base units everywhere: a share as a fraction (5% is 0.05), a duration in
  seconds. Only these functions convert, and only for people; ``summary.json`` keeps the raw
  numbers (its schema names the unit of each).
* A measured number has 4 significant digits, trailing zeros dropped, never an exponent, and
  thousands grouped with a comma: ``0.2708``, ``40.75``, ``22,285``.
* A count is a whole number, grouped: ``22,285``.
* A unit follows its number without a space, as scenario files write it: ``7.5%``, ``287ms``,
  ``4.2s``; a duration of a minute or more reads like a scenario duration: ``2m05s``.
* A judged value and its threshold that differ never read the same: ``99.45% >= 99.5%`` gets
  as many digits as it takes (:func:`measured_pair`).

This module is the lowest layer both the verdict and the report may import (the report sits
above the verdict), hence its home here.
"""

from __future__ import annotations

import math
import time
from typing import Final

__all__ = [
    "DURATION_UNITS",
    "NA",
    "count",
    "duration",
    "measured",
    "measured_pair",
    "ms",
    "number",
    "offset",
    "percent",
    "utc",
    "written",
]

NA: Final = "n/a"

# Seconds per unit an SLO may be written in. A compound duration (``1m30s``) is shown in seconds.
DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_DIGITS: Final = 4  # significant digits of a measured number
_MAX_DIGITS: Final = 12  # what measured_pair may go up to, and the decimals of a tiny value


def number(value: float | None, digits: int = _DIGITS) -> str:
    """``value`` to ``digits`` significant digits, grouped, without exponent or trailing zeros:
    ``0.2708``, ``40.75``, ``22,285``, ``0``; ``n/a`` for None or NaN."""
    if value is None or math.isnan(value):
        return NA
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"  # also -0.0, which would read "-0"
    magnitude = math.floor(math.log10(abs(value))) + 1  # digits before the point (<= 0: none)
    decimals = min(max(digits - magnitude, 0), _MAX_DIGITS)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def count(n: int | None) -> str:
    """A whole number of things: ``22,285``."""
    return NA if n is None else f"{n:,}"


def measured(value: float | None, unit: str, digits: int = _DIGITS) -> str:
    """A value held in base units (a share as a fraction, a duration in seconds), in the unit
    its SLO was written in: ``7.5%``, ``350ms``, ``2s``, ``0``; ``n/a`` for None."""
    if value is None or math.isnan(value):
        return NA
    unit = unit.strip()
    if unit == "%":
        return f"{number(value * 100, digits)}%"
    if unit in DURATION_UNITS:
        return f"{number(value / DURATION_UNITS[unit], digits)}{unit}"
    return f"{number(value, digits)} {unit}" if unit else number(value, digits)


def written(value: float, unit: str) -> str:
    """``value`` as an SLO's text writes it, so that the text parses back to the same check:
    no grouping commas, whole numbers whole, others to about four significant digits."""
    if unit == "%":
        value *= 100
    elif unit in DURATION_UNITS:
        value /= DURATION_UNITS[unit]
    if not math.isfinite(value):
        text = str(value)
    elif value == int(value) and abs(value) < 1e15:
        text = str(int(value))
    elif abs(value) >= 1000:
        text = f"{value:.1f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.4g}"
    return f"{text}{unit}" if unit == "%" or unit in DURATION_UNITS else text


def measured_pair(observed: float | None, threshold: float | None, unit: str) -> tuple[str, str]:
    """An SLO's observed value and its threshold, with enough digits that two different values
    never read alike: a failed ``availability >= 99.5%`` must not show ``99.5% >= 99.5%``."""
    digits = _DIGITS
    while True:
        shown = measured(observed, unit, digits), measured(threshold, unit, digits)
        if (
            observed is None
            or threshold is None
            or observed == threshold
            or shown[0] != shown[1]
            or digits >= _MAX_DIGITS
        ):
            return shown
        digits += 1


def percent(ratio: float | None) -> str:
    """A 0..1 share as a percentage: ``4.808%``."""
    return measured(ratio, "%")


def ms(value_ms: float | None) -> str:
    """A latency already in milliseconds (the phase tables' p50/p95/p99): ``40.75ms``."""
    return NA if value_ms is None or math.isnan(value_ms) else f"{number(value_ms)}ms"


def duration(seconds: float | None) -> str:
    """A length of time: ``0.2708s``, ``7.4s``; from a minute on as a scenario writes it:
    ``2m05s``, ``1h02m``."""
    if seconds is None or math.isnan(seconds):
        return NA
    if abs(seconds) < 60 or math.isinf(seconds):
        return f"{number(seconds)}s"
    sign, whole = ("-" if seconds < 0 else ""), round(abs(seconds))
    if whole < 3600:
        return f"{sign}{whole // 60}m{whole % 60:02d}s"
    return f"{sign}{whole // 3600}h{whole % 3600 // 60:02d}m"


def offset(seconds: float) -> str:
    """A moment on the run's timeline, seconds since its start, signed and to one bucket
    (100 ms), the resolution everything is recorded at: ``+25.0s``, ``-3.2s``."""
    return f"{seconds:+.1f}s"


def utc(t: float | None) -> str:
    """A unix time as ``2023-11-14 22:13:20 UTC``."""
    if t is None:
        return NA
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
