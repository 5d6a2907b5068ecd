"""The ``harness`` command. Thin by design: each command parses its flags, makes one library
call and returns an :class:`~harness.exit_codes.ExitCode`; :func:`main` maps errors to exit codes.

::

    app               the root group and the list of its commands
    entry             main(): outcomes and errors to exit codes, in one place
    options           options several commands share, and the stack's port flags from one table
    stacks            every stack the CLI builds (up, down, status), and every choice by kind
    output            the Rich console the commands print tables to
    stack_commands    up, down, status
    run_commands      run, gameday, capacity, worker, report, rollback
    fault_commands    inject, revert (during a game day)
    proxy_commands    proxy serve
    image_commands    images seed

Every option also reads an environment variable (``HARNESS_<COMMAND>_<OPTION>``, shown in
``--help``), so CI can configure a run without editing the command line.
"""

from harness.cli.app import cli
from harness.cli.entry import main

__all__ = ["cli", "main"]
