"""The options more than one command takes, each spelled once, and the stack's port flags,
generated from one table.

Every option also reads an environment variable, shown in ``--help``. Most take the name click
derives from the root group's ``auto_envvar_prefix``, ``HARNESS_<COMMAND>_<PARAMETER>``
(``harness up --entry-port`` reads ``HARNESS_UP_ENTRY_PORT``), so one definition serves several
commands and each command still has variables of its own. Options that mean the same thing to
every command name theirs (``HARNESS_STATE_DIR``, ``HARNESS_ALLOW_TARGETS``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import click
from click.core import ParameterSource

from harness.durations import DurationError, parse_duration
from harness.errors import BadInputError
from harness.safety import normalize_host
from harness.stack.ports import StackPorts
from harness.stack.state import DEFAULT_STATE_DIR

__all__ = [
    "GAMEDAY_METRICS_PORT",
    "PORT_FLAGS",
    "PortFlag",
    "allow_target_option",
    "compose_file_option",
    "duration",
    "given_ports",
    "live_metrics_options",
    "port_options",
    "project_option",
    "reports_option",
    "scenario_stack_option",
    "stack_options",
    "state_dir_option",
    "who_option",
    "workers_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def _stacked(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several option decorators as one, listed in the order ``--help`` shows them."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


# --- where things are kept ------------------------------------------------------------------

state_dir_option = click.option(
    "--state-dir",
    envvar="HARNESS_STATE_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    help="Where the stack keeps its state file, logs and database.",
)


def reports_option(made: str) -> Callable[[F], F]:
    """``--reports``: where the command creates its ``made`` (a run or capacity directory)."""
    return click.option(
        "--reports",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("reports"),
        show_envvar=True,
        help=f"Where the {made} is created.",
    )


# --- which stack ----------------------------------------------------------------------------


def project_option(applies: str) -> Callable[[F], F]:
    """``--project``; ``applies`` says when, in the words of the command's own ``--stack``."""
    return click.option(
        "--project",
        default="",
        show_default="the scenario's stack.project, else harness",
        show_envvar=True,
        help=f"Compose project name ({applies}).",
    )


def compose_file_option(applies: str, *, must_exist: bool = False) -> Callable[[F], F]:
    """``--compose-file``; ``must_exist`` where the command needs the file itself now."""
    return click.option(
        "--compose-file",
        type=click.Path(dir_okay=False, exists=must_exist, path_type=Path),
        default=None,
        show_default="the scenario's stack.compose_file, else compose/docker-compose.yml",
        show_envvar=True,
        help=f"The compose file ({applies}).",
    )


# The stack commands (up, down, status) act on the local stack or a compose project.
stack_options: Final = _stacked(
    click.option(
        "--stack",
        "stack_kind",
        type=click.Choice(["local", "compose"]),
        default="local",
        show_envvar=True,
        help="Processes on 127.0.0.1, or the Docker Compose project of compose/docker-compose.yml.",
    ),
    project_option("with --stack compose"),
    compose_file_option("with --stack compose"),
    click.option(
        "--scenario",
        "scenario_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        show_envvar=True,
        help="Take the compose project, file and topology (entry, backends, Toxiproxy, proxies) "
        "from this scenario's stack section (with --stack compose; for your own compose "
        "project).",
    ),
)


def scenario_stack_option(*kinds: str, envvar: str) -> Callable[[F], F]:
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


# --- the stack's ports ----------------------------------------------------------------------


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


@dataclass(frozen=True)
class PortFlag:
    """One port flag of the local stack: ``field`` is the :class:`StackPorts` field it sets
    (and takes its default from); ``off`` lets 0 turn the piece off; ``many`` takes one port
    per instance. Its variable is ``HARNESS_<COMMAND>_<FLAG>``, e.g. ``HARNESS_UP_ENTRY_PORT``."""

    flag: str
    field: str
    help: str
    off: bool = False
    many: bool = False

    @property
    def param(self) -> str:
        """The parameter name click gives the flag (and the variable is spelled from)."""
        return self.flag.lstrip("-").replace("-", "_")

    def option(self) -> Callable[[F], F]:
        default = getattr(StackPorts(), self.field)
        if self.many:
            return click.option(
                self.flag,
                type=_PortList(),
                default=",".join(map(str, default)),
                show_envvar=True,
                help=self.help,
            )
        return click.option(
            self.flag,
            type=click.IntRange(0 if self.off else 1, 65535),
            default=default,
            show_envvar=True,
            help=self.help,
        )


PORT_FLAGS: Final = (
    PortFlag("--entry-port", "entry", "Caddy, the stack's entry point."),
    PortFlag("--toxiproxy-port", "toxiproxy_api", "Toxiproxy's API."),
    PortFlag("--postgres-port", "postgres", "PostgreSQL itself."),
    PortFlag(
        "--app-db-proxy-port",
        "app_db_proxy",
        "The Toxiproxy proxy the shop reaches PostgreSQL through.",
    ),
    PortFlag(
        "--app-ports",
        "apps",
        "One port per shop instance; their number is the number of instances.",
        many=True,
    ),
    PortFlag(
        "--lb-proxy-ports",
        "lb_proxies",
        "The Toxiproxy proxies Caddy reaches each instance through.",
        many=True,
    ),
    PortFlag(
        "--caddy-admin-port",
        "caddy_admin",
        "Only 0: Caddy's admin API is the Unix socket caddy/admin.sock in the state dir.",
        off=True,
    ),
)


