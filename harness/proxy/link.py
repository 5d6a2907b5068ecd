"""The data path of one proxied connection: two sockets, two links, toxics as stages.

Each direction is a :class:`Link` from a source socket to a destination socket. With no active
toxic, a link writes what it reads straight to the destination (the fast path: no task, no queue,
back-pressure through the transports' pause/resume). Once a toxic is active, or chunks are still
queued behind one, chunks are stamped with the time they were read and queued for the link's
processor task, which runs them through the toxics in order. Because each chunk carries its read
time, a latency toxic delays every chunk by the same amount without serialising them, as the real
server's buffered channels do.

Toxics added, updated or removed while a connection is live change the stage list for the next
chunk; a stage cut short by an update or removal forwards what it holds, so no data is lost.

The package's dependencies run one way: ``proxy`` → ``link`` → ``toxics``. A connection sees its
proxy only through the :class:`ConnectionOwner` protocol declared here, and the toxics see a stage
only through :class:`~harness.proxy.toxics.ToxicStage`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, cast

from harness.proxy.toxics import DOWNSTREAM, UPSTREAM, ToxicConfig

__all__ = ["Connection", "ConnectionOwner", "Link", "Side", "Stage"]

# Queued bytes above which a link stops reading its source, and below which it reads again. High
# enough to hold a latency toxic's worth of data in flight at hundreds of MB/s.
QUEUE_HIGH_WATER = 16 * 1024 * 1024
QUEUE_LOW_WATER = 4 * 1024 * 1024
# Transport write buffer limits: large buffers keep bulk throughput up on the fast path.
WRITE_HIGH_WATER = 1024 * 1024
WRITE_LOW_WATER = 256 * 1024

_EOF = b""  # queued marker: the source closed (a read never yields an empty chunk)


class Stage:
    """One toxic running on one link of one connection."""

    __slots__ = ("_timer", "_waiter", "active", "config", "link", "loop", "removed", "state")

    def __init__(self, config: ToxicConfig, link: Link, state: dict[str, Any] | None = None):
        self.config = config
        self.link = link
        self.loop = link.loop
        # Toxicity is drawn once per connection and toxic (again on update), like the real server.
        self.active = random.random() < config.toxicity
        self.state: dict[str, Any] = state if state is not None else {}
        self.removed = False
        self._waiter: asyncio.Future[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def sleep(self, seconds: float) -> bool:
        """Sleep, unless interrupted by an update or removal; True when interrupted."""
        if self.removed:
            return True
        if seconds <= 0:
            return False
        waiter: asyncio.Future[bool] = self.loop.create_future()
        handle = self.loop.call_later(seconds, _resolve, waiter, False)
        self._waiter = waiter
        try:
            return await waiter
        finally:
            handle.cancel()
            self._waiter = None

    async def sleep_until(self, when: float) -> bool:
        return await self.sleep(when - self.loop.time())

    def set_timer(self, seconds: float, callback: Callable[[], None]) -> None:
        self.cancel_timer()
        self._timer = self.loop.call_later(seconds, callback)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def interrupt(self) -> None:
        """Stop this stage: cut its sleep short and cancel its timers."""
        self.removed = True
        self.cancel_timer()
        if self._waiter is not None:
            _resolve(self._waiter, True)


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class Side(asyncio.Protocol):
    """One socket of a proxied connection. What it reads feeds ``inbound``; what the opposite
    link produces is written to it."""

    def __init__(self, connection: Connection, *, is_client: bool = False) -> None:
        self.connection = connection
        self.is_client = is_client
        self.transport: asyncio.Transport | None = None
        self.inbound: Link | None = None
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.closed = False
        # Data read before the links exist (uvloop may start reading despite pause_reading in
        # connection_made); handed to the link once the upstream is connected.
        self.early: list[bytes] = []
        self.early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        if self.is_client:
            self.connection.client_made()

    def data_received(self, data: bytes) -> None:
        inbound = self.inbound
        if inbound is not None:
            inbound.feed(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        if self.inbound is not None:
            self.inbound.feed_eof()
        else:
            self.early_eof = True
        return True  # keep the socket: the link closes it once its data has gone out

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.inbound is not None:
            self.inbound.feed_eof()
        else:
            self.early_eof = True
        self._wake_drainers()
        self.connection.side_lost()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.connection.writing_paused_changed(self)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drainers()
        self.connection.writing_paused_changed(self)

    async def drain(self) -> None:
        if self.write_paused and not self.closed:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Link:
    """One direction of a connection: read from ``source``, toxics, write to ``dest``."""

    def __init__(self, connection: Connection, direction: str, source: Side, dest: Side) -> None:
        self.connection = connection
        self.direction = direction
        self.source = source
        self.dest = dest
        self.loop = asyncio.get_running_loop()
        self.stages: list[Stage] = []
        self.fast = True  # no active stage and nothing queued: write straight through
        self._queue: deque[tuple[bytes, float]] = deque()
        self._queued_bytes = 0
        self._reading_paused = False
        self._processor: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._busy = False
        self.input_closed = False  # EOF seen or a toxic closed the link: drop further input
        self.dest_closed = False

    # -- stages -------------------------------------------------------------------------------

    def add_stage(self, config: ToxicConfig, *, start: bool = True) -> None:
        stage = Stage(config, self)
        self.stages.append(stage)
        self._refresh()
        if start and stage.active:
            config.kind.on_start(stage)

    def replace_stage(self, config: ToxicConfig) -> None:
        """An update: the old stage forwards what it holds; a new one (toxicity drawn again)
        takes its place and keeps per-connection state such as limit_data's byte count."""
        for index, old in enumerate(self.stages):
            if old.config.name == config.name:
                old.interrupt()
                stage = Stage(config, self, state=old.state)
                self.stages[index] = stage
                self._refresh()
                if stage.active:
                    config.kind.on_start(stage)
                return

    def remove_stage(self, name: str) -> None:
        for index, stage in enumerate(self.stages):
            if stage.config.name == name:
                del self.stages[index]
                stage.interrupt()
                self._refresh()
                if stage.active:
                    stage.config.kind.on_remove(stage)
                return

    def _refresh(self) -> None:
        self.fast = not any(stage.active for stage in self.stages) and not self._queue
        if self._queue or self._busy:
            self._wake_processor()

    # -- input --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.input_closed:
            return
        if self.fast and not self._busy:
            transport = self.dest.transport
            if transport is not None and not self.dest_closed and not self.dest.closed:
                transport.write(data)
            return
        self._queue.append((data, self.loop.time()))
        self._queued_bytes += len(data)
        if self._queued_bytes > QUEUE_HIGH_WATER:
            self.update_reading()
        self._wake_processor()

    def feed_eof(self) -> None:
        if self.input_closed:
            return
        self.input_closed = True
        if self.fast and not self._busy and not self._queue:
            self.close_dest()
            return
        self._queue.append((_EOF, self.loop.time()))
        self._wake_processor()

    def update_reading(self) -> None:
        """Pause the source while the destination or our queue is full; resume when both drain."""
        transport = self.source.transport
        if transport is None or self.source.closed:
            return
        full = self.dest.write_paused or self._queued_bytes > QUEUE_HIGH_WATER
        drained = not self.dest.write_paused and self._queued_bytes <= QUEUE_LOW_WATER
        if full and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif drained and self._reading_paused and self.connection.started:
            self._reading_paused = False
            transport.resume_reading()

    # -- processing ---------------------------------------------------------------------------

    def _wake_processor(self) -> None:
        if self._processor is None:
            self._processor = self.loop.create_task(self._process())
            self.connection.tasks.add(self._processor)
            self._processor.add_done_callback(self.connection.tasks.discard)
        elif self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _process(self) -> None:
        try:
            while not self.dest_closed:
                if not self._queue:
                    self.fast = not any(stage.active for stage in self.stages)
                    self._wake = self.loop.create_future()
                    await self._wake
                    self._wake = None
                    continue
                data, ts = self._queue.popleft()
                self._queued_bytes -= len(data)
                if self._reading_paused:
                    self.update_reading()
                self._busy = True
                try:
                    stages = [stage for stage in self.stages if stage.active]
                    if not data:  # _EOF
                        for stage in stages:
                            if not stage.removed:
                                await stage.config.kind.on_eof(stage)
                        self.close_dest()
                        return
                    await self._run(stages, 0, data, ts)
                finally:
                    self._busy = False
        except asyncio.CancelledError:
            raise
        except Exception:  # a toxic's bug must cost one connection, never the server
            self.connection.abort()

    async def _run(self, stages: list[Stage], index: int, data: bytes, ts: float) -> None:
        while index < len(stages) and stages[index].removed:
            index += 1
        if index == len(stages):
            await self._write(data)
            return
        stage = stages[index]

        async def emit(out: bytes, out_ts: float) -> None:
            await self._run(stages, index + 1, out, out_ts)

        await stage.config.kind.on_data(stage, data, ts, emit)

    async def _write(self, data: bytes) -> None:
        transport = self.dest.transport
        if self.dest_closed or transport is None or not data:
            return
        transport.write(data)
        await self.dest.drain()

    # -- closing ------------------------------------------------------------------------------

    def close_from_toxic(self) -> None:
        """A toxic ends this link (timeout, reset_peer, limit_data): later input is dropped and
        the destination closed; the connection's other link follows when that socket goes."""
        self.input_closed = True
        self._queue.clear()
        self._queued_bytes = 0
        self.close_dest()

    def close_dest(self) -> None:
        if self.dest_closed:
            return
        self.dest_closed = True
        for stage in self.stages:
            stage.cancel_timer()
        self.connection.close_side(self.dest)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)


class ConnectionOwner(Protocol):
    """What a connection needs of the proxy that accepted it (``harness.proxy.proxy.Proxy``):
    where to dial, which toxics to start with, and the set of live connections to join and leave.
    """

    @property
    def connections(self) -> set[Connection]: ...

    def upstream_address(self) -> tuple[str, int]: ...

    def toxic_list(self) -> list[ToxicConfig]: ...


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
        up = Link(self, UPSTREAM, self.client, self.upstream)
        down = Link(self, DOWNSTREAM, self.upstream, self.client)
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
