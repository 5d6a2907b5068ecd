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

The engine is the durable state: published ports, the admin token (the instances'
environment) and container addresses are read back from it, so any process that knows the
project name and the compose file can drive a stack that another process brought up.

Instances and the database are reached at their container addresses (``Instance.endpoint``,
``StackInfo.database_url``): routable from the host on Linux, not from Docker Desktop's VM.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from harness.errors import BadInputError, InfrastructureError, StackError, ToxiproxyError
from harness.proxy.client import ToxiproxyClient
from harness.stack.base import (
    Endpoint,
    Instance,
    ProcessState,
    ProcessStatus,
    Proxy,
    Service,
    StackInfo,
    StackOptions,
    StackSection,
    StackStatus,
)
from harness.stack.compose_config import (
    COMPOSE_DIR,
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
)
from harness.stack.config import new_admin_token
from harness.stack.readiness import http_post_json, http_status
from harness.stack.state import DEFAULT_STATE_DIR
from harness.stack.topology import APP, DATABASE, ENTRY, TOXIPROXY
from harness.stack.topology import database_url as database_of

__all__ = [
    "COMPOSE_DIR",
    "DEFAULT_COMPOSE_FILE",
    "DEFAULT_ENTRY_PORT",
    "DEFAULT_PROJECT",
    "DEFAULT_TOXIPROXY_PORT",
    "ComposeStack",
    "ComposeStackConfig",
    "ComposeTopology",
    "ProxySpec",
    "compose_command",
    "instance_names",
]

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PROJECT_LABEL: Final = "com.docker.compose.project"
SERVICE_LABEL: Final = "com.docker.compose.service"
NUMBER_LABEL: Final = "com.docker.compose.container-number"
ONEOFF_LABEL: Final = "com.docker.compose.oneoff"
UP_TIMEOUT_S: Final = 300.0
DOWN_TIMEOUT_S: Final = 120.0
READY_TIMEOUT_S: Final = 60.0
STATE_TIMEOUT_S: Final = 15.0
PROBE_TIMEOUT_S: Final = 0.5
STOP_TIMEOUT_S: Final = 5

