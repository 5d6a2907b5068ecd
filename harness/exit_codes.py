"""The one table of exit codes, for every command and every child process of the harness.

The numbers are a contract (ARCHITECTURE.md): CI jobs gate on them, so they never change.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0  # every SLO met (or the command did what it was asked)
    FAILED = 1  # an SLO failed (or an error with no family of its own)
    BAD_INPUT = 2  # a scenario, flag or file is wrong: nothing ran
    INFRASTRUCTURE = 3  # the stack, Toxiproxy, Docker or the load generator failed
    ABORTED = 4  # a guard stopped the run (faults reverted)
    INTERRUPTED = 130  # SIGINT or SIGTERM (faults reverted first)
