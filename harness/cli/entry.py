"""``main()``: the one place where an outcome of the command line becomes an exit code."""

from __future__ import annotations

import click

from harness.cli.app import cli
from harness.errors import HarnessError
from harness.exit_codes import ExitCode

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code; never a traceback for our errors.

    A command returns its :class:`ExitCode`; a :class:`HarnessError` carries its own
    (``exit_code``: 2 bad input, 3 infrastructure, ...); click's usage errors are bad input;
    Ctrl-C is 130.
    """
    try:
        result = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("harness: interrupted", err=True)
        return ExitCode.INTERRUPTED
    except click.exceptions.ClickException as exc:
        exc.show()
        # A usage error (a bad flag or value) is bad input; click's few others say their code.
        return ExitCode.BAD_INPUT if exc.exit_code == ExitCode.BAD_INPUT else exc.exit_code
    except HarnessError as exc:
        click.echo(f"harness: {exc}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else ExitCode.OK
