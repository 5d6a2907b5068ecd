"""The ``harness`` command. Thin by design: parse, call the library, map errors to exit codes.

Every option also reads an environment variable (``HARNESS_<COMMAND>_<OPTION>``, shown in
``--help``), so CI can configure a run without editing the command line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from harness import __version__
from harness.errors import BadInputError, HarnessError
from harness.exit_codes import ExitCode
from harness.scenario import StackKind
from harness.stack.config import TOXIPROXY_KINDS, LocalStackConfig, ToxiproxyKind, parse_env_pairs
from harness.stack.local import LocalStack
from harness.stack.ports import StackPorts
from harness.stack.render import info_table, status_table
from harness.stack.state import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from collections.abc import Callable

    from click.decorators import FC

    from harness.stack.compose import ComposeStack

# Exit codes as ARCHITECTURE.md fixes them.


@click.group(context_settings={"auto_envvar_prefix": "HARNESS", "show_default": True})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Load and chaos testing harness."""


@cli.group()
def proxy() -> None:
    """The embedded Toxiproxy-compatible server."""


@proxy.command("serve", context_settings={"show_default": True})
@click.option("--host", default="127.0.0.1", help="Address the API and proxies bind to.")
@click.option("--port", default=8474, type=click.IntRange(0, 65535), help="API port.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON array of proxies to create at start (the format of /populate).",
)
def proxy_serve(host: str, port: int, config_file: Path | None) -> None:
    """Run the embedded Toxiproxy server in the foreground until SIGINT or SIGTERM."""
    from harness.proxy.server import serve_forever

    serve_forever(host=host, port=port, config_file=config_file)


class _PortList(click.ParamType[tuple[int, ...]]):
    """``18001,18002,18003``: one port per instance."""

    name = "ports"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            ports = tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"expected comma-separated port numbers, got {value!r}", param, ctx)
        if not ports:
            self.fail("expected at least one port", param, ctx)
        return ports


_PORT = click.IntRange(1, 65535)
_DEFAULT_PORTS = StackPorts()

_stack_option = click.option(
    "--stack",
    "stack_kind",
    type=click.Choice(["local", "compose"]),
    default="local",
    show_envvar=True,
    help="Processes on 127.0.0.1, or the Docker Compose project of compose/docker-compose.yml.",
)
_project_option = click.option(
    "--project",
    default="",
    show_default="the scenario's stack.project, else harness",
    show_envvar=True,
    help="Compose project name (with --stack compose).",
)
_compose_file_option = click.option(
    "--compose-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_default="the scenario's stack.compose_file, else compose/docker-compose.yml",
    show_envvar=True,
    help="The compose file (with --stack compose).",
)
_scenario_option = click.option(
    "--scenario",
    "scenario_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_envvar=True,
    help="Take the compose project, file and topology (entry, backends, Toxiproxy, proxies) "
    "from this scenario's stack section (with --stack compose; for your own compose project).",
)