NO_DOCKER_HINT: Final = "use the local stack instead (--stack local), which needs no Docker"


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
        """One of the project's hosts now, or an address in the range of its networks: a killed
        container has no address (Docker frees it), so an address its fault recorded is known
        to be the project's only by the range of the project's networks."""
        if host in self.info().hosts():
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.subnets())

    def bring_up(self, say: Callable[[str], None]) -> StackInfo:
        self.status()  # Docker missing or stopped: InfrastructureError (exit 3) with its hint
        if self.status().healthy:
            say(f"using the compose project {self.project!r} already up")
            self.reused = True
            return self.info()
        say(f"starting the compose project {self.project!r} ...")
        started = time.monotonic()
        info = self.up()
        say(
            f"compose project up in {time.monotonic() - started:.1f}s; it stays up for the next "
            f"run (`harness down --stack compose --project {self.project}` stops it)"
        )
        return info

    # --- lifecycle -----------------------------------------------------------------------------

    def up(self) -> StackInfo:
        self._client()  # Docker missing or stopped: say so before anything else
        if self.status().healthy and self._has_parts():
            self._populate()
            self.reused = True
            return self.info()
        token = self.config.admin_token or new_admin_token()
        env = {
            **dict(self.config.app_env),
            "SHOP_ADMIN_TOKEN": token,
            "HARNESS_ENTRY_PORT": str(self.config.entry_port),
            "HARNESS_TOXIPROXY_PORT": str(self.config.toxiproxy_port),
        }
        try:
            self._compose(["up", "-d", "--remove-orphans"], env=env, timeout_s=UP_TIMEOUT_S)
            self._populate()
            info = self.info()
            self._leave_maintenance(info)
            self._wait_entry(info)
        except BaseException:
            # A failed or interrupted start leaves nothing behind (the error says what failed).
            self.down()
            raise
        self.reused = False
        return info

    def down(self) -> None:
        """Remove the project's containers, networks and volumes (idempotent)."""
        self._client()
        self._compose(
            ["--profile", "load", "down", "--volumes", "--remove-orphans", "--timeout", "5"],
            timeout_s=DOWN_TIMEOUT_S,
        )
        self._sweep()

    def status(self) -> StackStatus:
        rows = []
        instances = self._instances()
        for service, containers in sorted(self._containers().items()):
            role = self.topology.role(service)
            if role == APP:
                continue  # below, under their instance names
            names = instance_names(service, [_number(c) for c in containers])
            for name, container in zip(names, containers, strict=True):
                if role == OTHER and _finished(container):
                    continue  # a one-shot job (a migration) that did its work
                rows.append(self._process_status(name, role, container))
        for name, container in sorted(instances.items()):
            rows.append(self._process_status(name, APP, container))
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
        entry = _published(containers[topology.entry_service][0], topology.entry_port)
        toxiproxy = _published(containers[topology.toxiproxy_service][0], topology.toxiproxy_port)
        proxies = self._proxies(toxiproxy.url())
        services = [
            Service(topology.entry_service, ENTRY, entry),
            Service(topology.toxiproxy_service, TOXIPROXY, toxiproxy),
        ]
        database_url = ""
        postgres = containers.get(POSTGRES_SERVICE)
        if postgres and POSTGRES_SERVICE not in (topology.entry_service, *topology.backends):
            address = _address(postgres[0], POSTGRES_SERVICE, POSTGRES_PORT)
            services.append(Service(POSTGRES_SERVICE, DATABASE, address))
            if topology == ComposeTopology():
                # The sample's own database, with the credentials the shop's contract fixes.
                database_url = database_of(address)
        env = _environment(next(iter(instances.values())))
        return StackInfo(
            entry_url=entry.url(),
            toxiproxy_url=toxiproxy.url(),
            services=tuple(services),
            instances=tuple(
                Instance(
                    name=name,
                    endpoint=_address(container, name, topology.backend_port),
                    proxy=_proxy_in_front(proxies, name, container),
                    health_path=topology.health_path,
                )
                for name, container in sorted(instances.items())
            ),
            proxies=proxies,
            admin_token=env.get("SHOP_ADMIN_TOKEN", ""),
            database_url=database_url,
        )

    def subnets(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The address ranges of the project's own networks. A killed container has no address
        (Docker frees it), so what a fault recorded for it is known to be the project's only
        by its range."""
        client = self._client()
        label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={self.project}"}
        with _docker_errors("list networks"):
            networks = client.networks.list(filters=label)
        found = []
        for network in networks:
            for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(ValueError, TypeError):
                    found.append(ipaddress.ip_network(config.get("Subnet"), strict=False))
        return tuple(found)

    # --- instance primitives -------------------------------------------------------------------

    def kill(self, instance: str) -> None:
        container = self._instance(instance)
        with _docker_errors(f"kill {instance}"):
            if _state(container) is ProcessState.PAUSED:
                # A paused container takes the signal only once it runs again.
                container.unpause()
            if _state(container) is not ProcessState.DEAD:
                container.kill()
        self._wait_state(instance, ProcessState.DEAD)

    def pause(self, instance: str) -> None:
        container = self._instance(instance)
        if _state(container) is not ProcessState.ALIVE:
            raise StackError(f"cannot pause {instance}: it is not running")
        with _docker_errors(f"pause {instance}"):
            container.pause()
        self._wait_state(instance, ProcessState.PAUSED)

    def resume(self, instance: str) -> None:
        container = self._instance(instance)
        if _state(container) is not ProcessState.PAUSED:
            raise StackError(f"cannot resume {instance}: it is not paused")
        with _docker_errors(f"resume {instance}"):
            container.unpause()
        self._wait_state(instance, ProcessState.ALIVE)

    def restart(self, instance: str) -> None:
        container = self._instance(instance)
        with _docker_errors(f"restart {instance}"):
            state = _state(container)
            if state is ProcessState.PAUSED:
                container.unpause()
            if state is ProcessState.DEAD:
                container.start()
            else:
                container.restart(timeout=STOP_TIMEOUT_S)
        # Alive is enough (as for the local stack): readiness follows the database link, which
        # a fault may be cutting on purpose. The container's health check asks /healthz.
        self._wait_healthy(instance)

    # --- internals -----------------------------------------------------------------------------

    def _client(self) -> docker.DockerClient:
        if self._docker is None:
            try:
                import docker
            except ImportError as exc:
                raise InfrastructureError(
                    "the compose stack needs the docker Python package (pip install 'docker>=7'); "
                    + NO_DOCKER_HINT
                ) from exc
            problem = _unix_socket_problem()
            if problem is not None:
                raise InfrastructureError(
                    f"Docker is not installed or not running ({problem}); " + NO_DOCKER_HINT
                )
            client = None
            try:
                client = docker.from_env(timeout=30)
                client.ping()
            except docker.errors.DockerException as exc:
                if client is not None:
                    client.close()  # its connection pool, with the socket that failed
                raise InfrastructureError(
                    f"Docker is not installed or not running ({_first_line(exc)}); "
                    + NO_DOCKER_HINT
                ) from exc
            self._docker = client
        return self._docker

    def _containers(self) -> dict[str, list[Container]]:
        """The project's containers by service, in container-number order (``docker compose
        run`` one-offs left out: they are not part of the system)."""
        client = self._client()
        with _docker_errors("list containers"):
            found = client.containers.list(
                all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}
            )
        by_service: dict[str, list[Container]] = {}
        for container in found:
            if container.labels.get(ONEOFF_LABEL, "False") == "True":
                continue
            by_service.setdefault(container.labels.get(SERVICE_LABEL, ""), []).append(container)
        for containers in by_service.values():
            containers.sort(key=_number)
        return by_service

    def _instances(
        self, containers: Mapping[str, list[Container]] | None = None
    ) -> dict[str, Container]:
        """The backends' containers by instance name (:func:`instance_names`)."""
        containers = self._containers() if containers is None else containers
        out: dict[str, Container] = {}
        for service in self.topology.backends:
            found = containers.get(service, [])
            names = instance_names(service, [_number(c) for c in found])
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

    def _process_status(self, name: str, role: str, container: Container) -> ProcessStatus:
        topology = self.topology
        state = _state(container)
        attrs = container.attrs
        health = (attrs.get("State") or {}).get("Health") or {}
        if role == ENTRY:
            endpoint = _published(container, topology.entry_port)
        elif role == TOXIPROXY:
            endpoint = _published(container, topology.toxiproxy_port)
        elif role == APP:
            endpoint = _address(container, name, topology.backend_port)
        else:
            endpoint = _address(container, name, _exposed_port(container))
        if state is not ProcessState.ALIVE:
            healthy, detail = False, state.value
        elif health:
            healthy = health.get("Status") == "healthy"
            detail = f"docker health: {health.get('Status')}"
        elif role == ENTRY:
            # Caddy (no shell in its image for a health check): it answers at all.
            status = http_status(endpoint.url(topology.ready_path), PROBE_TIMEOUT_S)
            healthy, detail = status != 0, f"GET {topology.ready_path}: {status or 'no answer'}"
        else:
            healthy, detail = True, "running (no health check)"
        return ProcessStatus(
            name=name,
            role=role,
            pid=int((attrs.get("State") or {}).get("Pid") or 0),
            state=state,
            healthy=healthy,
            endpoint=endpoint,
            detail=detail,
        )

    def _proxies(self, api_url: str) -> tuple[Proxy, ...]:
        """The proxies Toxiproxy has: from its config file, from ``up``, or made by hand."""
        try:
            found = ToxiproxyClient(api_url, timeout_s=5).proxies()
        except ToxiproxyError as exc:
            raise StackError(
                f"the Toxiproxy API of compose project {self.project!r} at {api_url} does not "
                f"answer: {exc}"
            ) from exc
        return tuple(
            Proxy(p.name, _endpoint(p.listen), _endpoint(p.upstream))
            for p in sorted(found.values(), key=lambda p: p.name)
        )

    def _populate(self) -> None:
        """Create the topology's proxies (those that exist as asked are left alone, toxics and
        all), once the Toxiproxy API answers."""
        proxies = self.topology.proxies
        if not proxies:
            return
        containers = self._containers()
        service = self.topology.toxiproxy_service
        if service not in containers:
            raise StackError(f"compose project {self.project!r} has no service {service!r}")
        api = _published(containers[service][0], self.topology.toxiproxy_port).url()
        client = ToxiproxyClient(api, timeout_s=5)
        specs = [asdict(p) | {"enabled": True} for p in proxies]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                client.populate(specs)
                return
            except ToxiproxyError as exc:
                # Not answering yet (just started) is worth waiting for; a refused spec is not.
                if exc.status or time.monotonic() >= deadline:
                    raise StackError(f"creating the Toxiproxy proxies at {api}: {exc}") from exc
            time.sleep(0.2)

    def _leave_maintenance(self, info: StackInfo) -> None:
        """A started stack is out of maintenance, whatever a kept database says (the flag is
        shared: one instance is enough). Only for the sample shop: it has an admin token."""
        if not info.admin_token:
            return
        url = info.instances[0].endpoint.url("/admin/maintenance")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while http_post_json(url, {"enabled": False}, token=info.admin_token) != 200:
            if time.monotonic() >= deadline:
                raise StackError(f"turning maintenance off at {url} did not answer 200")
            time.sleep(0.2)

    def _wait_entry(self, info: StackInfo) -> None:
        """Through the entry (and the links behind it) to an instance: served end to end."""
        url = info.entry_url.rstrip("/") + self.topology.ready_path
        deadline = time.monotonic() + READY_TIMEOUT_S
        while http_status(url, PROBE_TIMEOUT_S) != 200:
            if time.monotonic() >= deadline:
                service = self.topology.entry_service
                raise StackError(
                    f"{url} did not answer 200 within {READY_TIMEOUT_S:.0f}s; {service}'s log:\n"
                    + self._logs(service)
                )
            time.sleep(0.1)

    def _wait_state(self, instance: str, wanted: ProcessState) -> None:
        deadline = time.monotonic() + STATE_TIMEOUT_S
        while True:
            container = self._instance(instance)
            current = _state(container)
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
            if _state(container) is ProcessState.ALIVE and health in ("healthy", None):
                return
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{instance} was restarted but is {health or _state(container).value} after "
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
            return f"(no log: {_first_line(exc)})"
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def _sweep(self) -> None:
        """What ``compose down`` left of the project (a service renamed since it was started,
        a command interrupted): containers, then networks, then volumes."""
        client = self._client()
        label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={self.project}"}
        with _docker_errors("remove what compose down left"):
            for container in client.containers.list(all=True, filters=label):
                container.remove(force=True, v=True)
            for network in client.networks.list(filters=label):
                network.remove()
            for volume in client.volumes.list(filters=label):
                volume.remove(force=True)

    def _compose(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout_s: float
    ) -> None:
        argv = [
            *compose_command(),
            "--project-name",
            self.project,
            "--file",
            str(self.config.compose_file),
            *args,
        ]
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env={**os.environ, **(env or {})},
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"`{' '.join(argv)}` did not finish in {timeout_s:.0f}s") from exc
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
            hint = ""
            if "pull access denied" in tail or "manifest" in tail or "unknown: " in tail:
                hint = "\nwithout a registry, `harness images seed` builds every image locally"
            raise StackError(
                f"`{' '.join(argv[:2])} {' '.join(args)}` failed with exit code "
                f"{result.returncode}:\n{tail}{hint}"
            )