def port_options(command: F) -> F:
    """Every flag of :data:`PORT_FLAGS`, handed to ``command`` as one ``ports`` mapping keyed
    by :class:`StackPorts` field. The values are not checked together yet: only the local stack
    binds them all (``StackPorts(**ports)``); a compose project takes the entry and Toxiproxy's."""

    @functools.wraps(command)
    def collect(*args: Any, **kwargs: Any) -> Any:
        ports = {flag.field: kwargs.pop(flag.param) for flag in PORT_FLAGS}
        return command(*args, ports=ports, **kwargs)

    return _stacked(*(flag.option() for flag in PORT_FLAGS))(cast(F, collect))


def given_ports(ports: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The port flags given on the command line or by their variables, not defaulted: to
    ``harness run`` a default means "the ports of the stack up", not "move it to 8080"."""
    ctx = click.get_current_context()
    return tuple(
        (flag.field, ports[flag.field])
        for flag in PORT_FLAGS
        if ctx.get_parameter_source(flag.param) not in (None, ParameterSource.DEFAULT)
    )


# --- the blast radius -----------------------------------------------------------------------


def _allowed_hosts(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    # Repeated, or several in one value (the environment variable): commas or spaces.
    hosts = [h for value in values for h in value.replace(",", " ").split()]
    return tuple(dict.fromkeys(normalize_host(h, "--allow-target") for h in hosts))


allow_target_option = click.option(
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


# --- the load and the people ----------------------------------------------------------------

workers_option = click.option(
    "--workers",
    type=click.IntRange(0, 512),
    default=None,
    show_default="the scenario's load.workers",
    show_envvar=True,
    help="Locust worker processes on this machine; 0 runs the load in one process.",
)

who_option = click.option(
    "--who",
    default="",
    show_default="user@host",
    show_envvar=True,
    help="Who does it, as the journal and the report say.",
)


def duration(flag: str, *, blank_is_none: bool = False) -> Callable[..., float | None]:
    """A callback that reads a duration flag (``30s``) into seconds; None when it is not given
    (or, with ``blank_is_none``, given empty). A bad one is bad input naming the flag, the way
    scenario errors name their field."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
        if value is None or (blank_is_none and not value):
            return None
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise BadInputError(f"{flag}: {exc}") from None

    return parse


# --- live metrics and telemetry -------------------------------------------------------------

# A game day's live metrics, on by default: a fixed port, so a Prometheus scrape config written
# once keeps working (next to Locust's web UI on 8089; 0 picks a free one).
GAMEDAY_METRICS_PORT: Final = 9646


def _metrics_port(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``off`` (or empty): no endpoint; else a port, 0 for any free one."""
    if value is None or value.strip().lower() in ("", "off"):
        return None
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise BadInputError(
            f"--metrics-port: expected a port (0: any free one) or off, got {value!r}"
        )
    return port


def _metrics_host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An address to listen on, checked as every host of the harness is (``normalize_host``),
    and literal: a name other than localhost could resolve anywhere, or to several places."""
    host = normalize_host(value, "--metrics-host")
    if host == "localhost" or host.endswith(".localhost"):
        return "127.0.0.1"  # a name for loopback (RFC 6761): its address, which binds once
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise BadInputError(
            f"--metrics-host: expected an address to listen on (127.0.0.1, ::1, 0.0.0.0), "
            f"got {value!r}"
        ) from None
    return host


def live_metrics_options(default_port: str, *, linger: bool = True) -> Callable[[F], F]:
    """``--metrics-port``, ``--metrics-host`` (and ``--metrics-linger``) and ``--otel``: the
    run's OpenMetrics endpoint on the Locust master (harness.run.live_metrics), Locust's own
    OpenTelemetry instrumentation. ``default_port``: ``off``, or the port a game day uses."""
    options = [
        click.option(
            "--metrics-port",
            default=default_port,
            callback=_metrics_port,
            metavar="PORT|off",
            show_envvar=True,
            help="Serve the run's live metrics (OpenMetrics, for Prometheus) on this port of "
            "the Locust master, at /metrics; 0: any free port (the URL is printed); off: none.",
        ),
        click.option(
            "--metrics-host",
            default="127.0.0.1",
            callback=_metrics_host,
            show_envvar=True,
            help="Address the live metrics listen on (0.0.0.0: every interface).",
        ),
    ]
    if linger:
        options.append(
            click.option(
                "--metrics-linger",
                default="15s",
                callback=duration("--metrics-linger"),
                show_envvar=True,
                help="After the load, keep serving the final values until a scrape has read "
                "them, this long at most (only when the endpoint was scraped during the run).",
            )
        )
    options.append(
        click.option(
            "--otel",
            is_flag=True,
            default=False,
            show_envvar=True,
            help="Turn on Locust's own OpenTelemetry instrumentation in every Locust process "
            "(needs `pip install 'locust[otel]'`; the collector from the OTEL_* variables).",
        )
    )
    return _stacked(*options)
