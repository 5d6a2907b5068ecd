"""Proxies and their toxics: the state the HTTP API reads and changes.

Everything here runs on the server's one event loop. Mutations that await (binding a listener) are
serialised by the collection's lock so that two API calls cannot interleave half-way.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from harness.proxy.connection import Connection
from harness.proxy.lease import Lease, LeaseTable
from harness.proxy.metrics import ByteMeter, ProxyByteCounters, ServerMetrics
from harness.proxy.toxics import DOWNSTREAM, UPSTREAM, ToxicConfig


class ApiError(Exception):
    """An error the API returns as ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# Constructors, not shared instances: a raised exception keeps its traceback (and the request's
# frames with it), so one module-level object would hold the last request alive.
def proxy_not_found() -> ApiError:
    return ApiError("proxy not found", 404)


def proxy_exists() -> ApiError:
    return ApiError("proxy already exists", 409)


def toxic_not_found() -> ApiError:
    return ApiError("toxic not found", 404)


def toxic_exists() -> ApiError:
    return ApiError("toxic already exists", 409)


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into its parts; ValueError when it is neither."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"missing port in address {address!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"invalid port {port_text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_listen(address: str, default_host: str) -> tuple[str, int]:
    """The IP and port a listen address binds to. ``localhost`` becomes 127.0.0.1 (IPv4 first, as
    the real server resolves it); an empty host becomes the server's own bind host."""
    try:
        host, port = split_host_port(address)
    except ValueError as exc:
        raise ApiError(f"address {address}: {exc}", 500) from exc
    if not host:
        host = default_host
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ApiError(f"lookup {host}: {exc.strerror}", 500) from exc
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0]), port


