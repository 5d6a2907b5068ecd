"""Field validators shared by every model a scenario file is read into.

The scenario's own sections (:mod:`harness.scenario`) and the fault families' models
(:mod:`harness.faults`) both validate with these, so this module sits on the bottom floor, beside
:mod:`harness.durations`: it imports nothing of the harness but errors and durations.

A validator returns the clean value or raises :func:`invalid`: a pydantic error whose text is the
whole sentence users see, and whose ctx carries a path below the field being validated, so a
check made at the model level can still point at ``faults[2].at``. The scenario loader turns the
first such error into one line (``scenarios/x.yaml: faults[2].for: expected a duration ...``).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from harness.durations import DurationError, parse_duration

__all__ = [
    "MAX_DURATION_S",
    "MAX_INT64",
    "MAX_NESTING",
    "MAX_RATE",
    "MAX_USERS",
    "MAX_WORKERS",
    "Duration",
    "FieldModel",
    "Name",
    "PositiveDuration",
    "WholeNumber",
    "as_number",
    "did_you_mean",
    "duration",
    "invalid",
    "is_resolved",
    "name",
    "not_one_of",
    "number",
    "one_of",
    "show",
    "whole_number",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Upper bounds. A number past them is a typo or an attack, never a test: each is far above what
# one harness drives, and keeps the arithmetic done with the value finite and fast.
MAX_INT64: Final = 2**63 - 1  # what Toxiproxy's Go decoder accepts for a toxic attribute
MAX_WORKERS: Final = 512  # as --workers (harness.cli.options)
MAX_USERS: Final = 100_000  # simulated users at once
MAX_RATE: Final = 1_000_000.0  # per second: arrivals, users spawned
MAX_DURATION_S: Final = 30 * 86_400.0  # a phase, a fault's start or length, a timeout
_HUGE: Final = 1e15
MAX_NESTING: Final = 64  # lists and mappings inside each other, in a scenario or a JSON record


# --- errors -----------------------------------------------------------------------------------


def invalid(message: str, *loc: str | int) -> PydanticCustomError:
    """The error a validator raises: ``message`` as users read it, at ``loc`` below the field."""
    return PydanticCustomError("harness", "{message}", {"message": message, "loc": loc})


def show(value: object) -> str:
    """A bad value as the message shows it: short, on one line, YAML-ish."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date):  # YAML reads 2024-01-01 as a date
        return value.isoformat()
    return f"a {type(value).__name__}"


def did_you_mean(word: object, choices: tuple[str, ...] | list[str]) -> str | None:
    """``did you mean "phases"?`` when ``word`` is close to one of ``choices``, else None."""
    if isinstance(word, str):
        close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
        if close:
            return f'did you mean "{close[0]}"?'
    return None


def not_one_of(value: object, choices: tuple[str, ...]) -> str:
    """The sentence for a value that is none of ``choices``, with a suggestion when one fits."""
    hint = did_you_mean(value, choices)
    message = f"expected one of: {', '.join(choices)}, got {show(value)}"
    return f"{message} ({hint})" if hint else message


# --- scalar validators: each returns the clean value or raises with the full sentence ---------


def as_number(value: object) -> float | None:
    """The value as a float when it is a number; None otherwise."""
    # YAML's true/false are ints to Python; a flag where a number goes is a mistake, not 1.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def whole_number(minimum: int, maximum: int = MAX_INT64) -> Callable[[object], int]:
    """A validator of whole numbers from ``minimum`` to ``maximum`` (int64 unless given)."""

    def check(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            if minimum <= value <= maximum:
                return value
            if value > maximum:
                raise invalid(f"expected a whole number <= {maximum}, got {show(value)}")
        raise invalid(f"expected a whole number >= {minimum}, got {show(value)}")

    return check


def number(
    low: float, high: float | None = None, *, above: bool = False
) -> Callable[[object], float]:
    """A validator of finite numbers >= low (> low with ``above``), <= high when given. Without
    ``high``, numbers past 1e15 are refused all the same: no quantity of a test is that large,
    and float arithmetic with them loses the units."""
    wanted = f"> {low:g}" if above else f">= {low:g}"
    if high is not None:
        wanted = f"> {low:g} and <= {high:g}" if above else f"from {low:g} to {high:g}"

    def check(value: object) -> float:
        got = as_number(value)
        if (
            got is not None
            and math.isfinite(got)
            and (got > low if above else got >= low)
            and got <= (_HUGE if high is None else high)
        ):
            return got
        if got is not None and got > (_HUGE if high is None else high) and high is None:
            raise invalid(f"expected a number <= {_HUGE:g}, got {show(value)}")
        raise invalid(f"expected a number {wanted}, got {show(value)}")

    return check


def is_resolved(info: ValidationInfo) -> bool:
    """True when validating a run directory's resolved dump (``Scenario.from_dict``), whose
    durations are seconds already and whose paths may point at another machine's files."""
    return bool(info.context and info.context.get("resolved"))


def duration(*, positive: bool) -> Callable[[object, ValidationInfo], float]:
    """A validator of durations (``30s``, ``1m30s``) into seconds; ``positive``: not ``0s``."""

    def check(value: object, info: ValidationInfo) -> float:
        got = as_number(value)
        if got is not None and is_resolved(info):
            seconds = got  # the run directory's own dump: seconds already
        elif isinstance(value, str | int | float):
            try:
                seconds = parse_duration(value)  # numbers (and true/false) get its hint
            except DurationError as exc:
                raise invalid(str(exc)) from None
        else:
            raise invalid(f"expected a duration like 30s, got {show(value)}")
        if not math.isfinite(seconds) or seconds < 0:  # only a resolved dump can say so
            raise invalid(f"expected a duration in seconds >= 0, got {show(value)}")
        if positive and seconds == 0:
            raise invalid(f"expected a duration longer than 0s, got {show(value)}")
        if seconds > MAX_DURATION_S:
            raise invalid(f"expected a duration of at most 720h (30 days), got {show(value)}")
        return seconds

    return check


def name(value: object) -> str:
    """A name a window or a message can refer to: letters, digits, ``-``, ``_``, ``.``."""
    if isinstance(value, str) and _NAME.fullmatch(value):
        return value
    raise invalid(
        f"expected a name of letters, digits, '-', '_' or '.' (at most 64), got {show(value)}"
    )


def one_of(choices: tuple[str, ...]) -> Callable[[object], str]:
    """A validator of one word out of ``choices``."""

    def check(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise invalid(not_one_of(value, choices))

    return check


Duration = Annotated[float, PlainValidator(duration(positive=False))]
PositiveDuration = Annotated[float, PlainValidator(duration(positive=True))]
WholeNumber = Annotated[int, PlainValidator(whole_number(0))]
Name = Annotated[str, PlainValidator(name)]


class FieldModel(BaseModel):
    """The base of every scenario model: frozen, and an unknown key is an error that names it
    and suggests the key that was meant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: object) -> object:
        # extra="forbid" would refuse these too; checking first lets the message name the key
        # and suggest the one that was meant.
        if isinstance(data, Mapping):
            known = [field.alias or attr for attr, field in cls.model_fields.items()]
            for key in data:
                if key not in known:
                    hint = did_you_mean(key, known) or f"expected one of: {', '.join(known)}"
                    if isinstance(key, str):
                        raise invalid(f"unknown key {show(key)} ({hint})", key)
                    raise invalid(f"unknown key {show(key)} ({hint})")
        return data
