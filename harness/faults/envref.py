"""``${NAME}`` references in the faults users define (``exec`` arguments, ``http`` headers, body
and query): checked when the scenario is read, expanded from the environment only when the
fault runs, so a secret lives in the environment and never in the scenario, the journal or an
error message.

A ``$`` that does not start ``${`` is kept as it is; ``${`` must start a whole reference
(``${NAME}``, a letter or ``_`` then letters, digits and ``_``), so a typo such as
``${TOKEN`` is an error when the scenario is read, not a literal sent to a server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Final, Protocol, runtime_checkable

from harness.errors import BadInputError
from harness.fields import invalid, show

__all__ = ["RefersToEnv", "check_fault_env", "check_references", "expand", "mask", "references"]

_REFERENCE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Values shorter than this are left in error messages: masking "0" or "on" would garble them.
_MASK_MIN_LENGTH: Final = 4


def references(text: str) -> tuple[str, ...]:
    """The names ``text`` refers to, each once, in order."""
    return tuple(dict.fromkeys(_REFERENCE.findall(text)))


def check_references(text: str, *loc: str | int) -> str:
    """``text`` when every ``${`` in it starts a whole ``${NAME}``; else the validation error
    (at ``loc`` below the field being validated)."""
    rest = _REFERENCE.sub("", text)
    if "${" in rest:
        start = rest.index("${")
        raise invalid(
            f"expected ${{NAME}} (letters, digits and _) after ${{, got {show(rest[start:])}",
            *loc,
        )
    return text


def expand(text: str, what: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with each ``${NAME}`` replaced by the environment variable. ``BadInputError``
    naming ``what`` and the variable when it is not set."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise BadInputError(f"{what}: environment variable {name} is not set")
        return env[name]

    return _REFERENCE.sub(value, text)


def mask(text: str, names: Iterable[str], environ: Mapping[str, str] | None = None) -> str:
    """``text`` (a command's output, a server's answer) with the values of ``names`` replaced
    by ``${NAME}`` again, so an error message does not carry a secret the call was given."""
    env = os.environ if environ is None else environ
    values = [(env[n], n) for n in names if len(env.get(n, "")) >= _MASK_MIN_LENGTH]
    for secret, name in sorted(values, key=lambda pair: -len(pair[0])):  # longest first
        text = text.replace(secret, f"${{{name}}}")
    return text


@runtime_checkable
class RefersToEnv(Protocol):
    """A fault model whose values may refer to environment variables."""

    name: str

    def env_references(self) -> tuple[tuple[str, str], ...]:
        """(where, NAME) for each reference: ``("inject[2]", "TOKEN")``."""
        ...


def check_fault_env(faults: Iterable[object], environ: Mapping[str, str] | None = None) -> None:
    """``BadInputError`` naming the first fault (by its index), the place and the variable when
    a ``${NAME}`` a fault refers to is not set: before any load, not when the fault is due."""
    env = os.environ if environ is None else environ
    for index, fault in enumerate(faults):
        if not isinstance(fault, RefersToEnv):
            continue
        for where, name in fault.env_references():
            if name not in env:
                raise BadInputError(
                    f'faults[{index}] ("{fault.name}"): {where}: environment variable {name} '
                    "is not set"
                )
