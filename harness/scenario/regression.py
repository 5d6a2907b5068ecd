"""A scenario's ``regression:`` section: how much worse than its baseline a run may get before
``harness compare`` (or ``harness run --baseline``) calls it a regression.

::

    regression:
      latency: 20%      # p50/p95/p99 may grow by 20% of the baseline's value
      share: 2%         # the 503 share may grow by 2 percentage points
      recovery: 1s      # a recovery may take 1 s longer
      throughput: 10%   # throughput may drop by 10% of the baseline's
      capacity: 10%     # capacity may drop by 10% of the baseline's
      noise_runs: 10    # passing runs of the history the noise is estimated from

Every key is optional; one left out keeps the default of :data:`DEFAULT_TOLERANCES`. The same
words are the ``--tolerance KIND=VALUE`` flags, read by :func:`parse_tolerance`.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal, TypeAlias, get_args

from pydantic import PlainValidator, ValidationInfo

from harness.durations import DurationError, parse_duration
from harness.errors import BadInputError
from harness.fields import FieldModel, invalid, show, whole_number

__all__ = [
    "DEFAULT_TOLERANCES",
    "KINDS",
    "FigureKind",
    "Regression",
    "flag_tolerances",
    "parse_tolerance",
]

FigureKind: TypeAlias = Literal["latency", "share", "recovery", "throughput", "capacity"]
KINDS: Final[tuple[FigureKind, ...]] = get_args(FigureKind)

# Worse by more than this is a regression: a fraction of the baseline's value for latency,
# throughput and capacity; percentage points (as a fraction) for the 503 share; seconds for a
# recovery. The defaults: p99 +20%, 503 share +2 points, recovery +1 s, throughput -10%.
DEFAULT_TOLERANCES: Final[dict[FigureKind, float]] = {
    "latency": 0.20,
    "share": 0.02,
    "recovery": 1.0,
    "throughput": 0.10,
    "capacity": 0.10,
}
_PERCENT: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
_EXAMPLES: Final[dict[FigureKind, str]] = {
    "latency": "20%",
    "share": "2%",
    "recovery": "1s",
    "throughput": "10%",
    "capacity": "10%",
}


def parse_tolerance(kind: str, value: object) -> float:
    """A tolerance as written (``20%``, ``1s``) in the unit :data:`DEFAULT_TOLERANCES` holds it.
    Raises :class:`ValueError` with the sentence a user reads."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    example = _EXAMPLES[kind]
    if kind == "recovery":
        try:
            seconds = parse_duration(str(value))
        except DurationError:
            raise ValueError(f"expected a duration like {example}, got {show(value)}") from None
        if seconds < 0:
            raise ValueError(f"expected a duration like {example}, got {show(value)}")
        return seconds
    match = _PERCENT.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a percentage like {example}, got {show(value)}")
    share = float(match.group(1)) / 100
    if share > (1.0 if kind in ("share", "throughput", "capacity") else 100.0):
        raise ValueError(f"{show(value)} is more than the figure can change")
    return share


def _tolerance(value: object, info: ValidationInfo) -> float:
    if isinstance(value, float) and (info.context or {}).get("resolved"):
        return value  # read back from a run directory: already in base units
    try:
        return parse_tolerance(str(info.field_name), value)
    except ValueError as exc:
        raise invalid(str(exc)) from None


Tolerance = Annotated[float, PlainValidator(_tolerance)]


class Regression(FieldModel):
    """The ``regression:`` section: tolerances by kind of figure (None: the default)."""

    latency: Tolerance | None = None
    share: Tolerance | None = None
    recovery: Tolerance | None = None
    throughput: Tolerance | None = None
    capacity: Tolerance | None = None
    noise_runs: Annotated[int, PlainValidator(whole_number(2, 1000))] = 10

    def tolerances(self) -> dict[FigureKind, float]:
        """Every kind's tolerance: this section's, else the default."""
        return {
            kind: getattr(self, kind) if getattr(self, kind) is not None else default
            for kind, default in DEFAULT_TOLERANCES.items()
        }


def flag_tolerances(flags: tuple[str, ...]) -> dict[FigureKind, float]:
    """``--tolerance KIND=VALUE`` flags; BadInputError naming the flag."""
    out: dict[FigureKind, float] = {}
    for flag in flags:
        kind, sep, value = flag.partition("=")
        try:
            if not sep:
                raise ValueError(f"expected KIND=VALUE like latency=20%, got {show(flag)}")
            out[kind.strip()] = parse_tolerance(kind.strip(), value.strip())  # type: ignore[index]
        except ValueError as exc:
            raise BadInputError(f"--tolerance {flag}: {exc}") from None
    return out
