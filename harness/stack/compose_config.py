"""What a compose stack is asked to be: which project, which compose file, which services play
which part (:class:`ComposeTopology`), and how a scenario's ``stack:`` section says so.

Pure data: no Docker here, so the scenario checks and the run pipeline can build a compose
stack's settings without the Docker SDK.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from harness.errors import BadInputError
from harness.stack.base import DeclaredParts, StackOptions, StackSection
from harness.stack.ports import PORT_FLAG
from harness.stack.state import DEFAULT_STATE_DIR
from harness.stack.topology import APP, DATABASE, ENTRY, TOXIPROXY

__all__ = [
    "COMPOSE_DIR",
    "COMPOSE_FILE_ENV",
    "DB_PASSWORD_ENV",
    "DB_SUPERUSER_PASSWORD_ENV",
    "DEFAULT_COMPOSE_FILE",
    "DEFAULT_ENTRY_PORT",
    "DEFAULT_PROJECT",
    "DEFAULT_TOXIPROXY_PORT",
    "OTHER",
    "POSTGRES_PORT",
    "POSTGRES_SERVICE",
    "PROJECT_ENV",
    "ComposeSection",
    "ComposeStackConfig",
    "ComposeTopology",
    "ProxySpec",
    "config_from_section",
    "db_password_of",
    "down_command",
]

COMPOSE_DIR: Final = Path(
    os.environ.get("HARNESS_COMPOSE_DIR") or Path(__file__).resolve().parents[2] / "compose"
)
DEFAULT_COMPOSE_FILE: Final = COMPOSE_DIR / "docker-compose.yml"
DEFAULT_PROJECT: Final = "harness"
DEFAULT_ENTRY_PORT: Final = 8080
DEFAULT_TOXIPROXY_PORT: Final = 8474

# The sample stack's database, reported (and reachable for tests) when a project has it.
POSTGRES_SERVICE: Final = "postgres"
POSTGRES_PORT: Final = 5432
# Services that are neither entry, Toxiproxy nor backend.
OTHER: Final = "service"

# The variables the sample compose file takes its database passwords from (see its header).
DB_PASSWORD_ENV: Final = "HARNESS_SHOP_DB_PASSWORD"  # noqa: S105 - a variable name
DB_SUPERUSER_PASSWORD_ENV: Final = "HARNESS_DB_SUPERUSER_PASSWORD"  # noqa: S105
# The shop's database URL in its environment, which holds the project's password.
_SHOP_DATABASE_URL: Final = "SHOP_DATABASE_URL"

# The compose project and file `harness run` uses when neither the command line nor the scenario
# names one (as a `--project` option of `harness run` would read them).
PROJECT_ENV: Final = "HARNESS_RUN_PROJECT"
COMPOSE_FILE_ENV: Final = "HARNESS_RUN_COMPOSE_FILE"


@dataclass(frozen=True)
class ProxySpec:
    """A Toxiproxy proxy to create at ``up`` (``listen`` inside the Toxiproxy container,
    ``upstream`` as that container reaches it)."""

    name: str
    listen: str
    upstream: str


@dataclass(frozen=True)
class ComposeTopology:
    """Which services of the project play which part; the defaults are the sample stack's.
    Ports are the ones the services listen on inside their containers."""

    entry_service: str = "caddy"
    entry_port: int = 80
    ready_path: str = "/readyz"
    backends: tuple[str, ...] = ("app-1", "app-2", "app-3")
    backend_port: int = 8000
    health_path: str = "/healthz"
    toxiproxy_service: str = "toxiproxy"
    toxiproxy_port: int = 8474
    proxies: tuple[ProxySpec, ...] = ()

    def role(self, service: str) -> str:
        if service == self.entry_service:
            return ENTRY
        if service == self.toxiproxy_service:
            return TOXIPROXY
        if service in self.backends:
            return APP
        if service == POSTGRES_SERVICE:
            return DATABASE
        return OTHER

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backends"] = list(self.backends)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComposeTopology:
        try:
            proxies = tuple(ProxySpec(**p) for p in data.get("proxies") or ())
            fields = {k: v for k, v in data.items() if k != "proxies"}
            topology = cls(**fields, proxies=proxies)
        except TypeError as exc:
            raise BadInputError(f"not a compose topology: {dict(data)!r} ({exc})") from None
        return replace(topology, backends=tuple(topology.backends))


@dataclass(frozen=True)
class ComposeStackConfig:
    """What ``up`` asks of the compose project. ``admin_token`` empty: make one up.
    ``app_env`` is passed to compose for the variables the compose file reads (the sample's
    ``SHOP_DB_TIMEOUT_MS``, ``SHOP_MAX_INFLIGHT``; any a user's file reads).
    ``entry_port`` and ``toxiproxy_port`` are the host ports the sample file publishes on."""

    project: str = DEFAULT_PROJECT
    compose_file: Path = DEFAULT_COMPOSE_FILE
    entry_port: int = DEFAULT_ENTRY_PORT
    toxiproxy_port: int = DEFAULT_TOXIPROXY_PORT
    admin_token: str = ""
    app_env: tuple[tuple[str, str], ...] = field(default=())
    topology: ComposeTopology = field(default_factory=ComposeTopology)
    # The harness's state directory: the fault journal of runs against this project.
    state_dir: Path = DEFAULT_STATE_DIR
    # The ports came from the command line: a project up on others is brought to these.
    ports_asked: bool = False


# --- a scenario's stack section, as the compose backend reads it ---------------------------------


class _EntrySection(Protocol):
    @property
    def service(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def ready_path(self) -> str: ...


class _BackendsSection(Protocol):
    @property
    def services(self) -> tuple[str, ...]: ...
    @property
    def port(self) -> int: ...
    @property
    def health_path(self) -> str: ...


class _ToxiproxySection(Protocol):
    @property
    def service(self) -> str: ...
    @property
    def port(self) -> int: ...


class _ProxySection(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def listen(self) -> str: ...
    @property
    def upstream(self) -> str: ...


class ComposeSection(StackSection, Protocol):
    """The keys only kind compose reads (:class:`harness.scenario.Stack` has them)."""

    @property
    def compose_file(self) -> Path | None: ...
    @property
    def project(self) -> str | None: ...
    @property
    def entry(self) -> _EntrySection | None: ...
    @property
    def backends(self) -> _BackendsSection | None: ...
    @property
    def toxiproxy(self) -> _ToxiproxySection | None: ...
    @property
    def proxies(self) -> tuple[_ProxySection, ...]: ...


def config_from_section(section: ComposeSection, options: StackOptions) -> ComposeStackConfig:
    """The compose project a scenario of stack kind compose runs against. The command line
    (``options``, or the variables :data:`PROJECT_ENV` and :data:`COMPOSE_FILE_ENV`) overrides
    the scenario's stack section, which overrides the sample stack (``harness``,
    compose/docker-compose.yml). The topology is the scenario's, else the sample's."""
    file = (
        options.compose_file
        or Path(os.environ.get(COMPOSE_FILE_ENV) or section.compose_file or DEFAULT_COMPOSE_FILE)
    ).absolute()
    if not file.is_file():
        raise BadInputError(f"compose file not found: {file}")
    project = (
        options.compose_project or os.environ.get(PROJECT_ENV) or section.project or DEFAULT_PROJECT
    )
    ports = dict(options.ports or {})
    unused = sorted(PORT_FLAG[k] for k in ports if k not in COMPOSE_PORTS)
    if unused:
        raise BadInputError(
            f"{unused[0]}: a compose stack takes only --entry-port and --toxiproxy-port"
        )
    return ComposeStackConfig(
        project=project,
        compose_file=file,
        entry_port=ports.get("entry", DEFAULT_ENTRY_PORT),
        toxiproxy_port=ports.get("toxiproxy_api", DEFAULT_TOXIPROXY_PORT),
        app_env=tuple(section.env),
        topology=topology_of(section),
        state_dir=options.state_dir.absolute(),
        ports_asked=bool(ports),
    )


# The StackPorts fields a compose project takes (the host ports the sample file publishes).
COMPOSE_PORTS: Final = ("entry", "toxiproxy_api")


def declared_parts(config: ComposeStackConfig) -> DeclaredParts:
    """What a compose project will have, as its topology declares it: the backend services
    (a scaled one's containers are ``<service>-<n>``); the proxies when the topology lists
    them (else Toxiproxy's own configuration makes them, known once it runs)."""
    topology = config.topology
    proxies = tuple(p.name for p in topology.proxies) or None
    if topology == ComposeTopology() and config.compose_file.resolve() == _SAMPLE_FILE:
        proxies = (*(f"lb-{b}" for b in topology.backends), "app-db")  # config/toxiproxy.json
    return DeclaredParts(instances=topology.backends, proxies=proxies, scaled=topology.backends)


_SAMPLE_FILE: Final = DEFAULT_COMPOSE_FILE.resolve()


def settings_change(
    config: ComposeStackConfig, running_env: Mapping[str, str], entry: int, toxiproxy: int
) -> str:
    """What differs between a running project and ``config``, in one phrase (empty: nothing):
    the settings asked for that the backends' environment does not have, and the published
    ports when the command line asked for ports."""
    parts = [f"{k}={v}" for k, v in config.app_env if running_env.get(k) != v]
    if config.ports_asked and (entry, toxiproxy) != (config.entry_port, config.toxiproxy_port):
        parts.append("other ports")
    return ", ".join(parts)


def topology_of(section: ComposeSection) -> ComposeTopology:
    """Which services play which part, as the section says; what it leaves out is the
    sample stack's."""
    topology = ComposeTopology()
    if section.entry is not None:
        topology = replace(
            topology,
            entry_service=section.entry.service,
            entry_port=section.entry.port,
            ready_path=section.entry.ready_path,
        )
    if section.backends is not None:
        topology = replace(
            topology,
            backends=section.backends.services,
            backend_port=section.backends.port,
            health_path=section.backends.health_path,
        )
    if section.toxiproxy is not None:
        topology = replace(
            topology,
            toxiproxy_service=section.toxiproxy.service,
            toxiproxy_port=section.toxiproxy.port,
        )
    proxies = tuple(ProxySpec(p.name, p.listen, p.upstream) for p in section.proxies)
    return replace(topology, proxies=proxies)


def db_password_of(env: Mapping[str, str]) -> str:
    """The database password in a shop instance's environment (empty: none there)."""
    try:
        return urlsplit(env.get(_SHOP_DATABASE_URL, "")).password or ""
    except ValueError:
        return ""


def down_command(config: ComposeStackConfig) -> str:
    """The ``harness down`` that removes this project, with every option it needs: the
    project, its compose file unless it is the sample's, the state directory unless it is the
    default (both as absolute paths: the command may be run from anywhere)."""
    words = ["harness", "down", "--stack", "compose", "--project", config.project]
    if config.compose_file.resolve() != _SAMPLE_FILE:
        words += ["--compose-file", str(config.compose_file.absolute())]
    if config.state_dir.absolute() != DEFAULT_STATE_DIR.absolute():
        words += ["--state-dir", str(config.state_dir.absolute())]
    return shlex.join(words)


def port_of(url: str) -> int:
    """The port of ``http://host:port``."""
    return int(url.rsplit(":", 1)[1].split("/")[0])