def _allowed_hosts(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    from harness.safety import normalize_host

    # Repeated, or several in one value (the environment variable): commas or spaces.
    hosts = [h for value in values for h in value.replace(",", " ").split()]
    return tuple(dict.fromkeys(normalize_host(h, "--allow-target") for h in hosts))


# Options that `run`, `gameday` (and `capacity`) share, spelled once.
_workers_option = click.option(
    "--workers",
    type=click.IntRange(0, 512),
    default=None,
    show_default="the scenario's load.workers",
    show_envvar=True,
    help="Locust worker processes on this machine; 0 runs the load in one process.",
)
_reports_option = click.option(
    "--reports",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_envvar=True,
    help="Where the run directory is created.",
)


def _scenario_stack_option(*kinds: str, envvar: str) -> Callable[[FC], FC]:
    """``--stack`` of the commands that take a scenario: it overrides the scenario's kind."""
    return click.option(
        "--stack",
        "stack_kind",
        envvar=envvar,
        type=click.Choice(kinds),
        default=None,
        show_default="the scenario's stack.kind",
        show_envvar=True,
        help="Where the system under test comes from.",
    )


_allow_target_option = click.option(
    "--allow-target",
    "allow_targets",
    multiple=True,
    metavar="HOST",
    envvar="HARNESS_ALLOW_TARGETS",
    show_envvar=True,
    callback=_allowed_hosts,
    help="A host besides loopback (and the stack the harness starts) that load and faults may "
    "reach, as the scenario's allow_targets does (repeatable; the variable takes several).",
)


def _compose_stack(
    project: str, compose_file: Path | None, scenario_file: Path | None, **settings: Any
) -> ComposeStack:
    """The compose project the options name; ``--scenario``'s stack section fills in what they
    do not say, and the project's topology."""
    from harness.stack.compose import (
        DEFAULT_COMPOSE_FILE,
        DEFAULT_PROJECT,
        ComposeStack,
        ComposeStackConfig,
        ComposeTopology,
    )

    topology, env = ComposeTopology(), tuple(settings.pop("app_env", ()))
    if scenario_file is not None:
        from harness.engine import compose_topology
        from harness.scenario import load_scenario

        stack = load_scenario(scenario_file).stack
        if stack.kind != "compose":
            raise BadInputError(f"{scenario_file}: stack.kind: expected compose, got {stack.kind}")
        topology = compose_topology(stack)
        project = project or stack.project or ""
        compose_file = compose_file or stack.compose_file
        env = (*stack.env, *env)
    config = ComposeStackConfig(
        project=project or DEFAULT_PROJECT,
        compose_file=(compose_file or DEFAULT_COMPOSE_FILE).absolute(),
        app_env=env,
        topology=topology,
        **settings,
    )
    return ComposeStack(config)


_state_dir_option = click.option(
    "--state-dir",
    envvar="HARNESS_STATE_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    help="Where the stack keeps its state file, logs and database.",
)


@cli.command(context_settings={"show_default": True})
@_state_dir_option
@_stack_option
@_project_option
@_compose_file_option
@_scenario_option
@click.option(
    "--entry-port",
    type=_PORT,
    default=_DEFAULT_PORTS.entry,
    show_envvar=True,
    help="Caddy, the stack's entry point.",
)
@click.option(
    "--toxiproxy-port",
    type=_PORT,
    default=_DEFAULT_PORTS.toxiproxy_api,
    show_envvar=True,
    help="Toxiproxy's API.",
)
@click.option(
    "--postgres-port",
    type=_PORT,
    default=_DEFAULT_PORTS.postgres,
    show_envvar=True,
    help="PostgreSQL itself.",
)
@click.option(
    "--app-db-proxy-port",
    type=_PORT,
    default=_DEFAULT_PORTS.app_db_proxy,
    show_envvar=True,
    help="The Toxiproxy proxy the shop reaches PostgreSQL through.",
)
@click.option(
    "--app-ports",
    type=_PortList(),
    default=",".join(map(str, _DEFAULT_PORTS.apps)),
    show_envvar=True,
    help="One port per shop instance; their number is the number of instances.",
)
@click.option(
    "--lb-proxy-ports",
    type=_PortList(),
    default=",".join(map(str, _DEFAULT_PORTS.lb_proxies)),
    show_envvar=True,
    help="The Toxiproxy proxies Caddy reaches each instance through.",
)
@click.option(
    "--caddy-admin-port",
    type=click.IntRange(0, 65535),
    default=_DEFAULT_PORTS.caddy_admin,
    show_envvar=True,
    help="Caddy's admin API on loopback; 0 turns it off.",
)
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
    entry_port: int,
    toxiproxy_port: int,
    postgres_port: int,
    app_db_proxy_port: int,
    app_ports: tuple[int, ...],
    lb_proxy_ports: tuple[int, ...],
    caddy_admin_port: int,
    toxiproxy: ToxiproxyKind,
    admin_token: str,
    app_env: tuple[str, ...],
) -> None:
    """Start the local stack (Caddy, Toxiproxy, the shop, PostgreSQL) in the background.

    If a healthy stack is already up in the state directory, it is left as is; a stale one (a
    process dead, paused or unhealthy) is stopped and replaced. The database is kept across
    down and up, so only the first up initialises it.

    With --stack compose the same topology runs as a Docker Compose project; only the entry,
    Toxiproxy, admin token and app env options apply to it.
    """
    if stack_kind == "compose":
        compose = _compose_stack(
            project,
            compose_file,
            scenario_file,
            entry_port=entry_port,
            toxiproxy_port=toxiproxy_port,
            admin_token=admin_token,
            app_env=parse_env_pairs(app_env),
        )
        started = time.monotonic()
        info = compose.up()
        elapsed = time.monotonic() - started
        state = "already up, healthy: left as is" if compose.reused else f"up in {elapsed:.1f}s"
        _console().print(f"compose project {compose.project!r} {state}")
        _console().print(info_table(info))
        return
    ports = StackPorts(
        entry=entry_port,
        toxiproxy_api=toxiproxy_port,
        postgres=postgres_port,
        app_db_proxy=app_db_proxy_port,
        apps=app_ports,
        lb_proxies=lb_proxy_ports,
        caddy_admin=caddy_admin_port,
    )
    config = LocalStackConfig(
        ports=ports,
        toxiproxy=toxiproxy,
        admin_token=admin_token,
        app_env=parse_env_pairs(app_env),
    )
    stack = LocalStack(state_dir, config)
    started = time.monotonic()
    info = stack.up()
    elapsed = time.monotonic() - started
    console = _console()
    if stack.reused:
        console.print(f"stack already up in {stack.state_dir}, healthy: left as is")
    else:
        console.print(f"stack up in {elapsed:.1f}s (state in {stack.state_dir})")
    console.print(info_table(info))


