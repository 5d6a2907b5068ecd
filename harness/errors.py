"""The harness's one exception tree. Each family carries its :class:`~harness.exit_codes.ExitCode`::

    HarnessError                      exit 1 unless a child says otherwise
    ├── BadInputError                 exit 2: a scenario, a flag or a config file is wrong
    └── InfrastructureError           exit 3: something the harness needs would not start or answer
        ├── ToxiproxyError            a Toxiproxy API call failed (carries the status and message)
        │   ├── ProxyNotFound         404 from the API
        │   └── ProxyConflict         409 from the API
        └── StackError                the stack (processes, ports, containers) failed

Errors from third-party libraries are wrapped where they enter, so callers only ever catch these.
"""

from __future__ import annotations

from harness.exit_codes import ExitCode


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED


class BadInputError(HarnessError):
    """Bad input: the message says where (file, field, value)."""

    exit_code = ExitCode.BAD_INPUT


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