def compose_command() -> list[str]:
    """``docker compose`` (v2) when the plugin answers, else ``docker-compose`` (v1)."""
    override = os.environ.get("HARNESS_COMPOSE_COMMAND", "").split()
    if override:
        return override
    if shutil.which("docker") is not None:
        probe = subprocess.run(
            ["docker", "compose", "version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    raise InfrastructureError(
        "neither `docker compose` nor `docker-compose` is installed; " + NO_DOCKER_HINT
    )


@contextmanager
def _docker_errors(what: str) -> Iterator[None]:
    import docker

    try:
        yield
    except docker.errors.NotFound as exc:
        raise StackError(f"{what}: the container is gone ({_first_line(exc)})") from exc
    except docker.errors.DockerException as exc:
        raise StackError(f"{what}: {_first_line(exc)}") from exc


def _unix_socket_problem() -> str | None:
    """Why the engine's Unix socket does not answer, if it is one; None when it accepts a
    connection or the engine is reached otherwise. Asked before the SDK is, which leaks the
    socket of a failed connect (a ResourceWarning, an error under pytest)."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(5)
            probe.connect(path)
    except OSError as exc:
        return f"cannot connect to {path}: {exc.strerror or exc}"
    return None


def instance_names(service: str, numbers: Sequence[int]) -> list[str]:
    """The instance names of a backend service's containers (their compose container numbers,
    in order): the service's own name for a single container, ``<service>-<n>`` for several."""
    if len(numbers) == 1:
        return [service]
    return [f"{service}-{number}" for number in numbers]


