"""The Docker side of the compose stack: the compose command, the engine's errors, and what a
container's attributes say (its state, number, ports, addresses, environment).

Kept apart from :mod:`harness.stack.compose` so that the stack reads as its lifecycle and
instance primitives, and these small readings are unit-tested on their own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from harness.errors import InfrastructureError, StackError, ToxiproxyError
from harness.proxy.client import ToxiproxyClient
from harness.stack.base import Endpoint, ProcessState, ProcessStatus, Proxy
from harness.stack.compose_config import ComposeTopology
from harness.stack.readiness import http_status
from harness.stack.topology import APP, ENTRY, TOXIPROXY

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

__all__ = [
    "NO_DOCKER_HINT",
    "NUMBER_LABEL",
    "ONEOFF_LABEL",
    "PROBE_TIMEOUT_S",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "compose_command",
    "container_address",
    "container_environment",
    "container_number",
    "container_state",
    "container_status",
    "docker_client",
    "docker_errors",
    "endpoint_of",
    "exposed_port",
    "finished_job",
    "first_line",
    "instance_names",
    "listed_proxies",
    "mounted_volumes",
    "project_subnets",
    "proxy_in_front",
    "published_endpoint",
    "remove_leftovers",
    "remove_volumes",
    "run_compose",
    "unix_socket_problem",
]

PROJECT_LABEL: Final = "com.docker.compose.project"
SERVICE_LABEL: Final = "com.docker.compose.service"
NUMBER_LABEL: Final = "com.docker.compose.container-number"
ONEOFF_LABEL: Final = "com.docker.compose.oneoff"
# A container whose entry probe takes longer than this is reported unhealthy.
PROBE_TIMEOUT_S: Final = 0.5
NO_DOCKER_HINT: Final = "use the local stack instead (--stack local), which needs no Docker"


def docker_client() -> docker.DockerClient:
    """A client of the Docker engine that answered a ping; ``InfrastructureError`` with a hint
    when the SDK is missing or no engine answers."""
    try:
        import docker  # deferred: only a compose stack needs the Docker SDK
    except ImportError as exc:
        raise InfrastructureError(
            "the compose stack needs the docker Python package (pip install 'docker>=7'); "
            + NO_DOCKER_HINT
        ) from exc
    problem = unix_socket_problem()
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
            f"Docker is not installed or not running ({first_line(exc)}); " + NO_DOCKER_HINT
        ) from exc
    return client


def run_compose(
    project: str,
    compose_file: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float,
) -> None:
    """Run the compose command on ``project`` of ``compose_file``; ``StackError`` with the end
    of its output when it fails or overruns."""
    argv = [*compose_command(), "--project-name", project, "--file", str(compose_file), *args]
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
        raise StackError(f"`{shlex.join(argv)}` did not finish in {timeout_s:.0f}s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        hint = ""
        if "pull access denied" in tail or "manifest" in tail or "unknown: " in tail:
            hint = "\nwithout a registry, `harness images seed` builds every image locally"
        # The whole command as it ran (``docker-compose`` is one word, ``docker compose`` two),
        # so it can be pasted to try again; the environment holds the secrets, not the argv.
        raise StackError(
            f"`{shlex.join(argv)}` failed with exit code {result.returncode}:\n{tail}{hint}"
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
def docker_errors(what: str) -> Iterator[None]:
    import docker  # deferred: only a compose stack needs the Docker SDK

    try:
        yield
    except docker.errors.NotFound as exc:
        raise StackError(f"{what}: the container is gone ({first_line(exc)})") from exc
    except docker.errors.DockerException as exc:
        raise StackError(f"{what}: {first_line(exc)}") from exc


def unix_socket_problem() -> str | None:
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


def container_number(container: Container) -> int:
    try:
        return int(container.labels.get(NUMBER_LABEL, "1"))
    except ValueError:
        return 1


def finished_job(container: Container) -> bool:
    """Exited by itself with 0: a one-shot job done, not a piece of the system that died."""
    state = container.attrs.get("State") or {}
    return (
        container.status == "exited" and state.get("ExitCode") == 0 and not state.get("OOMKilled")
    )


def exposed_port(container: Container) -> int:
    exposed = (container.attrs.get("Config") or {}).get("ExposedPorts") or {}
    ports = sorted(int(key.split("/")[0]) for key in exposed if key.endswith("/tcp"))
    return ports[0] if ports else 0


def proxy_in_front(proxies: Sequence[Proxy], instance: str, container: Container) -> str:
    """The proxy whose upstream is this instance (by instance, service or container name), so
    a fault can slow the link to it; empty when none is."""
    # A single container's instance name is its service's; a scaled service's name resolves to
    # every replica, so a proxy to it fronts none of them alone.
    names = {instance, container.name}
    for proxy in proxies:
        if proxy.upstream.host in names:
            return proxy.name
    return ""


def container_state(container: Container) -> ProcessState:
    with docker_errors(f"inspect {container.name}"):
        container.reload()
    status = container.status
    if status == "running":
        return ProcessState.ALIVE
    if status == "paused":
        return ProcessState.PAUSED
    return ProcessState.DEAD


def published_endpoint(container: Container, port: int) -> Endpoint:
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


def container_address(container: Container, service: str, port: int) -> Endpoint:
    """The container's address on its project network; the service name while it has none
    (a killed instance), which resolves inside the network only."""
    networks: dict[str, Any] = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for network in networks.values():
        if network.get("IPAddress"):
            return Endpoint(str(network["IPAddress"]), port)
    return Endpoint(service, port)


def container_environment(container: Container) -> dict[str, str]:
    pairs = (container.attrs.get("Config") or {}).get("Env") or []
    return dict(pair.partition("=")[::2] for pair in pairs)


def endpoint_of(address: str) -> Endpoint:
    host, _, port = address.rpartition(":")
    return Endpoint(host or "0.0.0.0", int(port))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def container_status(
    topology: ComposeTopology, name: str, role: str, container: Container
) -> ProcessStatus:
    """What a container of the project says about itself, as a process of the stack."""
    state = container_state(container)
    attrs = container.attrs
    health = (attrs.get("State") or {}).get("Health") or {}
    if role == ENTRY:
        endpoint = published_endpoint(container, topology.entry_port)
    elif role == TOXIPROXY:
        endpoint = published_endpoint(container, topology.toxiproxy_port)
    elif role == APP:
        endpoint = container_address(container, name, topology.backend_port)
    else:
        endpoint = container_address(container, name, exposed_port(container))
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


def remove_leftovers(client: docker.DockerClient, project: str) -> None:
    """What ``compose down`` left of the project (a service renamed since it was started,
    a command interrupted): containers, then networks, then volumes."""
    label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
    with docker_errors("remove what compose down left"):
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
        for network in client.networks.list(filters=label):
            network.remove()
        for volume in client.volumes.list(filters=label):
            volume.remove(force=True)


# Docker names an anonymous volume (an image's VOLUME nobody named) by 64 hex digits.
_ANONYMOUS_VOLUME = re.compile(r"[0-9a-f]{64}")


def mounted_volumes(client: docker.DockerClient, project: str) -> list[str]:
    """The anonymous volumes the project's containers mount: compose gives them no label, so
    once the containers are gone nothing ties them to the project. Named volumes are left out
    (the project's own carry its label; an external one is not the project's to remove)."""
    label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
    with docker_errors("list containers"):
        containers = client.containers.list(all=True, filters=label)
    names = []
    for container in containers:
        for mount in container.attrs.get("Mounts") or []:
            name = str(mount.get("Name") or "")
            if mount.get("Type") == "volume" and _ANONYMOUS_VOLUME.fullmatch(name):
                names.append(name)
    return sorted(set(names))


def remove_volumes(client: docker.DockerClient, names: Sequence[str]) -> None:
    """Remove the volumes ``names`` that are still there; one another container still uses
    is left to it."""
    import docker  # deferred: only a compose stack needs the Docker SDK

    for name in names:
        try:
            client.volumes.get(name).remove()
        except docker.errors.NotFound:
            continue  # compose down removed it already
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: in use by a container outside the project
                raise StackError(f"remove volume {name}: {first_line(exc)}") from exc


def project_subnets(
    client: docker.DockerClient, project: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The address ranges of the project's own networks."""
    label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
    with docker_errors("list networks"):
        networks = client.networks.list(filters=label)
    found = []
    for network in networks:
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError, TypeError):
                found.append(ipaddress.ip_network(config.get("Subnet"), strict=False))
    return tuple(found)


def listed_proxies(project: str, api_url: str) -> tuple[Proxy, ...]:
    """The proxies the project's Toxiproxy has: from its config file, from ``up``, or made by
    hand."""
    try:
        found = ToxiproxyClient(api_url, timeout_s=5).proxies()
    except ToxiproxyError as exc:
        raise StackError(
            f"the Toxiproxy API of compose project {project!r} at {api_url} does not answer: {exc}"
        ) from exc
    return tuple(
        Proxy(p.name, endpoint_of(p.listen), endpoint_of(p.upstream))
        for p in sorted(found.values(), key=lambda p: p.name)
    )
