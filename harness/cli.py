"""The ``harness`` command. Thin by design: parse, call the library, map errors to exit codes.

Every option also reads an environment variable (``HARNESS_<COMMAND>_<OPTION>``, shown in
``--help``), so CI can configure a run without editing the command line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from harness import __version__
from harness.errors import BadInputError, HarnessError
from harness.scenario import StackKind
from harness.stack.config import TOXIPROXY_KINDS, LocalStackConfig, ToxiproxyKind, parse_env_pairs
from harness.stack.local import LocalStack
from harness.stack.ports import StackPorts
from harness.stack.render import info_table, status_table
from harness.stack.state import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from harness.stack.compose import ComposeStack

# Exit codes as ARCHITECTURE.md fixes them.
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INFRASTRUCTURE = 3
EXIT_INTERRUPTED = 130


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
    default="harness",
    show_envvar=True,
    help="Compose project name (with --stack compose).",
)
_compose_file_option = click.option(
    "--compose-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_default="compose/docker-compose.yml of the checkout",
    show_envvar=True,
    help="The compose file (with --stack compose).",
)


def _compose_stack(project: str, compose_file: Path | None, **settings: object) -> ComposeStack:
    from harness.stack.compose import DEFAULT_COMPOSE_FILE, ComposeStack, ComposeStackConfig

    config = ComposeStackConfig(
        project=project,
        compose_file=(compose_file or DEFAULT_COMPOSE_FILE).absolute(),
        **settings,  # type: ignore[arg-type]
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
            entry_port=entry_port,
            toxiproxy_port=toxiproxy_port,
            admin_token=admin_token,
            app_env=parse_env_pairs(app_env),
        )
        started = time.monotonic()
        info = compose.up()
        elapsed = time.monotonic() - started
        state = "already up, healthy: left as is" if compose.reused else f"up in {elapsed:.1f}s"
        _console().print(f"compose project {project!r} {state}")
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
def down(
    state_dir: Path, purge: bool, stack_kind: str, project: str, compose_file: Path | None
) -> None:
    """Stop every process of the local stack. Safe to repeat.

    With --stack compose: remove the project's containers, networks and volumes.
    """
    if stack_kind == "compose":
        _compose_stack(project, compose_file).down()
        click.echo(f"compose project {project!r} is down")
        return
    stack = LocalStack(state_dir)
    stack.down(purge=purge)
    click.echo(f"stack in {stack.state_dir} is down")


@cli.command(context_settings={"show_default": True})
@_state_dir_option
@_stack_option
@_project_option
@_compose_file_option
def status(state_dir: Path, stack_kind: str, project: str, compose_file: Path | None) -> int:
    """Show each process of the local stack. Exit 0 when all are alive and healthy, else 3."""
    if stack_kind == "compose":
        snapshot = _compose_stack(project, compose_file).status()
    else:
        snapshot = LocalStack(state_dir).status()
    if not snapshot.exists:
        click.echo(f"no stack is up in {snapshot.location}")
        return EXIT_INFRASTRUCTURE
    _console().print(status_table(snapshot))
    return EXIT_OK if snapshot.healthy else EXIT_INFRASTRUCTURE


@cli.command(context_settings={"show_default": True})
@_state_dir_option
def rollback(state_dir: Path) -> int:
    """Revert every fault a crashed or killed run left behind (toxics, proxies down, killed or
    paused instances, maintenance mode), from the fault journal in the state directory.

    Prints one line per fault. Exit 0 when nothing is left in force (then the journal is set
    aside, so a second rollback has nothing to do), 3 when something could not be reverted.
    """
    # Imported here, so commands that inject nothing do not load the Toxiproxy client.
    from harness.faults import Journal, roll_back

    result = roll_back(
        Journal.in_state_dir(state_dir), on_outcome=lambda outcome: click.echo(outcome.line)
    )
    for problem in result.problems:
        click.echo(f"unreadable: {problem}")
    click.echo(result.summary)
    return EXIT_OK if result.clean else EXIT_INFRASTRUCTURE


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
@click.option(
    "--workers",
    type=click.IntRange(0, 512),
    default=None,
    show_default="the scenario's load.workers",
    show_envvar=True,
    help="Locust worker processes on this machine; 0 runs the load in one process.",
)
@click.option(
    "--stack",
    "stack_kind",
    envvar="HARNESS_RUN_STACK",
    type=click.Choice(["local", "compose", "external"]),
    default=None,
    show_default="the scenario's stack.kind",
    show_envvar=True,
    help="Where the system under test comes from.",
)
@click.option(
    "--reports",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_envvar=True,
    help="Where the run directory is created.",
)
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
def run_command(
    scenario: Path,
    workers: int | None,
    stack_kind: StackKind | None,
    reports: Path,
    state_dir: Path,
    remote_workers: int,
    master_bind: str,
    master_port: int,
    worker_timeout: float,
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
            reports=reports,
            state_dir=state_dir,
            remote_workers=remote_workers,
            master_bind=master_bind,
            master_port=master_port,
            worker_timeout_s=worker_timeout,
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


def _console() -> Console:
    # Piped output (CI logs, tests) gets room for whole URLs instead of Rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code; never a traceback for our errors."""
    try:
        result = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("harness: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("harness: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except BadInputError as exc:
        click.echo(f"harness: {exc}", err=True)
        return EXIT_BAD_INPUT
    except HarnessError as exc:
        click.echo(f"harness: {exc}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