def _number(container: Container) -> int:
    try:
        return int(container.labels.get(NUMBER_LABEL, "1"))
    except ValueError:
        return 1


def _finished(container: Container) -> bool:
    """Exited by itself with 0: a one-shot job done, not a piece of the system that died."""
    state = container.attrs.get("State") or {}
    return (
        container.status == "exited" and state.get("ExitCode") == 0 and not state.get("OOMKilled")
    )


def _exposed_port(container: Container) -> int:
    exposed = (container.attrs.get("Config") or {}).get("ExposedPorts") or {}
    ports = sorted(int(key.split("/")[0]) for key in exposed if key.endswith("/tcp"))
    return ports[0] if ports else 0


def _proxy_in_front(proxies: Sequence[Proxy], instance: str, container: Container) -> str:
    """The proxy whose upstream is this instance (by instance, service or container name), so
    a fault can slow the link to it; empty when none is."""
    # A single container's instance name is its service's; a scaled service's name resolves to
    # every replica, so a proxy to it fronts none of them alone.
    names = {instance, container.name}
    for proxy in proxies:
        if proxy.upstream.host in names:
            return proxy.name
    return ""


def _state(container: Container) -> ProcessState:
    with _docker_errors(f"inspect {container.name}"):
        container.reload()
    status = container.status
    if status == "running":
        return ProcessState.ALIVE
    if status == "paused":
        return ProcessState.PAUSED
    return ProcessState.DEAD


