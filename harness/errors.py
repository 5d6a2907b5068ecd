"""The harness's one exception tree. Each family carries its :class:`~harness.exit_codes.ExitCode`::

    HarnessError                      exit 1 unless a child says otherwise
    ├── BadInputError                 exit 2: a scenario, a flag or a config file is wrong
    └── InfrastructureError           exit 3: something the harness needs would not start or answer
        ├── ToxiproxyError            a Toxiproxy API call failed (carries the status and message)
        │   ├── ProxyNotFound         404 from the API
        │   └── ProxyConflict         409 from the API
        └── StackError                the stack (processes, ports, containers) failed

Errors from third-party libraries are wrapped where they enter, so callers only ever catch these.

Every line of a message is bounded: a value quoted in it is cut by :func:`clip` where it is
formatted, and :class:`HarnessError` cuts each line at :data:`MAX_LINE_CHARS` as a last resort
(a :class:`BadInputError` is also joined into one line), so a 30 MB fault name or a
4,000-character path never floods a terminal or a log. Infrastructure errors may carry a few
lines of a log tail below their first line.
"""

from __future__ import annotations

from typing import Final

from harness.exit_codes import ExitCode

__all__ = [
    "MAX_LINE_CHARS",
    "MAX_VALUE_CHARS",
    "BadInputError",
    "HarnessError",
    "InfrastructureError",
    "ProxyConflict",
    "ProxyNotFound",
    "StackError",
    "ToxiproxyError",
    "bounded_line",
    "clip",
]

MAX_VALUE_CHARS: Final = 60
MAX_LINE_CHARS: Final = 600
_ELLIPSIS: Final = "..."


def clip(text: str, limit: int = MAX_VALUE_CHARS, *, middle: bool = False) -> str:
    """``text`` cut to at most ``limit`` characters with an ellipsis; ``middle`` keeps both
    ends (a path keeps its file name)."""
    if len(text) <= limit:
        return text
    keep = max(limit - len(_ELLIPSIS), 2)
    if middle:
        head = keep // 2
        return text[:head] + _ELLIPSIS + text[len(text) - (keep - head) :]
    return text[:keep] + _ELLIPSIS


def bounded_line(message: object) -> str:
    """``message`` as one line of at most :data:`MAX_LINE_CHARS` characters."""
    return clip(" ".join(str(message).splitlines()), MAX_LINE_CHARS)


def _bounded_lines(message: object) -> str:
    lines = str(message).splitlines() or [""]
    if len(lines) > _MAX_LINES:  # the first line says what failed; the last, how it ended
        lines = [lines[0], _ELLIPSIS, *lines[-(_MAX_LINES - 2) :]]
    return "\n".join(clip(line, MAX_LINE_CHARS) for line in lines)


_MAX_LINES: Final = 60


class HarnessError(Exception):
    """Root of every error the harness raises on purpose. Each line of its message is
    bounded."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(self._bound(message), *args)

    @staticmethod
    def _bound(message: object) -> str:
        return _bounded_lines(message)


class BadInputError(HarnessError):
    """Bad input: the message says where (file, field, value), on one line."""

    exit_code = ExitCode.BAD_INPUT

    @staticmethod
    def _bound(message: object) -> str:
        return bounded_line(message)


class InfrastructureError(HarnessError):
    """Something the harness depends on is missing, would not start, or does not answer."""

    exit_code = ExitCode.INFRASTRUCTURE


class ToxiproxyError(InfrastructureError):
    """A Toxiproxy API call failed. ``status`` is the HTTP status, 0 when unreachable."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ProxyNotFound(ToxiproxyError):
    """The proxy or toxic named does not exist (HTTP 404)."""


class ProxyConflict(ToxiproxyError):
    """The proxy or toxic already exists (HTTP 409)."""


class StackError(InfrastructureError):
    """The stack could not be brought up, inspected or torn down."""