@cli.command(context_settings={"show_default": True})
@_state_dir_option
@click.option(
    "--purge",
    is_flag=True,
    show_envvar=True,
    help="Also delete the PostgreSQL data (the next up starts cold).",
)
@_stack_option
@_project_option
@_compose_file_option
@_scenario_option
def down(
    state_dir: Path,
    purge: bool,
    stack_kind: str,
    project: str,
    compose_file: Path | None,
    scenario_file: Path | None,
) -> None:
    """Stop every process of the local stack. Safe to repeat.

    With --stack compose: remove the project's containers, networks and volumes.
    """
    if stack_kind == "compose":
        compose = _compose_stack(project, compose_file, scenario_file)
        compose.down()
        click.echo(f"compose project {compose.project!r} is down")
        return
    stack = LocalStack(state_dir)
    stack.down(purge=purge)
    click.echo(f"stack in {stack.state_dir} is down")


@cli.command(context_settings={"show_default": True})
@_state_dir_option
@_stack_option
@_project_option
@_compose_file_option
@_scenario_option
def status(
    state_dir: Path,
    stack_kind: str,
    project: str,
    compose_file: Path | None,
    scenario_file: Path | None,
) -> int:
    """Show each process of the local stack. Exit 0 when all are alive and healthy, else 3."""
    if stack_kind == "compose":
        snapshot = _compose_stack(project, compose_file, scenario_file).status()
    else:
        snapshot = LocalStack(state_dir).status()
    if not snapshot.exists:
        click.echo(f"no stack is up in {snapshot.location}")
        return ExitCode.INFRASTRUCTURE
    _console().print(status_table(snapshot))
    _show_gameday(state_dir)
    return ExitCode.OK if snapshot.healthy else ExitCode.INFRASTRUCTURE


def _show_gameday(state_dir: Path) -> None:
    """A running game day's phase and active faults, below the stack's processes."""
    from harness.gameday import GamedayClient, NoGameday
    from harness.gameday.text import status_lines

    try:
        state = GamedayClient.find(state_dir).state()
    except NoGameday as exc:
        click.echo(str(exc))
        return
    for line in status_lines(state):
        click.echo(line)


@cli.command(context_settings={"show_default": True})
@_state_dir_option
@_allow_target_option
def rollback(state_dir: Path, allow_targets: tuple[str, ...]) -> int:
    """Revert every fault a crashed or killed run left behind (toxics, proxies down, killed or
    paused instances, maintenance mode), from the fault journal in the state directory.

    Prints one line per fault. Exit 0 when nothing is left in force (then the journal is set
    aside, so a second rollback has nothing to do), 3 when something could not be reverted.
    """
    # Imported here, so commands that inject nothing do not load the Toxiproxy client.
    from harness.faults import Journal, roll_back
    from harness.safety import check_record, run_policy

    # A journal is a file: its records may name only loopback, the allowed hosts and a TCP
    # Docker engine; a record naming another host is reported and not reverted.
    policy = run_policy(allow_targets)
    result = roll_back(
        Journal.in_state_dir(state_dir),
        on_outcome=lambda outcome: click.echo(outcome.line),
        check=lambda record: check_record(record, policy),
    )
    for problem in result.problems:
        click.echo(f"unreadable: {problem}")
    click.echo(result.summary)
    return ExitCode.OK if result.clean else ExitCode.INFRASTRUCTURE


