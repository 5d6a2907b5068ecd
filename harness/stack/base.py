"""The ``Stack`` protocol and the records it hands out.

A stack is the system under test: an entry point (the load balancer), a Toxiproxy API in front of
every link a fault may cut, and the instances behind the entry point. Every backend (local
processes, docker compose, external URLs) implements the same protocol, so scenarios, fault
injectors and the CLI never know which one they talk to.

Fault injectors call the instance primitives (``kill``, ``pause``, ``resume``, ``restart``) from a
process other than the one that ran ``up``: a backend must be able to rebuild everything those
need from durable state, never from memory.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from harness.errors import BadInputError
from harness.safety import host_of


@dataclass(frozen=True)
class Endpoint:
    """A TCP address on which something listens."""

    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str = "") -> str:
        return f"http://{self.address}{path}"


@dataclass(frozen=True)
class Service:
    """A named piece of the stack and where it listens (``role`` says what it is for)."""

    name: str
    role: str
    endpoint: Endpoint


@dataclass(frozen=True)
class Proxy:
    """A Toxiproxy proxy: faults on the link it carries are toxics on this proxy."""

    name: str
    listen: Endpoint
    upstream: Endpoint


@dataclass(frozen=True)
class Instance:
    """One backend instance behind the entry point.

    ``endpoint`` is the instance itself (to bypass the load balancer); ``proxy`` names the
    Toxiproxy proxy the load balancer reaches it through.
    """

    name: str
    endpoint: Endpoint
    proxy: str
    # Answers 200 while the instance lives (readiness aside); a restarted one is waited for here.
    health_path: str = "/healthz"


@dataclass(frozen=True)
class StackInfo:
    """Everything a scenario needs to drive and hurt a running stack."""

    entry_url: str
    toxiproxy_url: str
    services: tuple[Service, ...]
    instances: tuple[Instance, ...]
    proxies: tuple[Proxy, ...]
    admin_token: str
    # The database as the test code may reach it directly (not through Toxiproxy), to check
    # what the application wrote; empty when the backend does not expose it.
    database_url: str = ""
    # A path on the entry that answers 200 (the sample shop's product listing): what
    # `harness up` prints for a person to open; the load's host stays ``entry_url``.
    entry_path: str = ""

    @property
    def entry_page(self) -> str:
        return self.entry_url.rstrip("/") + self.entry_path if self.entry_path else self.entry_url

    def instance(self, name: str) -> Instance:
        for instance in self.instances:
            if instance.name == name:
                return instance
        known = ", ".join(i.name for i in self.instances)
        raise BadInputError(f"unknown instance {name!r}; the stack has {known}")

    def proxy(self, name: str) -> Proxy:
        for proxy in self.proxies:
            if proxy.name == name:
                return proxy
        known = ", ".join(p.name for p in self.proxies)
        raise BadInputError(f"unknown proxy {name!r}; the stack has {known}")

    def hosts(self) -> tuple[str, ...]:
        """Every host of the stack: its entry, its Toxiproxy, its services and instances (a
        compose project's containers have addresses on its own network). The blast-radius
        policy (:mod:`harness.safety`) lets load and faults reach these."""
        urls = [self.entry_url, self.toxiproxy_url]
        urls += [service.endpoint.url() for service in self.services]
        urls += [instance.endpoint.url() for instance in self.instances]
        return tuple(dict.fromkeys(h for h in map(_host_of, urls) if h))


def _host_of(url: str) -> str:
    return host_of(url)  # the one reading of a URL's host (harness.safety.url_problem)


@dataclass(frozen=True)
class DeclaredParts:
    """The instances and proxies a stack will have, as known before it starts (fault targets
    are checked against them before anything starts). None: known only once it runs.
    ``scaled``: services whose containers are instances named ``<service>-<n>``."""

    instances: tuple[str, ...] | None = None
    proxies: tuple[str, ...] | None = None
    scaled: tuple[str, ...] = ()

    def has_instance(self, name: str) -> bool:
        if self.instances is None or name in self.instances:
            return True
        service, _, number = name.rpartition("-")
        return service in self.scaled and number.isdigit()

    def has_proxy(self, name: str) -> bool:
        return self.proxies is None or name in self.proxies


class ProcessState(enum.Enum):
    """What the operating system says about a process the stack started."""

    ALIVE = "alive"
    PAUSED = "paused"  # stopped by SIGSTOP: holds its ports, answers nothing
    DEAD = "dead"  # gone, a zombie, or its PID now belongs to another process


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    role: str
    pid: int
    state: ProcessState
    healthy: bool
    endpoint: Endpoint
    detail: str = ""


@dataclass(frozen=True)
class StackStatus:
    """A snapshot of every process of the stack; empty ``processes`` means no stack is up."""

    location: Path
    processes: tuple[ProcessStatus, ...]

    @property
    def exists(self) -> bool:
        return bool(self.processes)

    @property
    def healthy(self) -> bool:
        """Up, and every piece alive and answering its health check."""
        return self.exists and all(
            p.state is ProcessState.ALIVE and p.healthy for p in self.processes
        )


class StackSection(Protocol):
    """What a scenario's ``stack:`` section says, as far as every backend reads it
    (:class:`harness.scenario.Stack` is one). A backend that reads more declares its own
    protocol extending this one (:class:`harness.stack.compose.ComposeSection`)."""

    @property
    def kind(self) -> str: ...

    @property
    def entry_url(self) -> str | None: ...

    @property
    def toxiproxy_url(self) -> str | None: ...

    @property
    def env(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True)
class StackOptions:
    """What the command line adds to a scenario's stack section. ``state_dir``: the harness's
    state directory, where the local stack lives and every stack's fault journal is kept.
    ``compose_project`` / ``compose_file``: override the scenario's (empty / None: keep it)."""

    state_dir: Path
    compose_project: str = ""
    compose_file: Path | None = None
    # Ports the command line asks for, keyed by StackPorts field (only those given).
    ports: Mapping[str, Any] | None = None


@runtime_checkable
class Stack(Protocol):
    """A system under test that can be brought up, inspected, hurt and torn down.

    ``down`` is idempotent. The instance primitives take an instance name from
    ``StackInfo.instances`` and raise ``BadInputError`` for any other name.

    A backend is one module of this package and one line of :mod:`harness.stack.registry`;
    besides these methods its class has the constructors of :class:`StackBackend`.
    """

    kind: ClassVar[str]
    # True after ``up`` or ``bring_up`` found the stack already running and used it as it was.
    reused: bool

    @property
    def journal_dir(self) -> Path | None:
        """The directory whose fault journal records the faults injected into this stack, so
        that ``harness rollback --state-dir`` finds them; None: the stack takes no faults."""
        ...

    def to_ref(self) -> dict[str, Any]:
        """A JSON-ready reference another process rebuilds this stack from
        (:func:`harness.stack.registry.stack_from_ref`); ``kind`` is always in it."""
        ...

    def owns_host(self, host: str) -> bool:
        """Whether ``host`` is one of this stack's own (a fault record read back may name an
        address of it that is gone by now, as a killed container's)."""
        ...

    def bring_up(self, say: Callable[[str], None]) -> StackInfo:
        """The stack as a run needs it: one already up that fits is used as it is, else it is
        started (and left up for the next run). ``say`` gets one line saying which."""
        ...

    def declared_parts(self) -> DeclaredParts:
        """The instances and proxies the stack has or will have, without starting anything."""
        ...

    def check_ports(self) -> None:
        """``StackError`` naming the first port a start would need that something else holds
        (``port 8080 (--entry-port) is taken on 127.0.0.1``); nothing to check when a stack
        that is up will be used. Starts nothing."""
        ...

    def release(self) -> None:
        """Stop what a run started only for itself (an external stack's front proxy) once the
        run is over; the stack itself stays as it is. Idempotent."""
        ...

    def up(self) -> StackInfo: ...

    def down(self) -> None: ...

    def status(self) -> StackStatus: ...

    def info(self) -> StackInfo:
        """The info of the stack that is up (as ``up`` returned it)."""
        ...

    def kill(self, instance: str) -> None:
        """SIGKILL the instance: no graceful shutdown, its connections reset."""
        ...

    def pause(self, instance: str) -> None:
        """SIGSTOP the instance: it keeps its sockets but answers nothing."""
        ...

    def resume(self, instance: str) -> None:
        """SIGCONT a paused instance."""
        ...

    def restart(self, instance: str) -> None:
        """Stop the instance if it runs (paused or not), start it again, wait until it is ready."""
        ...


class StackBackend(Protocol):
    """The class side of a backend: the two ways a stack object comes to be."""

    @property
    def kind(self) -> str: ...

    def from_section(self, section: StackSection, options: StackOptions) -> Stack:
        """The stack a scenario's ``stack:`` section asks for (already validated)."""
        ...

    def from_ref(self, ref: Mapping[str, Any], *, state_dir: Path) -> Stack:
        """The stack :meth:`Stack.to_ref` described. ``BadInputError`` for a reference that
        is not one of this backend's; ``state_dir`` is the journal's that holds the reference."""
        ...
