"""The root ``harness`` group and the list of its commands: the whole command line at a glance.

The root's ``auto_envvar_prefix`` gives every option of every command an environment variable,
``HARNESS_<COMMAND>_<OPTION>`` (see :mod:`harness.cli.options`).
"""

from __future__ import annotations

import click

from harness import __version__
from harness.cli.fault_commands import inject_command, revert_command
from harness.cli.history_commands import HISTORY_COMMANDS
from harness.cli.image_commands import images
from harness.cli.proxy_commands import proxy
from harness.cli.run_commands import (
    capacity_command,
    gameday_command,
    report_command,
    rollback,
    run_command,
    validate_command,
    worker,
)
from harness.cli.stack_commands import down, status, up

__all__ = ["COMMANDS", "cli"]

COMMANDS: tuple[click.Command, ...] = (
    # the stack by hand
    up,
    down,
    status,
    images,
    proxy,
    # runs, and what a run leaves behind
    validate_command,
    run_command,
    gameday_command,
    capacity_command,
    worker,
    report_command,
    rollback,
    # faults by hand during a game day
    inject_command,
    revert_command,
    # the history of a reports directory: history, compare
    *HISTORY_COMMANDS,
)


@click.group(context_settings={"auto_envvar_prefix": "HARNESS", "show_default": True})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Load and chaos testing harness."""


for _command in COMMANDS:
    cli.add_command(_command)