@cli.group()
def images() -> None:
    """Container images of the compose stack."""


@images.command("seed", context_settings={"show_default": True})
@click.option("--force", is_flag=True, show_envvar=True, help="Rebuild images that exist.")
@click.option(
    "--only",
    multiple=True,
    show_envvar=True,
    help="Build only this image (repeatable): debian, python, postgres, toxiproxy, caddy, shop, "
    "locust.",
)
def images_seed(force: bool, only: tuple[str, ...]) -> None:
    """Build every image compose/docker-compose.yml names, under those names, without a
    registry (for air-gapped runners). Images that exist are kept unless --force."""
    from harness.stack.images import seed

    started = time.monotonic()
    results = seed(force=force, only=only, log=click.echo)
    built = sum(1 for r in results if r.action == "built")
    click.echo(f"{len(results)} images ready ({built} built) in {time.monotonic() - started:.1f}s")


@cli.command("run", context_settings={"show_default": True})
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@_workers_option
@_scenario_stack_option("local", "compose", "external", envvar="HARNESS_RUN_STACK")
@click.option(
    "--project",
    default="",
    show_default="the scenario's stack.project, else harness",
    show_envvar=True,
    help="Compose project name (stack kind compose).",
)
@click.option(
    "--compose-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    show_default="the scenario's stack.compose_file, else compose/docker-compose.yml",
    show_envvar=True,
    help="The compose file (stack kind compose).",
)
@_reports_option
@_state_dir_option
@click.option(
    "--remote-workers",
    type=click.IntRange(0, 4096),
    default=0,
    show_envvar=True,
    help="Workers on other machines (`harness worker --master HOST`) to wait for as well.",
)
@click.option(
    "--master-bind",
    default="127.0.0.1",
    show_envvar=True,
    help="Address the Locust master listens on for workers (another host's address for "
    "remote workers).",
)
@click.option(
    "--master-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default="any free port",
    show_envvar=True,
    help="Port the Locust master listens on for workers.",
)
@click.option(
    "--worker-timeout",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_envvar=True,
    help="Seconds to wait for every worker to connect before giving up (exit 3).",
)
@_allow_target_option
def run_command(
    scenario: Path,
    workers: int | None,
    stack_kind: StackKind | None,
    project: str,
    compose_file: Path | None,
    reports: Path,
    state_dir: Path,
    remote_workers: int,
    master_bind: str,
    master_port: int,
    worker_timeout: float,
    allow_targets: tuple[str, ...],
) -> int:
    """Run SCENARIO: bring the stack up, drive the load through its phases, inject its faults,
    record every request, revert every fault however the run ends, and judge it.

    A live progress line goes to stderr every second; the verdict table and the report's path are
    printed at the end. Exit 0 every SLO met, 1 an SLO failed, 2 bad scenario or SLO text,
    3 the stack or the load generator failed, 4 aborted by a guard (the report is still written),
    130 interrupted (after every fault was reverted).
    """
    from harness.engine import RunRequest, run

    outcome = run(
        RunRequest(
            scenario=scenario,
            workers=workers,
            stack=stack_kind,
            compose_project=project,
            compose_file=compose_file,
            reports=reports,
            state_dir=state_dir,
            remote_workers=remote_workers,
            master_bind=master_bind,
            master_port=master_port,
            worker_timeout_s=worker_timeout,
            allow_targets=allow_targets,
        )
    )
    error = outcome.detail.get("error")
    click.echo(f"run {outcome.status}: {outcome.run_dir.root}" + (f" ({error})" if error else ""))
    return outcome.exit_code


