"""The compose stack: the sample shop in containers, from ``compose/docker-compose.yml``.

::

    client ─► caddy ─┬─► toxiproxy lb-app-1 ─► app-1 ─┐
                     ├─► toxiproxy lb-app-2 ─► app-2 ─┼─► toxiproxy app-db ─► postgres
                     └─► toxiproxy lb-app-3 ─► app-3 ─┘

That is the default :class:`ComposeTopology`; a user's own project names its own: the entry
service (load goes there), the backend services (their containers are the instances faults kill,
pause and restart), the Toxiproxy service and the proxies (links) to create in it.

``up`` and ``down`` run the installed compose command (``docker compose`` when the v2 plugin is
there, else ``docker-compose``); everything else asks the Docker engine through the SDK and finds
containers by the labels compose puts on them (``com.docker.compose.project``,
``com.docker.compose.service``, ``com.docker.compose.container-number``). An instance is named
after its service when the service runs one container (the sample's ``app-1``), and
``<service>-<n>`` by container number when it is scaled up (``web-1``, ``web-2``), so a fault hits
exactly one container either way. The proxies are those Toxiproxy's API lists.

The engine is the durable state: published ports, the admin token (the instances' environment)
and container addresses are read back from it, so any process that knows the project name and
the compose file can drive a stack another process brought up. Instances and the database are
reached at their container addresses: routable from the host on Linux, not from Docker Desktop.
What the containers' attributes say is read in :mod:`harness.stack.compose_docker`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from harness.errors import BadInputError, StackError
from harness.proxy.launcher import port_is_free
from harness.stack.base import (
    DeclaredParts,
    Instance,
    ProcessState,
    Service,
    StackInfo,
    StackOptions,
    StackSection,
    StackStatus,
)
from harness.stack.compose_config import (
    COMPOSE_DIR,
    DB_PASSWORD_ENV,
    DB_SUPERUSER_PASSWORD_ENV,
    DEFAULT_COMPOSE_FILE,
    DEFAULT_ENTRY_PORT,
    DEFAULT_PROJECT,
    DEFAULT_TOXIPROXY_PORT,
    OTHER,
    POSTGRES_PORT,
    POSTGRES_SERVICE,
    ComposeSection,
    ComposeStackConfig,
    ComposeTopology,
    ProxySpec,
    config_from_section,
    db_password_of,
    declared_parts,
    down_command,
    port_of,
    settings_change,
)
from harness.stack.compose_docker import (
    NUMBER_LABEL,
    ONEOFF_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    container_address,
    container_environment,
    container_number,
    container_state,
    container_status,
    docker_client,
    docker_errors,
    finished_job,
    first_line,
    instance_names,
    listed_proxies,
    mounted_volumes,
    project_subnets,
    proxy_in_front,
    published_endpoint,
    remove_leftovers,
    remove_volumes,
    run_compose,
)
from harness.stack.compose_ready import READY_TIMEOUT_S, leave_maintenance, populate, wait_entry
from harness.stack.config import new_admin_token, new_db_password
from harness.stack.images import SHOP_IMAGE, stale_shop
from harness.stack.ports import PORT_FLAG, taken
from harness.stack.state import DEFAULT_STATE_DIR, gameday_pid
from harness.stack.topology import APP, DATABASE, ENTRY, SHOP_PAGE, TOXIPROXY
from harness.stack.topology import database_url as database_of

__all__ = [
    "COMPOSE_DIR",
    "DEFAULT_COMPOSE_FILE",
    "DEFAULT_ENTRY_PORT",
    "DEFAULT_PROJECT",
    "DEFAULT_TOXIPROXY_PORT",
    "NUMBER_LABEL",
    "SERVICE_LABEL",
    "ComposeStack",
    "ComposeStackConfig",
    "ComposeTopology",
    "ProxySpec",
    "instance_names",
]

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

UP_TIMEOUT_S: Final = 300.0
DOWN_TIMEOUT_S: Final = 120.0
STATE_TIMEOUT_S: Final = 15.0

STOP_TIMEOUT_S: Final = 5


class ComposeStack:
    """The compose project ``config.project`` of ``config.compose_file``."""

    kind: ClassVar[str] = "compose"

    def __init__(self, config: ComposeStackConfig | None = None) -> None:
        self.config = config or ComposeStackConfig()
        self.reused = False
        self._docker: docker.DockerClient | None = None

    @classmethod
    def from_section(cls, section: StackSection, options: StackOptions) -> ComposeStack:
        # The scenario model validated the compose keys for kind compose (harness.scenario.Stack
        # has every key ComposeSection names); a section of another kind never reaches here.
        return cls(config_from_section(cast(ComposeSection, section), options))

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def topology(self) -> ComposeTopology:
        return self.config.topology

    def to_ref(self) -> dict[str, Any]:
        """A JSON-ready reference another process rebuilds this stack from (:meth:`from_ref`)."""
        ref: dict[str, Any] = {
            "kind": "compose",
            "project": self.config.project,
            "compose_file": str(self.config.compose_file),
        }
        if self.topology != ComposeTopology():
            ref["topology"] = self.topology.to_dict()
        return ref

    @classmethod
    def from_ref(
        cls, ref: Mapping[str, object], *, state_dir: Path = DEFAULT_STATE_DIR
    ) -> ComposeStack:
        project, compose_file = ref.get("project"), ref.get("compose_file")
        topology = ref.get("topology") or {}
        if (
            not isinstance(project, str)
            or not isinstance(compose_file, str)
            or not isinstance(topology, Mapping)
        ):
            raise BadInputError(f"not a compose stack reference: {dict(ref)!r}")
        return cls(
            ComposeStackConfig(
                project=project,
                compose_file=Path(compose_file),
                topology=ComposeTopology.from_dict(topology),
                state_dir=Path(state_dir).absolute(),
            )
        )

    @property
    def journal_dir(self) -> Path:
        return self.config.state_dir

    def owns_host(self, host: str) -> bool:
        """One of the project's hosts now, or an address in its networks' ranges (a killed
        container has no address: Docker frees it, so only the range says it was ours)."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.info().hosts()
        return host in self.info().hosts() or any(address in n for n in self.subnets())

    def release(self) -> None:
        """Nothing: the stack stays up for the next run."""

    def declared_parts(self) -> DeclaredParts:
        return declared_parts(self.config)

    def check_ports(self) -> None:
        """The host ports the project publishes, when it is not up (an up one holds them)."""
        if self.status().exists:
            return
        # Only the ports the file publishes through our variables (the sample's entry and API):
        # a file of a user's own that lets Docker pick its host ports takes none of them.
        used = _variables_used(self.config.compose_file)
        wanted = (
            ("entry", self.config.entry_port, "HARNESS_ENTRY_PORT"),
            ("toxiproxy_api", self.config.toxiproxy_port, "HARNESS_TOXIPROXY_PORT"),
        )
        for field_name, port, variable in wanted:
            if variable in used and not port_is_free("127.0.0.1", port):
                raise taken(port, PORT_FLAG[field_name], "127.0.0.1", f"compose {self.project}")

    def bring_up(self, say: Callable[[str], None]) -> StackInfo:
        """A healthy project is used, brought to the settings asked for (``compose up``
        recreates only the services whose settings differ); else it is started. A project a
        game day is using is never changed."""
        started = time.monotonic()
        if self.status().healthy:  # Docker missing or stopped: InfrastructureError (exit 3)
            info = self.info()
            env = container_environment(self._instances()[info.instances[0].name])
            entry, toxiproxy = port_of(info.entry_url), port_of(info.toxiproxy_url)
            change = settings_change(self.config, env, entry, toxiproxy)
            if not change:
                say(f"using the compose project {self.project!r} already up")
                self.reused = True
                return info
            pid = gameday_pid(self.config.state_dir)
            if pid is not None:
                raise StackError(
                    f"compose project {self.project!r} is in a game day (process {pid}) and the "
                    f"scenario asks for {change}; not touched: run it when the game day is over"
                )
            say(f"bringing the compose project {self.project!r} to {change} ...")
            return self.up(
                keep_token=info.admin_token, keep_password=db_password_of(env), reuse=False
            )
        say(f"starting the compose project {self.project!r} ...")
        info = self.up()
        say(
            f"compose project up in {time.monotonic() - started:.1f}s; it stays up for the next "
            "run, until:"
        )
        say(f"  {down_command(self.config)}")
        return info

    # --- lifecycle -----------------------------------------------------------------------------

    def up(self, *, keep_token: str = "", keep_password: str = "", reuse: bool = True) -> StackInfo:
        """``reuse``: a healthy project is left as it is; else ``compose up`` brings it to the
        config (recreating what differs), with ``keep_token`` as its admin token if none is
        asked for, and ``keep_password`` as its database password (else a new one)."""
        self._client()  # Docker missing or stopped: say so before anything else
        if reuse and self.status().healthy and self._has_parts():
            self._populate()
            self.reused = True
            return self.info()
        if self.config.compose_file == DEFAULT_COMPOSE_FILE and (why := stale_shop()):
            # The sample's compose file runs the shop image: an older one tests older code.
            raise StackError(
                f"{SHOP_IMAGE} is not this checkout's shop ({why}); "
                "`harness images seed` rebuilds it"
            )
        token = self.config.admin_token or keep_token or new_admin_token()
        env = {
            **dict(self.config.app_env),
            "SHOP_ADMIN_TOKEN": token,
            "HARNESS_ENTRY_PORT": str(self.config.entry_port),
            "HARNESS_TOXIPROXY_PORT": str(self.config.toxiproxy_port),
            # The sample's database: a password of this project's (the engine keeps it, in the
            # shop's environment), and one for the superuser that nothing keeps: it is reached
            # through its socket only (compose/config/db-roles.sh).
            DB_PASSWORD_ENV: keep_password or new_db_password(),
            DB_SUPERUSER_PASSWORD_ENV: new_db_password(),
        }
        try:
            self._compose(["up", "-d", "--remove-orphans"], env=env, timeout_s=UP_TIMEOUT_S)
            self._populate()
            info = self.info()
            leave_maintenance(info)
            # Through the entry (and the links behind it) to an instance: served end to end.
            service = self.topology.entry_service
            wait_entry(info.entry_url + self.topology.ready_path, lambda: self._logs(service))
        except BaseException:
            # A failed or interrupted start leaves nothing behind (the error says what failed).
            self.down()
            raise
        self.reused = False
        return info

    def down(self) -> None:
        """Remove the project's containers, networks and volumes (idempotent), whichever compose
        file it is given: the volumes its containers mount are noted first, because an
        anonymous one (an image's VOLUME, such as postgres's) carries no label of the project
        and ``compose down`` with another file than the project's leaves it."""
        client = self._client()
        mounted = mounted_volumes(client, self.project)
        self._compose(
            ["--profile", "load", "down", "--volumes", "--remove-orphans", "--timeout", "5"],
            # The sample file's variables, so a `down` without them is not refused (unused).
            env={DB_PASSWORD_ENV: "down", DB_SUPERUSER_PASSWORD_ENV: "down"},
            timeout_s=DOWN_TIMEOUT_S,
        )
        self._sweep()
        remove_volumes(client, mounted)

    def status(self) -> StackStatus:
        rows = []
        instances = self._instances()
        for service, containers in sorted(self._containers().items()):
            role = self.topology.role(service)
            if role == APP:
                continue  # below, under their instance names
            names = instance_names(service, [container_number(c) for c in containers])
            for name, container in zip(names, containers, strict=True):
                if role == OTHER and finished_job(container):
                    continue  # a one-shot job (a migration) that did its work
                rows.append(container_status(self.topology, name, role, container))
        for name, container in sorted(instances.items()):
            rows.append(container_status(self.topology, name, APP, container))
        return StackStatus(location=self.config.compose_file, processes=tuple(rows))

    def info(self) -> StackInfo:
        topology = self.topology
        containers = self._containers()
        instances = self._instances(containers)
        missing = [
            s for s in (topology.entry_service, topology.toxiproxy_service) if s not in containers
        ]
        if not instances:
            missing.append(" or ".join(topology.backends))
        if missing:
            raise StackError(
                f"compose project {self.project!r} ({self.config.compose_file}) is not up "
                f"(no {', '.join(missing)}); run `harness up --stack compose` first"
            )
        entry = published_endpoint(containers[topology.entry_service][0], topology.entry_port)
        toxiproxy = published_endpoint(
            containers[topology.toxiproxy_service][0], topology.toxiproxy_port
        )
        proxies = listed_proxies(self.project, toxiproxy.url())
        services = [
            Service(topology.entry_service, ENTRY, entry),
            Service(topology.toxiproxy_service, TOXIPROXY, toxiproxy),
        ]
        database_url = ""
        postgres = containers.get(POSTGRES_SERVICE)
        address = None
        if postgres and POSTGRES_SERVICE not in (topology.entry_service, *topology.backends):
            address = container_address(postgres[0], POSTGRES_SERVICE, POSTGRES_PORT)
            services.append(Service(POSTGRES_SERVICE, DATABASE, address))
        env = container_environment(next(iter(instances.values())))
        password = db_password_of(env)
        if address is not None and password and topology == ComposeTopology():
            # The sample's own database, with the password the project's shop was given.
            database_url = database_of(address, password)
        return StackInfo(
            entry_url=entry.url(),
            toxiproxy_url=toxiproxy.url(),
            services=tuple(services),
            instances=tuple(
                Instance(
                    name=name,
                    endpoint=container_address(container, name, topology.backend_port),
                    proxy=proxy_in_front(proxies, name, container),
                    health_path=topology.health_path,
                )
                for name, container in sorted(instances.items())
            ),
            proxies=proxies,
            admin_token=env.get("SHOP_ADMIN_TOKEN", ""),
            database_url=database_url,
            # The sample's product listing; a user's project: its entry's ready path.
            entry_path=SHOP_PAGE if topology == ComposeTopology() else topology.ready_path,
        )

    def subnets(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The address ranges of the project's own networks (see :meth:`owns_host`)."""
        return project_subnets(self._client(), self.project)

    # --- instance primitives -------------------------------------------------------------------

    def kill(self, instance: str) -> None:
        container = self._instance(instance)
        with docker_errors(f"kill {instance}"):
            if container_state(container) is ProcessState.PAUSED:
                # A paused container takes the signal only once it runs again.
                container.unpause()
            if container_state(container) is not ProcessState.DEAD:
                container.kill()
        self._wait_state(instance, ProcessState.DEAD)

    def pause(self, instance: str) -> None:
        container = self._instance(instance)
        if container_state(container) is not ProcessState.ALIVE:
            raise StackError(f"cannot pause {instance}: it is not running")
        with docker_errors(f"pause {instance}"):
            container.pause()
        self._wait_state(instance, ProcessState.PAUSED)

    def resume(self, instance: str) -> None:
        container = self._instance(instance)
        if container_state(container) is not ProcessState.PAUSED:
            raise StackError(f"cannot resume {instance}: it is not paused")
        with docker_errors(f"resume {instance}"):
            container.unpause()
        self._wait_state(instance, ProcessState.ALIVE)

    def restart(self, instance: str) -> None:
        container = self._instance(instance)
        with docker_errors(f"restart {instance}"):
            state = container_state(container)
            if state is ProcessState.PAUSED:
                container.unpause()
            if state is ProcessState.DEAD:
                container.start()
            else:
                container.restart(timeout=STOP_TIMEOUT_S)
        # Alive is enough (as for the local stack): readiness follows the database link, which
        # a fault may be cutting on purpose. The container's health check asks /healthz.
        self._wait_healthy(instance)

    def _client(self) -> docker.DockerClient:
        if self._docker is None:
            self._docker = docker_client()
        return self._docker

    def _containers(self) -> dict[str, list[Container]]:
        """The project's containers by service, in container-number order (``docker compose
        run`` one-offs left out: they are not part of the system)."""
        client = self._client()
        with docker_errors("list containers"):
            found = client.containers.list(
                all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}
            )
        by_service: dict[str, list[Container]] = {}
        for container in found:
            if container.labels.get(ONEOFF_LABEL, "False") == "True":
                continue
            by_service.setdefault(container.labels.get(SERVICE_LABEL, ""), []).append(container)
        for containers in by_service.values():
            containers.sort(key=container_number)
        return by_service

    def _instances(
        self, containers: Mapping[str, list[Container]] | None = None
    ) -> dict[str, Container]:
        """The backends' containers by instance name (:func:`instance_names`)."""
        containers = self._containers() if containers is None else containers
        out: dict[str, Container] = {}
        for service in self.topology.backends:
            found = containers.get(service, [])
            names = instance_names(service, [container_number(c) for c in found])
            out.update(zip(names, found, strict=True))
        return out

    def _has_parts(self) -> bool:
        containers = self._containers()
        return (
            self.topology.entry_service in containers
            and self.topology.toxiproxy_service in containers
            and bool(self._instances(containers))
        )

    def _instance(self, instance: str) -> Container:
        instances = self._instances()
        container = instances.get(instance)
        if container is None:
            known = ", ".join(sorted(instances)) or "none (is it up?)"
            raise BadInputError(
                f"unknown instance {instance!r}; compose project {self.project!r} has {known}"
            )
        return container

    def _populate(self) -> None:
        """Create the topology's proxies (see :func:`compose_ready.populate`)."""
        if not self.topology.proxies:
            return
        containers = self._containers()
        service = self.topology.toxiproxy_service
        if service not in containers:
            raise StackError(f"compose project {self.project!r} has no service {service!r}")
        api = published_endpoint(containers[service][0], self.topology.toxiproxy_port).url()
        populate(api, self.topology.proxies)

    def _wait_state(self, instance: str, wanted: ProcessState) -> None:
        deadline = time.monotonic() + STATE_TIMEOUT_S
        while True:
            container = self._instance(instance)
            current = container_state(container)
            if current is wanted:
                return
            if time.monotonic() >= deadline:
                raise StackError(f"{instance} is {current.value}, expected {wanted.value}")
            time.sleep(0.05)

    def _wait_healthy(self, instance: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            container = self._instance(instance)
            health = ((container.attrs.get("State") or {}).get("Health") or {}).get("Status")
            if container_state(container) is ProcessState.ALIVE and health in ("healthy", None):
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{instance} was restarted but is "
                    f"{health or container_state(container).value} after "
                    f"{READY_TIMEOUT_S:.0f}s; its log:\n{self._logs(instance)}"
                )
            time.sleep(0.1)

    def _logs(self, service: str, lines: int = 20) -> str:
        containers = self._containers().get(service)
        if not containers:
            return "(no container)"
        container = containers[0]
        try:
            raw = container.logs(tail=lines)
        except Exception as exc:  # docker.errors.APIError; a log is best effort
            return f"(no log: {first_line(exc)})"
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def _sweep(self) -> None:
        remove_leftovers(self._client(), self.project)

    def _compose(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout_s: float
    ) -> None:
        run_compose(self.project, self.config.compose_file, args, env=env, timeout_s=timeout_s)


# A compose file is a few kilobytes; what lies past this cannot hold a port of ours.
MAX_COMPOSE_SCAN_BYTES: Final = 1024 * 1024


def _variables_used(compose_file: Path) -> frozenset[str]:
    """The port variables of ours that ``compose_file`` names (all of them when it cannot be
    read: then compose itself will say what is wrong, and a check too many costs nothing)."""
    names = ("HARNESS_ENTRY_PORT", "HARNESS_TOXIPROXY_PORT")
    try:
        with compose_file.open("rb") as handle:
            text = handle.read(MAX_COMPOSE_SCAN_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return frozenset(names)
    return frozenset(name for name in names if name in text)
