r"""One proxied connection: a client socket, its upstream socket, and the two links between them.

The connection dials the upstream once the client is in, builds the two :class:`~.link.Link`\ s
with the proxy's toxics as stages, and owns what spans both directions: closing (an RST when a
``reset_peer`` toxic was there from the start), and the HTTP exchange of the ``http`` toxic, which
reads requests on one link and responses on the other (:mod:`harness.proxy.http_wire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Protocol

from harness.proxy.http_wire import HttpExchange
from harness.proxy.link import Link, Side
from harness.proxy.metrics import ByteMeter
from harness.proxy.toxics import DOWNSTREAM, UPSTREAM, ToxicConfig, ToxicStage

__all__ = ["Connection", "ConnectionOwner"]


class ConnectionOwner(Protocol):
    """What a connection needs of the proxy that accepted it (``harness.proxy.proxy.Proxy``):
    where to dial, which toxics to start with, and the set of live connections to join and leave.
    """

    @property
    def connections(self) -> set[Connection]: ...

    def upstream_address(self) -> tuple[str, int]: ...

    def toxic_list(self) -> list[ToxicConfig]: ...

    def byte_meter(self, direction: str) -> ByteMeter: ...


class Connection:
    """A client socket, its upstream socket, and the two links between them."""

    def __init__(self, proxy: ConnectionOwner) -> None:
        self.proxy = proxy
        self.client = Side(self, is_client=True)
        self.upstream = Side(self)
        self.links: dict[str, Link] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.started = False
        # Set when a reset_peer toxic exists as the connection starts: every close is then an RST.
        self.linger_zero = False
        self.http: HttpExchange | None = None
        self._finished = False

    def client_made(self) -> None:
        """The client connected: hold its data until the upstream answers."""
        assert self.client.transport is not None
        self.client.transport.pause_reading()
        self.proxy.connections.add(self)
        task = asyncio.get_running_loop().create_task(self._connect_upstream())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect_upstream(self) -> None:
        host, port = self.proxy.upstream_address()
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self.upstream, host, port)
        except (OSError, ValueError):
            # The real server closes the client at once when the upstream cannot be dialled.
            self.close_side(self.client)
            return
        up = Link(self, UPSTREAM, self.client, self.upstream, self.proxy.byte_meter(UPSTREAM))
        down = Link(self, DOWNSTREAM, self.upstream, self.client, self.proxy.byte_meter(DOWNSTREAM))
        self.client.inbound = up
        self.upstream.inbound = down
        self.links = {UPSTREAM: up, DOWNSTREAM: down}
        for config in self.proxy.toxic_list():
            self.links[config.direction].add_stage(config, start=False)
            if config.type == "reset_peer":
                self.linger_zero = True
        for link in (up, down):
            for stage in link.stages:
                if stage.active:
                    stage.config.kind.on_start(stage)
        self.started = True
        # Either side may have spoken before the links existed (a server greeting, a client
        # that writes at once); replay what each read, in order, then its EOF.
        for side, link in ((self.client, up), (self.upstream, down)):
            early, side.early = side.early, []
            for data in early:
                link.feed(data)
            if side.early_eof:
                link.feed_eof()
        if not self.client.early_eof and self.client.transport is not None:
            self.client.transport.resume_reading()

    def refresh_http(self, *, cut: bool) -> None:
        """Attach, update or release the HTTP exchange after an http toxic came, changed or
        went; ``cut`` ends the HTTP delays under way (an update or removal)."""
        up, down = self.links.get(UPSTREAM), self.links.get(DOWNSTREAM)
        if up is None or down is None:
            return
        exchange = self.http
        if cut and exchange is not None:
            exchange.cut()
        stages: list[ToxicStage] = [
            s for s in up.stages if s.active and not s.removed and s.config.kind.link_level
        ]
        if stages:
            if exchange is None or (exchange.finished and not exchange.not_http):
                exchange = self.http = HttpExchange(up, down, joined_late=self.started)
            exchange.use(stages)
        elif exchange is not None:
            exchange.release()

    def writing_paused_changed(self, side: Side) -> None:
        # The link writing to `side` throttles its own source.
        for link in self.links.values():
            if link.dest is side:
                link.update_reading()

    def close_side(self, side: Side) -> None:
        transport = side.transport
        if transport is None or transport.is_closing():
            return
        if self.linger_zero:
            _set_linger_zero(transport)
            transport.abort()
        else:
            transport.close()

    def abort(self) -> None:
        """Drop both sockets now (proxy disabled or deleted, server shutting down)."""
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.closed:
                side.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        self._finish()

    def side_lost(self) -> None:
        if self.client.closed and (self.upstream.closed or self.upstream.transport is None):
            self._finish()
        elif self.upstream.closed and not self.started:
            # Normally the downstream link closes the client once it has drained; a connection
            # whose links never started has no such link.
            self.close_side(self.client)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self.proxy.connections.discard(self)


def _set_linger_zero(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