@cli.command(context_settings={"show_default": True})
@click.option(
    "--master",
    "master_host",
    required=True,
    show_envvar=True,
    help="Host of the Locust master (`harness run --master-bind ...`).",
)
@click.option(
    "--master-port",
    type=click.IntRange(1, 65535),
    default=5557,
    show_envvar=True,
    help="Port of the Locust master.",
)
@click.option(
    "--locustfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    show_default="asked from the master",
    show_envvar=True,
    help="The scenario's locustfile, when this machine has a copy.",
)
def worker(master_host: str, master_port: int, locustfile: Path | None) -> None:
    """Run a Locust worker with the harness recorder for a remote `harness run` (scale-out).

    It connects to the master, runs the users the master gives it, ships what it records, and
    exits when the run ends. This process becomes the worker (same PID, signals and exit code).
    """
    from harness.engine import exec_worker
    from harness.load.launch import WorkerArgs

    exec_worker(WorkerArgs(master_host, master_port, locustfile))


@cli.command("capacity", context_settings={"show_default": True})
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--start",
    type=float,
    default=None,
    show_envvar=True,
    help="First offered load, arrivals/s (default: the scenario's capacity.start).",
)
@click.option(
    "--step",
    type=float,
    default=None,
    show_envvar=True,
    help="Offered load added per step, arrivals/s.",
)
@click.option(
    "--hold", type=str, default=None, show_envvar=True, help="How long each step lasts, like 5s."
)
@click.option(
    "--max",
    "maximum",
    type=float,
    default=None,
    show_envvar=True,
    help="Highest offered load tried, arrivals/s.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    show_envvar=True,
    help="A fault of the scenario to hold during a second, degraded search "
    "(repeatable; default: the scenario's capacity.faults).",
)
@click.option(
    "--reports",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_envvar=True,
    help="Where the capacity directory is created.",
)
@_state_dir_option
@_allow_target_option
def capacity_command(
    scenario: Path,
    start: float | None,
    step: float | None,
    hold: str | None,
    maximum: float | None,
    faults: tuple[str, ...],
    reports: Path,
    state_dir: Path,
    allow_targets: tuple[str, ...],
) -> int:
    """Find the breaking point of SCENARIO (load.model: open): step the offered load up, judge
    the scenario's SLOs over each step, stop at the first step that breaks, report the last load
    that held, the knee of the latency curve and the 503 onset; with --fault (or the scenario's
    capacity.faults), again with that fault held the whole time.

    Exit 0 a breaking point was found (by every search), 1 the load held up to --max, 2 bad
    scenario or flags, 3 the stack or the load generator failed, 130 interrupted.
    """
    from harness.capacity import CapacityRequest, run_capacity
    from harness.durations import DurationError, parse_duration

    try:
        hold_s = parse_duration(hold) if hold is not None else None
    except DurationError as exc:
        raise BadInputError(f"--hold: {exc}") from None
    outcome = run_capacity(
        CapacityRequest(
            scenario=scenario,
            start=start,
            step=step,
            hold=hold_s,
            max=maximum,
            faults=faults or None,
            reports=reports,
            state_dir=state_dir,
            allow_targets=allow_targets,
        ),
        tell=lambda line: click.echo(f"harness: {line}", err=True),
    )
    return outcome.exit_code


@cli.command("report", context_settings={"show_default": True})
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--step",
    type=float,
    default=1.0,
    show_envvar=True,
    help="Seconds per point of the plots (a multiple of 0.1).",
)
def report_command(run_dir: Path, step: float) -> int:
    """Rebuild summary.json, junit.xml and report.html of RUN_DIR from what it recorded,
    judging its SLOs again, and print the verdict.

    Exits with the run's own exit code, so a CI can gate on a rebuilt report: 0 every SLO met,
    1 one failed, 3 the run is incomplete (crashed), 4 aborted by a guard, 130 interrupted;
    2 when RUN_DIR is not a run directory.
    """
    from harness.report import rebuild
    from harness.report.terminal import show

    report, paths = rebuild(run_dir, step=step)
    show(report, _console())
    for path in paths.all:
        click.echo(f"wrote {path}")
    return report.exit_code


