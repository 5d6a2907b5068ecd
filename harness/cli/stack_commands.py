"""``harness up``, ``down`` and ``status``: the stack by hand, outside a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli.options import port_options, stack_options, state_dir_option
from harness.cli.output import console
from harness.cli.stacks import StackFlags, UpFlags, bring_up, stack_status, take_down
from harness.exit_codes import ExitCode
from harness.gameday import GamedayClient, NoGameday
from harness.gameday.text import status_lines
from harness.stack.config import TOXIPROXY_KINDS, ToxiproxyKind
from harness.stack.render import info_table, status_table

__all__ = ["down", "status", "up"]


@click.command(context_settings={"show_default": True})
@state_dir_option
@stack_options
@port_options
@click.option(
    "--toxiproxy",
    type=click.Choice(TOXIPROXY_KINDS),
    default="auto",
    show_envvar=True,
    help="The real toxiproxy-server, the embedded one, or the real one when found.",
)
@click.option(
    "--admin-token",
    default="",
    show_default="random",
    show_envvar=True,
    help="Bearer token of the shop's admin API.",
)
@click.option(
    "--app-env",
    multiple=True,
    metavar="KEY=VALUE",
    show_envvar=True,
    help="Extra environment for the shop instances (repeatable), e.g. SHOP_DB_TIMEOUT_MS=500.",
)
def up(
    state_dir: Path,
    stack_kind: str,
    project: str,
    compose_file: Path | None,
    scenario_file: Path | None,
    ports: dict[str, Any],
    toxiproxy: ToxiproxyKind,
    admin_token: str,
    app_env: tuple[str, ...],
) -> ExitCode:
    """Start the local stack (Caddy, Toxiproxy, the shop, PostgreSQL) in the background.

    If a healthy stack is already up in the state directory, it is left as is; a stale one (a
    process dead, paused or unhealthy) is stopped and replaced. The database is kept across
    down and up, so only the first up initialises it.

    With --stack compose the same topology runs as a Docker Compose project; only the entry,
    Toxiproxy, admin token and app env options apply to it.
    """
    line, info = bring_up(
        StackFlags(stack_kind, state_dir, project, compose_file, scenario_file),
        UpFlags(ports, toxiproxy, admin_token, app_env),
    )
    out = console()
    out.print(line)
    out.print(info_table(info))
    return ExitCode.OK


@click.command(context_settings={"show_default": True})
@state_dir_option
@click.option(
    "--purge",
    is_flag=True,
    show_envvar=True,
    help="Also delete the PostgreSQL data (the next up starts cold).",
)
@stack_options
def down(
    state_dir: Path,
    purge: bool,
    stack_kind: str,
    project: str,
    compose_file: Path | None,
    scenario_file: Path | None,
) -> ExitCode:
    """Stop every process of the local stack. Safe to repeat.

    With --stack compose: remove the project's containers, networks and volumes.
    """
    flags = StackFlags(stack_kind, state_dir, project, compose_file, scenario_file)
    click.echo(take_down(flags, purge=purge))
    return ExitCode.OK


@click.command(context_settings={"show_default": True})
@state_dir_option
@stack_options
def status(
    state_dir: Path,
    stack_kind: str,
    project: str,
    compose_file: Path | None,
    scenario_file: Path | None,
) -> ExitCode:
    """Show each process of the local stack. Exit 0 when all are alive and healthy, else 3."""
    snapshot = stack_status(StackFlags(stack_kind, state_dir, project, compose_file, scenario_file))
    if not snapshot.exists:
        click.echo(f"no stack is up in {snapshot.location}")
        return ExitCode.INFRASTRUCTURE
    console().print(status_table(snapshot))
    _show_gameday(state_dir)
    return ExitCode.OK if snapshot.healthy else ExitCode.INFRASTRUCTURE


def _show_gameday(state_dir: Path) -> None:
    """A running game day's phase and active faults, below the stack's processes."""
    try:
        state = GamedayClient.find(state_dir).state()
    except NoGameday as exc:
        click.echo(str(exc))
        return
    for line in status_lines(state):
        click.echo(line)
