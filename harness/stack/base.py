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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.errors import BadInputError


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


@runtime_checkable
class Stack(Protocol):
    """A system under test that can be brought up, inspected, hurt and torn down.

    ``down`` is idempotent. The instance primitives take an instance name from
    ``StackInfo.instances`` and raise ``BadInputError`` for any other name.
    """

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
