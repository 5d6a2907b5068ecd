"""The compose stack: the sample shop in containers, from ``compose/docker-compose.yml``.

::

    client ─► caddy ─┬─► toxiproxy lb-app-1 ─► app-1 ─┐
                     ├─► toxiproxy lb-app-2 ─► app-2 ─┼─► toxiproxy app-db ─► postgres
                     └─► toxiproxy lb-app-3 ─► app-3 ─┘

``up`` and ``down`` run the installed compose command (``docker compose`` when the v2 plugin is
there, else ``docker-compose``); everything else asks the Docker engine through the SDK and finds
containers by the labels compose puts on them (``com.docker.compose.project``,
``com.docker.compose.service``). Each shop instance is its own service, so ``kill`` and ``pause``
hit exactly one container.

The engine is the durable state: published ports, the admin token (the instances'
environment) and container addresses are read back from it, so any process that knows the
project name and the compose file can drive a stack that another process brought up.

Instances and the database are reached at their container addresses (``Instance.endpoint``,
``StackInfo.database_url``): routable from the host on Linux, not from Docker Desktop's VM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from harness.errors import BadInputError, InfrastructureError, StackError
from harness.stack.base import (
    Endpoint,
    Instance,
    ProcessState,
    ProcessStatus,
    Proxy,
    Service,
    StackInfo,
    StackStatus,
)
from harness.stack.config import new_admin_token
from harness.stack.readiness import http_post_json, http_status
from harness.stack.topology import APP, DATABASE, DB_NAME, DB_PASSWORD, DB_USER, ENTRY, TOXIPROXY

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

COMPOSE_DIR: Final = Path(
    os.environ.get("HARNESS_COMPOSE_DIR") or Path(__file__).resolve().parents[2] / "compose"
)
DEFAULT_COMPOSE_FILE: Final = COMPOSE_DIR / "docker-compose.yml"
DEFAULT_PROJECT: Final = "harness"
DEFAULT_ENTRY_PORT: Final = 8080
DEFAULT_TOXIPROXY_PORT: Final = 8474

PROJECT_LABEL: Final = "com.docker.compose.project"
SERVICE_LABEL: Final = "com.docker.compose.service"
# The services that make up the stack, and what each is; one-shot (migrate) and load-profile
# services are not pieces of the system under test.
ROLES: Final = {
    "postgres": DATABASE,
    "toxiproxy": TOXIPROXY,
    "app-1": APP,
    "app-2": APP,
    "app-3": APP,
    "caddy": ENTRY,
}
APP_PORT: Final = 8000
POSTGRES_PORT: Final = 5432
TOXIPROXY_API_PORT: Final = 8474
CADDY_PORT: Final = 80

UP_TIMEOUT_S: Final = 300.0
DOWN_TIMEOUT_S: Final = 120.0
READY_TIMEOUT_S: Final = 60.0
STATE_TIMEOUT_S: Final = 15.0
PROBE_TIMEOUT_S: Final = 0.5
STOP_TIMEOUT_S: Final = 5

NO_DOCKER_HINT: Final = "use the local stack instead (--stack local), which needs no Docker"


@dataclass(frozen=True)
class ComposeStackConfig:
    """What ``up`` asks of the compose project. ``admin_token`` empty: make one up.
    ``app_env`` is passed to compose for the variables the compose file reads
    (``SHOP_DB_TIMEOUT_MS``, ``SHOP_MAX_INFLIGHT``)."""

    project: str = DEFAULT_PROJECT
    compose_file: Path = DEFAULT_COMPOSE_FILE
    entry_port: int = DEFAULT_ENTRY_PORT
    toxiproxy_port: int = DEFAULT_TOXIPROXY_PORT
    admin_token: str = ""
    app_env: tuple[tuple[str, str], ...] = field(default=())


class ComposeStack:
    """The compose project ``config.project`` of ``config.compose_file``."""

    def __init__(self, config: ComposeStackConfig | None = None) -> None:
        self.config = config or ComposeStackConfig()
        self.reused = False
        self._docker: docker.DockerClient | None = None

    @property
    def project(self) -> str:
        return self.config.project

    def to_ref(self) -> dict[str, str]:
        """A JSON-ready reference another process rebuilds this stack from (:meth:`from_ref`)."""
        return {
            "kind": "compose",
            "project": self.config.project,
            "compose_file": str(self.config.compose_file),
        }

    @classmethod
    def from_ref(cls, ref: Mapping[str, object]) -> ComposeStack:
        project, compose_file = ref.get("project"), ref.get("compose_file")
        if not isinstance(project, str) or not isinstance(compose_file, str):
            raise BadInputError(f"not a compose stack reference: {dict(ref)!r}")
        return cls(ComposeStackConfig(project=project, compose_file=Path(compose_file)))

    # --- lifecycle -----------------------------------------------------------------------------

    def up(self) -> StackInfo:
        self._client()  # Docker missing or stopped: say so before anything else
        if self.status().healthy:
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
        for service, container in sorted(self._containers().items()):
            if service in ROLES:
                rows.append(self._process_status(service, container))
        return StackStatus(location=self.config.compose_file, processes=tuple(rows))

    def info(self) -> StackInfo:
        containers = self._containers()
        missing = sorted(set(ROLES) - containers.keys())
        if missing:
            raise StackError(
                f"compose project {self.project!r} is not up (no {', '.join(missing)}); "
                "run `harness up --stack compose` first"
            )
        entry = _published(containers["caddy"], CADDY_PORT)
        toxiproxy = _published(containers["toxiproxy"], TOXIPROXY_API_PORT)
        instances = tuple(
            Instance(
                name=name,
                endpoint=_address(containers[name], name, APP_PORT),
                proxy=f"lb-{name}",
            )
            for name in sorted(s for s, role in ROLES.items() if role == APP)
        )
        postgres = _address(containers["postgres"], "postgres", POSTGRES_PORT)
        env = _environment(containers["app-1"])
        return StackInfo(
            entry_url=entry.url(),
            toxiproxy_url=toxiproxy.url(),
            services=(
                Service("caddy", ENTRY, entry),
                Service("toxiproxy", TOXIPROXY, toxiproxy),
                Service("postgres", DATABASE, postgres),
            ),
            instances=instances,
            proxies=self._proxies(),
            admin_token=env.get("SHOP_ADMIN_TOKEN", ""),
            database_url=f"postgresql://{DB_USER}:{DB_PASSWORD}@{postgres.address}/{DB_NAME}",
        )

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
            try:
                client = docker.from_env(timeout=30)
                client.ping()
            except docker.errors.DockerException as exc:
                raise InfrastructureError(
                    f"Docker is not installed or not running ({_first_line(exc)}); "
                    + NO_DOCKER_HINT
                ) from exc
            self._docker = client
        return self._docker

    def _containers(self) -> dict[str, Container]:
        """The project's containers by service (the first of a service scaled up)."""
        client = self._client()
        with _docker_errors("list containers"):
            found = client.containers.list(
                all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}
            )
        by_service: dict[str, Container] = {}
        for container in found:
            service = container.labels.get(SERVICE_LABEL, "")
            by_service.setdefault(service, container)
        return by_service

    def _instance(self, instance: str) -> Container:
        if ROLES.get(instance) != APP:
            known = ", ".join(s for s, role in ROLES.items() if role == APP)
            raise BadInputError(f"unknown instance {instance!r}; the stack has {known}")
        container = self._containers().get(instance)
        if container is None:
            raise StackError(f"compose project {self.project!r} has no container for {instance}")
        return container

    def _process_status(self, service: str, container: Container) -> ProcessStatus:
        state = _state(container)
        attrs = container.attrs
        health = (attrs.get("State") or {}).get("Health") or {}
        role = ROLES[service]
        if role == ENTRY:
            endpoint = _published(container, CADDY_PORT)
        elif role == TOXIPROXY:
            endpoint = _published(container, TOXIPROXY_API_PORT)
        else:
            endpoint = _address(container, service, APP_PORT if role == APP else POSTGRES_PORT)
        if state is not ProcessState.ALIVE:
            healthy, detail = False, state.value
        elif health:
            healthy = health.get("Status") == "healthy"
            detail = f"docker health: {health.get('Status')}"
        else:
            # Caddy (no shell in its image for a health check): it answers at all.
            status = http_status(endpoint.url("/readyz"), PROBE_TIMEOUT_S)
            healthy, detail = status != 0, f"GET /readyz: {status or 'no answer'}"
        return ProcessStatus(
            name=service,
            role=role,
            pid=int((attrs.get("State") or {}).get("Pid") or 0),
            state=state,
            healthy=healthy,
            endpoint=endpoint,
            detail=detail,
        )

    def _proxies(self) -> tuple[Proxy, ...]:
        """The proxies of the Toxiproxy config file the compose file mounts."""
        path = self.config.compose_file.parent / "config" / "toxiproxy.json"
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StackError(f"cannot read the Toxiproxy config {path}: {exc}") from exc
        return tuple(
            Proxy(str(e["name"]), _endpoint(str(e["listen"])), _endpoint(str(e["upstream"])))
            for e in entries
        )

    def _leave_maintenance(self, info: StackInfo) -> None:
        """A started stack is out of maintenance, whatever a kept database says (the flag is
        shared: one instance is enough)."""
        url = info.instances[0].endpoint.url("/admin/maintenance")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while http_post_json(url, {"enabled": False}, token=info.admin_token) != 200:
            if time.monotonic() >= deadline:
                raise StackError(f"turning maintenance off at {url} did not answer 200")
            time.sleep(0.2)

    def _wait_entry(self, info: StackInfo) -> None:
        """Through Caddy and a proxy to an instance: the shop is served end to end."""
        url = info.entry_url.rstrip("/") + "/readyz"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while http_status(url, PROBE_TIMEOUT_S) != 200:
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{url} did not answer 200 within {READY_TIMEOUT_S:.0f}s; caddy's log:\n"
                    + self._logs("caddy")
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
        container = self._containers().get(service)
        if container is None:
            return "(no container)"
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
