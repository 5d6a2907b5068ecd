"""How numbers and times read in the HTML, the terminal and the JUnit messages: one set of
helpers, so the three never disagree on what "4.2 s" or "7.5%" means.
"""

from __future__ import annotations

import math
import time
from typing import Final

__all__ = [
    "NA",
    "duration",
    "measured",
    "ms",
    "number",
    "offset",
    "percent",
    "utc",
]

NA: Final = "n/a"


def number(value: float | None) -> str:
    """A value to 4 significant digits, without exponent noise for everyday magnitudes."""
    if value is None or math.isnan(value):
        return NA
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.4g}"
    # Only ever switch to an exponent for values far outside what a latency or ratio has.
    if "e" in text and 1e-4 <= abs(value) < 1e15:
        text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text


# Seconds per duration unit an SLO may be written in.
_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def measured(value: float | None, unit: str) -> str:
    """A verdict's value, held in base units (a share as a fraction, a duration in seconds), in
    the unit its SLO was written in: ``7.5%``, ``350ms``, ``2s``, ``0``. The convention is the
    verdict's (``harness.verdict.units``); it is repeated here so the report needs no import of
    the verdict to show one."""
    if value is None or math.isnan(value):
        return NA
    unit = unit.strip()
    if unit == "%":
        return f"{number(value * 100)}%"
    if unit in _DURATION_UNITS:
        return f"{number(value / _DURATION_UNITS[unit])}{unit}"
    return f"{number(value)} {unit}" if unit else number(value)


def percent(ratio: float | None) -> str:
    """A 0..1 ratio as a percentage."""
    if ratio is None or math.isnan(ratio):
        return NA
    if ratio == 0:
        return "0%"  # exactly none, which "0.00%" would not say
    return f"{ratio * 100:.2f}%" if ratio < 0.1 else f"{ratio * 100:.1f}%"


def ms(value: float | None) -> str:
    """Milliseconds as a person reads them: ``2.5 ms``, ``350 ms``, ``1.01 s``."""
    if value is None or math.isnan(value):
        return NA
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def duration(seconds: float | None) -> str:
    """``4.2 s``, ``2m 05s``, ``1h 02m``."""
    if seconds is None or math.isnan(seconds):
        return NA
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def offset(seconds: float) -> str:
    """Seconds since the run's start, signed: ``+25.0s``, ``-3.2s``."""
    return f"{seconds:+.1f}s"


def utc(t: float | None) -> str:
    """A unix time as ``2023-11-14 22:13:20 UTC``."""
    if t is None:
        return NA
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