@cli.command("gameday", context_settings={"show_default": True})
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@_workers_option
@_scenario_stack_option("local", "compose", envvar="HARNESS_GAMEDAY_STACK")
@_reports_option
@_state_dir_option
@click.option(
    "--web-host",
    default="127.0.0.1",
    show_envvar=True,
    help="Address Locust's web UI (and the chaos tab) listens on.",
)
@click.option(
    "--web-port",
    type=click.IntRange(0, 65535),
    default=8089,
    show_envvar=True,
    help="Port of the web UI; 0: any free port.",
)
@_allow_target_option
def gameday_command(
    scenario: Path,
    workers: int | None,
    stack_kind: StackKind | None,
    reports: Path,
    state_dir: Path,
    web_host: str,
    web_port: int,
    allow_targets: tuple[str, ...],
) -> int:
    """Run SCENARIO as a game day: the load and scheduled faults of `harness run`, plus Locust's
    web UI with a chaos page (its URL, with the token, is printed) to inject any fault of the
    scenario's catalogue now and revert one or all, and the SLOs and guards live.

    From another terminal: `harness inject NAME`, `harness revert NAME|--all`, `harness status`.
    It ends when the phases end, or earlier with Ctrl-C or Locust's Stop button (exit 130); every
    fault, scheduled or by hand, is reverted, and the report shows who did what. Exit codes as
    `harness run`.
    """
    from harness.engine import RunRequest, run

    outcome = run(
        RunRequest(
            scenario=scenario,
            workers=workers,
            stack=stack_kind,
            reports=reports,
            state_dir=state_dir,
            web_host=web_host,
            web_port=web_port,
            allow_targets=allow_targets,
        )
    )
    error = outcome.detail.get("error")
    click.echo(
        f"game day {outcome.status}: {outcome.run_dir.root}" + (f" ({error})" if error else "")
    )
    return outcome.exit_code


_who_option = click.option(
    "--who",
    default="",
    show_default="user@host",
    show_envvar=True,
    help="Who does it, as the journal and the report say.",
)


@cli.command("inject", context_settings={"show_default": True})
@click.argument("name")
@click.option(
    "--for",
    "for_",
    default="",
    show_default="the fault's `for`, else until reverted",
    show_envvar=True,
    help="How long, e.g. 30s; reverted by itself then.",
)
@_who_option
@_state_dir_option
def inject_command(name: str, for_: str, who: str, state_dir: Path) -> int:
    """Inject fault NAME of the running game day's catalogue now. Exit 2 for a name it does not
    have, 3 when no game day runs, 1 when it is already in force."""
    from harness.durations import DurationError, parse_duration
    from harness.gameday import GamedayClient, default_who
    from harness.gameday.text import fault_line

    try:
        for_s = parse_duration(for_) if for_ else None
    except DurationError as exc:
        raise BadInputError(f"--for: {exc}") from None
    answer = GamedayClient.find(state_dir).inject(name, who=who or default_who(), for_s=for_s)
    click.echo(fault_line(answer["fault"]))
    return ExitCode.OK if answer.get("ok") else ExitCode.INFRASTRUCTURE


@cli.command("revert", context_settings={"show_default": True})
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Revert every fault in force.")
@_who_option
@_state_dir_option
def revert_command(name: str | None, all_: bool, who: str, state_dir: Path) -> int:
    """Revert fault NAME (or --all) of the running game day now. Exit 2 for a name it does not
    have, 3 when no game day runs or a revert failed, 1 when NAME is not in force."""
    from harness.gameday import GamedayClient, default_who
    from harness.gameday.text import fault_line

    if (name is None) == (not all_):
        raise BadInputError("revert: give a fault NAME or --all (not both)")
    answer = GamedayClient.find(state_dir).revert(None if all_ else name, who=who or default_who())
    for fault in [*answer.get("reverted", []), *answer.get("failed", [])]:
        click.echo(fault_line(fault))
    if not answer.get("reverted") and not answer.get("failed"):
        click.echo("nothing was in force")
    return ExitCode.OK if answer.get("ok") else ExitCode.INFRASTRUCTURE


def _console() -> Console:
    # Piped output (CI logs, tests) gets room for whole URLs instead of Rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code; never a traceback for our errors."""
    try:
        result = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("harness: interrupted", err=True)
        return ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        click.echo("harness: interrupted", err=True)
        return ExitCode.INTERRUPTED
    except click.exceptions.ClickException as exc:
        exc.show()
        return ExitCode.BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except BadInputError as exc:
        click.echo(f"harness: {exc}", err=True)
        return ExitCode.BAD_INPUT
    except HarnessError as exc:
        click.echo(f"harness: {exc}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