class Proxy:
    """A listener that forwards every connection to ``upstream`` through its toxics."""

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        default_host: str,
        byte_counters: ProxyByteCounters | None = None,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.default_host = default_host
        self.toxics: dict[str, ToxicConfig] = {}
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        # Set once the collection lets go of the proxy (deleted, replaced, server closing): no
        # API call can reach it any more, so it must never listen again.
        self.retired = False
        # The lease it was disabled under (an extension): when the lease ends, it is enabled
        # again. "" when enabled, or disabled without a lease.
        self.lease = ""
        self.byte_counters = byte_counters or ProxyByteCounters(enabled=False)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.enabled:
            return
        if self.retired:
            raise proxy_not_found()
        host, port = resolve_listen(self.listen or ":0", self.default_host)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                self._accept, host=host, port=port, backlog=1024, reuse_address=True
            )
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ApiError(f"listen tcp {join_host_port(host, port)}: bind: {reason}", 500) from exc
        if self._changed_while_binding():
            # Retired, or started by someone else, while the bind was awaited: this listener
            # would be one nobody can reach or stop.
            server.close()
            if self.retired:
                raise proxy_not_found()
            return
        self._server = server
        bound = server.sockets[0].getsockname()
        self.listen = join_host_port(host, int(bound[1]))
        self.enabled = True

    def stop(self) -> None:
        """Close the listener and drop every open connection."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self.connections):
            connection.abort()

    def _changed_while_binding(self) -> bool:
        # A method, not an inline test: read after an await, the flags may differ from before.
        return self.retired or self.enabled

    def retire(self) -> None:
        """Stop for good: the collection no longer holds this proxy."""
        self.retired = True
        self.stop()

    def _accept(self) -> asyncio.Protocol:
        return Connection(self).client

    def upstream_address(self) -> tuple[str, int]:
        return split_host_port(self.upstream)

    def byte_meter(self, direction: str) -> ByteMeter:
        # The labels as the connection starts, as the real server takes them: a new listen or
        # upstream restarts the proxy and drops its connections, so they cannot go stale.
        return self.byte_counters.meter(direction, self.name, self.listen, self.upstream)

    def differs(self, listen: str, upstream: str) -> bool:
        """Whether an update or /populate entry changes where this proxy listens or forwards."""
        host, port = resolve_listen(listen or ":0", self.default_host)
        return self.listen != join_host_port(host, port) or self.upstream != upstream

    # -- toxics -------------------------------------------------------------------------------

    def toxic_list(self) -> list[ToxicConfig]:
        """Upstream toxics first, then downstream, each in the order they were added."""
        toxics = list(self.toxics.values())
        return [t for t in toxics if t.direction == UPSTREAM] + [
            t for t in toxics if t.direction == DOWNSTREAM
        ]

    def add_toxic(self, config: ToxicConfig) -> None:
        if config.name in self.toxics:
            raise toxic_exists()
        self.toxics[config.name] = config
        for connection in list(self.connections):
            link = connection.links.get(config.direction)
            if link is not None:
                link.add_stage(config)

    def update_toxic(self, config: ToxicConfig) -> None:
        self.toxics[config.name] = config
        for connection in list(self.connections):
            link = connection.links.get(config.direction)
            if link is not None:
                link.replace_stage(config)

    def remove_toxic(self, name: str) -> None:
        config = self.toxics.pop(name, None)
        if config is None:
            raise toxic_not_found()
        for connection in list(self.connections):
            link = connection.links.get(config.direction)
            if link is not None:
                link.remove_stage(name)

    def remove_all_toxics(self) -> None:
        for config in self.toxic_list():
            self.remove_toxic(config.name)

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.toxic_list()],
        }
        if self.lease:  # only a proxy disabled under a lease shows it
            data["lease"] = self.lease
        return data


class ProxyCollection:
    """Every proxy of the server, by name."""

    def __init__(
        self,
        default_host: str,
        leases: LeaseTable | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.default_host = default_host
        # What GET /metrics serves; without flags it has no route, as on the real server.
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()
        self.leases = leases if leases is not None else LeaseTable()

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise proxy_not_found()
        return proxy

    def new_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(
            name,
            listen,
            upstream,
            default_host=self.default_host,
            byte_counters=self.metrics.bytes,
        )

    async def add(self, proxy: Proxy, *, start: bool) -> None:
        if proxy.name in self.proxies:
            raise proxy_exists()
        if start:
            await proxy.start()
        self.proxies[proxy.name] = proxy

    async def add_or_replace(self, proxy: Proxy, *, start: bool) -> Proxy:
        """/populate's rule: an identical proxy is kept with its toxics; a differing one goes."""
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            if not existing.differs(proxy.listen, proxy.upstream):
                return existing
            existing.stop()
        if start:
            await proxy.start()
        if existing is not None:
            existing.retire()  # replaced: no name reaches it any more
        self.proxies[proxy.name] = proxy
        return proxy

    def remove(self, name: str) -> None:
        proxy = self.get(name)
        del self.proxies[name]
        proxy.retire()

    # -- leases (an extension: harness.proxy.lease) ------------------------------------------

    def leased_toxics(self, lease_id: str) -> list[tuple[Proxy, ToxicConfig]]:
        """Every toxic attached to the lease, with its proxy. Found by the toxic's own ``lease``,
        not kept in a second index: a toxic removed, or replaced by one of the same name without
        the lease, is simply not found."""
        return [
            (proxy, toxic)
            for proxy in self.proxies.values()
            for toxic in proxy.toxic_list()
            if toxic.lease == lease_id
        ]

    async def lift(self, lease_id: str) -> list[str]:
        """Undo what the lease holds: remove its toxics (from live connections too) and enable
        the proxies disabled under it. What was done, in words (``db/slow``, ``enabled db``)."""
        lifted = []
        for proxy, toxic in self.leased_toxics(lease_id):
            proxy.remove_toxic(toxic.name)
            lifted.append(f"{proxy.name}/{toxic.name}")
        async with self.lock:  # enabling binds: the same lock as the API's proxy changes
            for proxy in list(self.proxies.values()):
                if proxy.lease != lease_id:
                    continue
                proxy.lease = ""
                try:
                    await proxy.start()
                except ApiError as exc:  # the port taken meanwhile: say so, lift the rest
                    lifted.append(f"could not enable {proxy.name}: {exc.message}")
                else:
                    lifted.append(f"enabled {proxy.name}")
        return lifted

    async def expire_leases(self) -> list[tuple[Lease, list[str]]]:
        """Lift every lease past its deadline; each such lease with what was done."""
        return [(lease, await self.lift(lease.id)) for lease in self.leases.expired()]

    def clear(self) -> None:
        for proxy in list(self.proxies.values()):
            proxy.retire()
        self.proxies.clear()
