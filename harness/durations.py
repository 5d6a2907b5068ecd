"""Durations as scenario files write them, and back.

Accepted: one or more ``<number><unit>`` parts, largest unit first, each unit at most once::

    500ms   1.5s   30s   2m   1m30s   1h   1h30m   0s

Units are ``h``, ``m``, ``s`` and ``ms``, lower case only (``M`` could be read as months). A bare
number is refused on purpose: ``timeout: 30`` could mean seconds or milliseconds, and guessing
wrong turns a 30-second fault into a 30-millisecond one without a word. The result is seconds as
a float, which is what the timeline arithmetic and the run directory use.
"""

from __future__ import annotations

import json
import math
import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

# ms divides rather than multiplies by 0.001, so "100ms" is exactly the float 0.1.
_SECONDS_PER_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0}
_UNIT_ORDER = ("h", "m", "s", "ms")
# "ms" before "m" in the alternation, or "500ms" would split as "500m" + "s".
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_BARE_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class DurationError(ValueError):
    """Not a duration. The message is a phrase that reads after ``field: ``."""


def _show(value: object) -> str:
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 40 else text[:36] + '..."'
    return repr(value)


def parse_duration(value: str | int | float) -> float:
    """``"1m30s"`` → ``90.0``. Raises :class:`DurationError` for anything else, numbers included."""
    if isinstance(value, bool):
        raise DurationError(f"expected a duration like 30s, got {str(value).lower()}")
    if isinstance(value, int | float):
        raise _bare_number(value)
    text = value.strip()
    if _BARE_NUMBER.fullmatch(text):
        raise _bare_number(value)
    seconds = 0.0
    position = 0
    last_unit = -1
    for match in _PART.finditer(text):
        unit = _UNIT_ORDER.index(match.group(2))
        if match.start() != position or unit <= last_unit:
            break  # a gap of other text, or units out of order or repeated: not ours
        number, unit_name = float(match.group(1)), match.group(2)
        seconds += number / 1000 if unit_name == "ms" else number * _SECONDS_PER_UNIT[unit_name]
        position = match.end()
        last_unit = unit
    # After a break, text is left over, so ``position`` falls short of the end.
    if 0 < position == len(text) and math.isfinite(seconds):
        return seconds
    why = " (durations cannot be negative)" if text.startswith("-") else ""
    raise DurationError(f"expected a duration like 30s, got {_show(value)}{why}")


def _bare_number(value: str | int | float) -> DurationError:
    shown = value.strip() if isinstance(value, str) else repr(value)
    examples = f"{shown}s or {shown}ms" if len(shown) <= 12 else "s or ms"
    return DurationError(
        f"expected a duration like 30s, got {_show(value)}: a bare number is ambiguous, "
        f"add a unit ({examples})"
    )


def format_duration(seconds: float) -> str:
    """The short spelling for messages: ``90.0`` → ``"1m30s"``, ``0.5`` → ``"500ms"``."""
    if seconds < 0 or not math.isfinite(seconds):
        return f"{seconds}s"
    if 0 < seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    hours, rest = divmod(seconds, 3600.0)
    minutes, rest = divmod(rest, 60.0)
    parts = [f"{int(hours)}h"] if hours else []
    if minutes:
        parts.append(f"{int(minutes)}m")
    # Round away float noise (0.1 + 0.2) so messages show what the user wrote.
    rest = round(rest, 3)
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)
