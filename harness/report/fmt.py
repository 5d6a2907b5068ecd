"""The report's name for :mod:`harness.verdict.units`, the one formatter of the harness: the
verdict's messages and every report format numbers through the same functions. Nothing is
defined here (the report sits above the verdict, so the formatter lives below both).
"""

from __future__ import annotations

from harness.verdict.units import (
    DURATION_UNITS,
    NA,
    count,
    duration,
    measured,
    measured_pair,
    ms,
    number,
    offset,
    percent,
    utc,
)

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
]
