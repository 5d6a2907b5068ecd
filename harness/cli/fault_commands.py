"""``harness inject`` and ``harness revert``: faults by hand, from another terminal, during a
running game day (``harness gameday``), through the client of its control file."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.options import duration, state_dir_option, who_option
from harness.errors import BadInputError
from harness.exit_codes import ExitCode
from harness.gameday import GamedayClient, default_who
from harness.gameday.text import fault_line

__all__ = ["inject_command", "revert_command"]


@click.command("inject", context_settings={"show_default": True})
@click.argument("name")
@click.option(
    "--for",
    "for_",
    default="",
    show_default="the fault's `for`, else until reverted",
    show_envvar=True,
    callback=duration("--for", blank_is_none=True),
    help="How long, e.g. 30s; reverted by itself then.",
)
@who_option
@state_dir_option
def inject_command(name: str, for_: float | None, who: str, state_dir: Path) -> ExitCode:
    """Inject fault NAME of the running game day's catalogue now. Exit 2 for a name it does not
    have, 3 when no game day runs, 1 when it is already in force."""
    answer = GamedayClient.find(state_dir).inject(name, who=who or default_who(), for_s=for_)
    click.echo(fault_line(answer["fault"]))
    return ExitCode.OK if answer.get("ok") else ExitCode.INFRASTRUCTURE


@click.command("revert", context_settings={"show_default": True})
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Revert every fault in force.")
@who_option
@state_dir_option
def revert_command(name: str | None, all_: bool, who: str, state_dir: Path) -> ExitCode:
    """Revert fault NAME (or --all) of the running game day now. Exit 2 for a name it does not
    have, 3 when no game day runs or a revert failed, 1 when NAME is not in force."""
    if (name is None) == (not all_):
        raise BadInputError("revert: give a fault NAME or --all (not both)")
    answer = GamedayClient.find(state_dir).revert(None if all_ else name, who=who or default_who())
    for fault in [*answer.get("reverted", []), *answer.get("failed", [])]:
        click.echo(fault_line(fault))
    if not answer.get("reverted") and not answer.get("failed"):
        click.echo("nothing was in force")
    return ExitCode.OK if answer.get("ok") else ExitCode.INFRASTRUCTURE
