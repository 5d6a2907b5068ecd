"""The commands that run a scenario or read what a run left: ``run``, ``gameday``,
``capacity``, ``worker``, ``report`` and ``rollback``.

Each imports its library call when it is invoked, not with the CLI: the run pipeline, the fault
injectors and the report bring in pydantic, the Toxiproxy client (requests) and lark, the better
part of a second that ``harness status``, ``inject`` or ``--help`` should not pay.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.core import ParameterSource

from harness.cli.options import (
    GAMEDAY_METRICS_PORT,
    allow_target_option,
    compose_file_option,
    duration,
    given_ports,
    live_metrics_options,
    port_options,
    project_option,
    reports_option,
    scenario_stack_option,
    state_dir_option,
    workers_option,
)
from harness.cli.output import console
from harness.exit_codes import ExitCode
from harness.faults.targets import check_record
from harness.load.launch import WorkerArgs
from harness.load.otel import check_otel
from harness.safety import run_policy

if TYPE_CHECKING:
    from harness.scenario import StackKind

__all__ = [
    "capacity_command",
    "gameday_command",
    "report_command",
    "rollback",
    "run_command",
    "validate_command",
    "worker",
]

_SCENARIO = click.Path(dir_okay=False, path_type=Path)


@click.command("run", context_settings={"show_default": True})
@click.argument("scenario", type=_SCENARIO)
@workers_option
@scenario_stack_option("local", "compose", "external", envvar="HARNESS_RUN_STACK")
@project_option("stack kind compose")
@compose_file_option("stack kind compose", must_exist=True)
@reports_option("run directory")
@state_dir_option
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
@click.option(
    "--baseline",
    default=None,
    show_envvar=True,
    help="Also compare the run with this one (a run directory, latest, latest-pass or a git "
    "ref) in the history of --reports, as `harness compare` does; exit 1 when either fails.",
)
@allow_target_option
@live_metrics_options("off")
@port_options
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
    baseline: str | None,
    allow_targets: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str,
    metrics_linger: float,
    otel: bool,
    ports: dict[str, Any],
) -> int:
    """Run SCENARIO: bring the stack up, drive the load through its phases, inject its faults,
    record every request, revert every fault however the run ends, and judge it.

    First the checks of `harness validate`, and the stack's ports: nothing starts until they
    pass. A stack the harness started and left up is used, brought to the scenario's settings
    (its shop instances restarted when stack.env differs; the whole stack when a port option
    given here differs), unless a game day is using it. The port options are `harness up`'s
    (a compose stack takes --entry-port and --toxiproxy-port; an external one none).

    A live progress line goes to stderr every second; the verdict table and the report's path are
    printed at the end. Exit 0 every SLO met, 1 an SLO failed, 2 bad scenario or SLO text,
    3 the stack or the load generator failed, 4 aborted by a guard (the report is still written),
    130 interrupted (after every fault was reverted). With --baseline the run is also compared
    with that run (no passing run yet: a note, the SLOs alone decide).
    """
    # deferred: pydantic and the Toxiproxy client (requests), see the module docstring
    from harness.capacity import extensions_for
    from harness.run.pipeline import run  # deferred: as above
    from harness.run.preflight import resolve_scenario  # deferred: as above
    from harness.run.request import RunRequest, ScenarioOverrides  # deferred: as above

    if baseline is not None:
        from harness.report.baseline import check_baseline_spec  # deferred: as above

        check_baseline_spec(baseline)  # a name that can mean no run: exit 2 before any load
    if otel:
        check_otel()
    chosen = resolve_scenario(scenario, ScenarioOverrides(workers, stack_kind, allow_targets))
    outcome = run(
        chosen,
        RunRequest(
            compose_project=project,
            compose_file=compose_file,
            reports=reports,
            state_dir=state_dir,
            remote_workers=remote_workers,
            master_bind=master_bind,
            master_port=master_port,
            worker_timeout_s=worker_timeout,
            # A capacity staircase run by hand stops at its broken step, as in `harness capacity`.
            extensions=extensions_for(chosen),
            source=str(scenario),
            ports=given_ports(ports),
            baseline=baseline,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            metrics_linger_s=metrics_linger,
            otel=otel,
        ),
    )
    error = outcome.detail.get("error")
    click.echo(f"run {outcome.status}: {outcome.run_dir.root}" + (f" ({error})" if error else ""))
    return outcome.exit_code


@click.command("validate", context_settings={"show_default": True})
@click.argument("scenario", type=_SCENARIO)
@scenario_stack_option("local", "compose", "external", envvar="HARNESS_VALIDATE_STACK")
@project_option("stack kind compose")
@compose_file_option("stack kind compose", must_exist=True)
@allow_target_option
def validate_command(
    scenario: Path,
    stack_kind: StackKind | None,
    project: str,
    compose_file: Path | None,
    allow_targets: tuple[str, ...],
) -> int:
    """Check SCENARIO without starting anything: the model, the SLOs, the locustfile (imported
    in a subprocess) and its user classes, the fault targets against the stack's declared
    instances and proxies, the hosts against the policy. `harness run` runs the same checks
    first. Exit 0 (one line "valid: ...") or 2 (one line naming the file, field and value).
    """
    # deferred: pydantic and the Toxiproxy client (requests), see the module docstring
    from harness.run.preflight import preflight, resolve_scenario
    from harness.run.request import RunRequest, ScenarioOverrides  # deferred: as above

    chosen = resolve_scenario(scenario, ScenarioOverrides(None, stack_kind, allow_targets))
    request = RunRequest(compose_project=project, compose_file=compose_file, source=str(scenario))
    checked = preflight(chosen, request)
    counts = ", ".join(
        f"{n} {word}{'' if n == 1 else 's'}"
        for n, word in (
            (len(chosen.load.phases), "phase"),
            (len(chosen.faults), "fault"),
            (len(chosen.slos), "SLO"),
        )
    )
    click.echo(
        f"valid: {scenario} ({chosen.stack.kind} stack, {counts}; user classes "
        f"{', '.join(checked.user_classes)})"
    )
    return ExitCode.OK


@click.command("gameday", context_settings={"show_default": True})
@click.argument("scenario", type=_SCENARIO)
@workers_option
@scenario_stack_option("local", "compose", envvar="HARNESS_GAMEDAY_STACK")
@reports_option("run directory")
@state_dir_option
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
@allow_target_option
@live_metrics_options(str(GAMEDAY_METRICS_PORT))
def gameday_command(
    scenario: Path,
    workers: int | None,
    stack_kind: StackKind | None,
    reports: Path,
    state_dir: Path,
    web_host: str,
    web_port: int,
    allow_targets: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str,
    metrics_linger: float,
    otel: bool,
) -> int:
    """Run SCENARIO as a game day: the load and scheduled faults of `harness run`, plus Locust's
    web UI with a chaos page (its URL, with the token, is printed) to inject any fault of the
    scenario's catalogue now and revert one or all, and the SLOs and guards live.

    From another terminal: `harness inject NAME`, `harness revert NAME|--all`, `harness status`.
    It ends when the phases end, or earlier with Ctrl-C or Locust's Stop button (exit 130); every
    fault, scheduled or by hand, is reverted, and the report shows who did what. Exit codes as
    `harness run`.
    """
    # deferred: pydantic and the Toxiproxy client (requests), see the module docstring
    from harness.gameday.runner import run_gameday
    from harness.run.request import RunRequest, ScenarioOverrides  # deferred: as above

    if otel:
        check_otel()
    outcome = run_gameday(
        scenario,
        RunRequest(
            reports=reports,
            state_dir=state_dir,
            web_host=web_host,
            web_port=web_port,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            metrics_linger_s=metrics_linger,
            # The default port taken (another game day, any program): a free one, said.
            metrics_fallback=_defaulted("metrics_port"),
            otel=otel,
        ),
        ScenarioOverrides(workers, stack_kind, allow_targets),
    )
    error = outcome.detail.get("error")
    click.echo(
        f"game day {outcome.status}: {outcome.run_dir.root}" + (f" ({error})" if error else "")
    )
    return outcome.exit_code


@click.command("capacity", context_settings={"show_default": True})
@click.argument("scenario", type=_SCENARIO)
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
    "--hold",
    type=str,
    default=None,
    show_envvar=True,
    callback=duration("--hold"),
    help="How long each step lasts, like 5s.",
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
@reports_option("capacity directory")
@state_dir_option
@allow_target_option
@live_metrics_options("off")
def capacity_command(
    scenario: Path,
    start: float | None,
    step: float | None,
    hold: float | None,
    maximum: float | None,
    faults: tuple[str, ...],
    reports: Path,
    state_dir: Path,
    allow_targets: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str,
    metrics_linger: float,
    otel: bool,
) -> int:
    """Find the breaking point of SCENARIO (load.model: open): step the offered load up, judge
    the scenario's SLOs over each step, stop at the first step that breaks, report the last load
    that held, the knee of the latency curve and the 503 onset; with --fault (or the scenario's
    capacity.faults), again with that fault held the whole time.

    Exit 0 a breaking point was found (by every search), 1 the load held up to --max, 2 bad
    scenario or flags, 3 the stack or the load generator failed, 130 interrupted.
    """
    # deferred: pydantic, the Toxiproxy client (requests) and lark, see the module docstring
    from harness.capacity import CapacityRequest, run_capacity

    if otel:
        check_otel()
    outcome = run_capacity(
        CapacityRequest(
            scenario=scenario,
            start=start,
            step=step,
            hold=hold,
            max=maximum,
            faults=faults or None,
            reports=reports,
            state_dir=state_dir,
            allow_targets=allow_targets,
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            metrics_linger_s=metrics_linger,
            otel=otel,
        ),
        tell=lambda line: click.echo(f"harness: {line}", err=True),
    )
    return outcome.exit_code


@click.command(context_settings={"show_default": True})
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
@click.option(
    "--otel",
    is_flag=True,
    default=False,
    show_envvar=True,
    help="Locust's own OpenTelemetry instrumentation, as the run's --otel (needs "
    "`pip install 'locust[otel]'`).",
)
def worker(master_host: str, master_port: int, locustfile: Path | None, otel: bool) -> NoReturn:
    """Run a Locust worker with the harness recorder for a remote `harness run` (scale-out).

    It connects to the master, runs the users the master gives it, ships what it records, and
    exits when the run ends. This process becomes the worker (same PID, signals and exit code).
    """
    # deferred: pydantic and the Toxiproxy client (requests), see the module docstring
    from harness.run.children import exec_worker

    if otel:
        check_otel()
    exec_worker(WorkerArgs(master_host, master_port, locustfile, otel=otel))


@click.command("report", context_settings={"show_default": True})
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
    1 one failed, 3 the run is incomplete (crashed) or left faults in force, 4 aborted by a
    guard, 130 interrupted; 2 when RUN_DIR is not a run directory. How the run itself ended
    is kept from the run (its reason too); only the SLOs are judged again.
    """
    # deferred: pydantic and the Toxiproxy client (requests), see the module docstring
    from harness.report import rebuild

    # deferred: pydantic and the Toxiproxy client (requests), see the module docstring
    from harness.report.terminal import show

    report, paths = rebuild(run_dir, step=step)
    show(report, console())
    for path in paths.all:
        click.echo(f"wrote {path}")
    return report.exit_code


@click.command(context_settings={"show_default": True})
@state_dir_option
@allow_target_option
def rollback(state_dir: Path, allow_targets: tuple[str, ...]) -> ExitCode:
    """Revert every fault a crashed or killed run left behind (toxics, proxies down, killed or
    paused instances, maintenance mode), from the fault journal in the state directory.

    Prints one line per fault. Exit 0 when nothing is left in force (then the journal is set
    aside, so a second rollback has nothing to do), 3 when something could not be reverted.
    """
    # deferred: pydantic and the Toxiproxy client (requests), see the module docstring
    from harness.faults import Journal, roll_back

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


def _defaulted(param: str) -> bool:
    """Whether the current command's ``param`` took its default (no flag, no variable)."""
    source = click.get_current_context().get_parameter_source(param)
    return source in (None, ParameterSource.DEFAULT)
