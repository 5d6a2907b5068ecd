"""Where the commands print their tables."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["console"]


def console() -> Console:
    """A Rich console on stdout."""
    # Piped output (CI logs, tests) gets room for whole URLs instead of Rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)
