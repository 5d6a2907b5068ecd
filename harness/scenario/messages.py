"""Validation errors as the one line users see: ``<file>: <field path>: <what was wrong>``.

Pydantic reports every error with its own wording and paths; only the first one is shown, in
the wording of the validator that raised it (:func:`harness.fields.invalid`), at the path the
file spells (``faults[2].params.type``, never pydantic's ``faults.2.toxic.params.type``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.errors import BadInputError
from harness.faults.registry import FAULT_ACTIONS
from harness.fields import not_one_of, show

__all__ = ["one_line", "validate"]

M = TypeVar("M", bound=BaseModel)

_PATH_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def validate(model: type[M], data: Mapping[str, Any], *, source: str, context: dict[str, Any]) -> M:
    """``data`` validated into ``model``, or a one-line :class:`BadInputError` that starts with
    ``source`` (the file, or what else the data was read from)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        # One line even if a value held a line separator json.dumps leaves alone (U+2028).
        line = " ".join(f"{source}: {one_line(exc.errors()[0])}".splitlines())
        raise BadInputError(line) from None


def one_line(error: ErrorDetails) -> str:
    """One pydantic error as ``path: message``."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = _user_loc(error["loc"])
    value = error.get("input")
    if kind == "harness":
        loc += tuple(ctx.get("loc", ()))
        message = str(ctx["message"])
    elif kind == "missing":
        message = "required, but missing"
    elif kind == "union_tag_invalid":
        loc += ("action",)
        action = value.get("action") if isinstance(value, Mapping) else value
        message = not_one_of(action, FAULT_ACTIONS)
    elif kind == "union_tag_not_found":
        loc += ("action",)
        message = f"required, but missing (one of: {', '.join(FAULT_ACTIONS)})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping, got {show(value)}"
    elif kind in ("tuple_type", "list_type"):
        message = f"expected a list, got {show(value)}"
    elif kind == "string_type":
        message = f"expected a string, got {show(value)}"
    elif kind == "extra_forbidden":
        message = f"unknown key {show(loc[-1]) if loc else ''}"
    else:  # not expected: every field has a validator of ours; still one line, still the value
        message = f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {show(value)}"
    where = _render_loc(loc)
    return f"{where}: {message}" if where else message


def _user_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The path as the file spells it: drop the union tag pydantic puts after ``faults[i]``."""
    if len(loc) >= 3 and loc[0] == "faults" and isinstance(loc[1], int):
        return loc[:2] + loc[3:]
    return loc


def _render_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PATH_WORD.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out