def _published(container: Container, port: int) -> Endpoint:
    bindings = ((container.attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(
        f"{port}/tcp"
    ) or []
    for binding in bindings:
        host = binding.get("HostIp") or "127.0.0.1"
        return Endpoint("127.0.0.1" if host in ("0.0.0.0", "") else host, int(binding["HostPort"]))
    # Stopped containers have no bindings; the configured ones say where it will listen.
    config = ((container.attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(
        f"{port}/tcp"
    ) or []
    for binding in config:
        return Endpoint(binding.get("HostIp") or "127.0.0.1", int(binding["HostPort"]))
    raise StackError(f"{container.name} publishes no port for {port}/tcp")


def _address(container: Container, service: str, port: int) -> Endpoint:
    """The container's address on its project network; the service name while it has none
    (a killed instance), which resolves inside the network only."""
    networks: dict[str, Any] = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for network in networks.values():
        if network.get("IPAddress"):
            return Endpoint(str(network["IPAddress"]), port)
    return Endpoint(service, port)


def _environment(container: Container) -> dict[str, str]:
    pairs = (container.attrs.get("Config") or {}).get("Env") or []
    return dict(pair.partition("=")[::2] for pair in pairs)


def _endpoint(address: str) -> Endpoint:
    host, _, port = address.rpartition(":")
    return Endpoint(host or "0.0.0.0", int(port))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
