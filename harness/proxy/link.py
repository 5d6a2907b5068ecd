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

While an ``http`` toxic is active on a connection, both links first hand what they read to the
connection's :class:`~harness.proxy.http_wire.HttpExchange` (``Link.filter``), which passes it on
through :meth:`Link.pass_on`, possibly with a time before which it may not go (an HTTP delay).

The package's dependencies run one way: ``proxy`` → ``connection`` → ``link`` → ``http_wire`` →
``toxics``; any of them may use ``metrics``, which imports none of them. Sides and links see
their connection (:mod:`harness.proxy.connection`) only through the :class:`LinkOwner` protocol
declared here, and the toxics see a stage only through
:class:`~harness.proxy.toxics.ToxicStage`.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, cast

from harness.proxy.http_wire import LinkFilter
from harness.proxy.metrics import ByteMeter
from harness.proxy.toxics import ToxicConfig, now

__all__ = ["Link", "LinkOwner", "Side", "Stage"]

# Queued bytes above which a link stops reading its source, and below which it reads again. High
# enough to hold a latency toxic's worth of data in flight at hundreds of MB/s.
QUEUE_HIGH_WATER = 16 * 1024 * 1024
QUEUE_LOW_WATER = 4 * 1024 * 1024
# Transport write buffer limits: large buffers keep bulk throughput up on the fast path.
WRITE_HIGH_WATER = 1024 * 1024
WRITE_LOW_WATER = 256 * 1024

_EOF = b""  # queued marker: the source closed (a read never yields an empty chunk)


class LinkOwner(Protocol):
    """What the sides and links need of the connection they belong to
    (``harness.proxy.connection.Connection``)."""

    @property
    def tasks(self) -> set[asyncio.Task[None]]: ...

    @property
    def started(self) -> bool: ...

    def client_made(self) -> None: ...

    def side_lost(self) -> None: ...

    def writing_paused_changed(self, side: Side) -> None: ...

    def close_side(self, side: Side) -> None: ...

    def abort(self) -> None: ...

    def refresh_http(self, *, cut: bool) -> None: ...


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
        """Sleep at least ``seconds``, unless interrupted by an update or removal; True when
        interrupted."""
        return await self.sleep_until(now() + seconds)

    async def sleep_until(self, when: float) -> bool:
        """Sleep until ``when`` (:func:`~harness.proxy.toxics.now`) and never wake before it,
        unless interrupted by an update or removal; True when interrupted."""
        if self.removed:
            return True
        while (left := when - now()) > 0:
            waiter: asyncio.Future[bool] = self.loop.create_future()
            handle = self.loop.call_later(_timer_delay(left), _resolve, waiter, False)
            self._waiter = waiter
            try:
                if await waiter:
                    return True
            finally:
                handle.cancel()
                self._waiter = None
        return False

    def set_timer(self, seconds: float, callback: Callable[[], None]) -> None:
        self.cancel_timer()
        self._timer = self.loop.call_later(_timer_delay(seconds), callback)

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


def _timer_delay(seconds: float) -> float:
    """A timer's delay for ``seconds``, rounded up to a whole millisecond: uvloop's timers count
    whole ms from a clock read once per turn of the loop, and fire up to a ms early otherwise.
    A timer can still fire a little early; the callers read the clock again and wait the rest."""
    return math.ceil(seconds * 1000.0) / 1000.0


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Side(asyncio.Protocol):
    """One socket of a proxied connection. What it reads feeds ``inbound``; what the opposite
    link produces is written to it."""

    def __init__(self, connection: LinkOwner, *, is_client: bool = False) -> None:
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

    def __init__(
        self,
        connection: LinkOwner,
        direction: str,
        source: Side,
        dest: Side,
        meter: ByteMeter | None = None,
    ) -> None:
        self.connection = connection
        self.direction = direction
        self.source = source
        self.dest = dest
        self.loop = asyncio.get_running_loop()
        self.stages: list[Stage] = []
        self.fast = True  # no active stage and nothing queued: write straight through
        self.filter: LinkFilter | None = None  # the HTTP exchange, while an http toxic is active
        self.received = 0  # bytes read from the source (the HTTP exchange spots pipelining by it)
        # The /metrics byte counters of this link's labels: one int add per chunk, nothing more.
        self.meter = meter if meter is not None else ByteMeter()
        # (data, time read, time (now()) before which it may not go on: 0 for at once)
        self._queue: deque[tuple[bytes, float, float]] = deque()
        self._queued_bytes = 0
        self._reading_paused = False
        self._processor: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._hold: asyncio.Future[None] | None = None
        self._busy = False
        self.input_closed = False  # EOF seen or a toxic closed the link: drop further input
        self.dest_closed = False

    # -- stages -------------------------------------------------------------------------------

    def add_stage(self, config: ToxicConfig, *, start: bool = True) -> None:
        stage = Stage(config, self)
        self.stages.append(stage)
        self._refresh()
        if config.kind.link_level:
            self.connection.refresh_http(cut=False)
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
                if config.kind.link_level:
                    self.connection.refresh_http(cut=True)
                if stage.active:
                    config.kind.on_start(stage)
                return

    def remove_stage(self, name: str) -> None:
        for index, stage in enumerate(self.stages):
            if stage.config.name == name:
                del self.stages[index]
                stage.interrupt()
                self._refresh()
                if stage.config.kind.link_level:
                    self.connection.refresh_http(cut=True)
                if stage.active:
                    stage.config.kind.on_remove(stage)
                return

    def _chunk_stages(self) -> list[Stage]:
        """The stages chunks run through: active ones, but not those the link runs as a whole."""
        return [s for s in self.stages if s.active and not s.config.kind.link_level]

    def _refresh(self) -> None:
        self.fast = not self._chunk_stages() and not self._queue
        if self._queue or self._busy:
            self._wake_processor()

    # -- input --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        # Counted before the check: a link a toxic closed still reads (and drops) what comes,
        # and the real server counts every byte it read from the source.
        self.meter.received += len(data)
        if self.input_closed:
            return
        self.received += len(data)
        if self.filter is not None:
            self.filter.feed(data)
        else:
            self.pass_on(data)

    def pass_on(self, data: bytes, not_before: float = 0.0) -> None:
        """Data read (and past the filter) goes on: straight out on the fast path, else queued
        for the stages; ``not_before`` (:func:`now`) holds it and everything after it till then."""
        if self.input_closed:
            return
        if self.fast and not self._busy and not not_before:
            transport = self.dest.transport
            if transport is not None and not self.dest_closed and not self.dest.closed:
                transport.write(data)
                self.meter.sent += len(data)
            return
        self.fast = False  # what comes after must queue behind this
        self._queue.append((data, now(), not_before))
        self._queued_bytes += len(data)
        if self._queued_bytes > QUEUE_HIGH_WATER:
            self.update_reading()
        self._wake_processor()

    def now(self) -> float:
        return now()

    def cut_delays(self) -> None:
        """Let data held by an HTTP delay go now (the http toxic was updated or removed)."""
        if any(not_before for _, _, not_before in self._queue):
            self._queue = deque((data, ts, 0.0) for data, ts, _ in self._queue)
        if self._hold is not None and not self._hold.done():
            self._hold.set_result(None)

    def feed_eof(self) -> None:
        if self.input_closed:
            return
        if self.filter is not None:
            self.filter.feed_eof()
        else:
            self.end_input()

    def end_input(self) -> None:
        """No more input: close the destination once what is queued has gone out."""
        if self.input_closed:
            return
        self.input_closed = True
        if self.fast and not self._busy and not self._queue:
            self.close_dest()
            return
        self._queue.append((_EOF, now(), 0.0))
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
                    self.fast = not self._chunk_stages()
                    self._wake = self.loop.create_future()
                    await self._wake
                    self._wake = None
                    continue
                data, ts, not_before = self._queue[0]
                if not_before and not_before > now():
                    await self._wait_until(not_before)
                    continue  # cut_delays may have replaced the queue
                self._queue.popleft()
                self._queued_bytes -= len(data)
                if self._reading_paused:
                    self.update_reading()
                self._busy = True
                try:
                    stages = self._chunk_stages()
                    if not_before:
                        ts = max(ts, not_before)  # a latency toxic adds to the HTTP delay
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

    async def _wait_until(self, when: float) -> None:
        """Sleep until ``when``, or until :meth:`cut_delays`."""
        hold: asyncio.Future[None] = self.loop.create_future()
        # Relative and rounded up (see _timer_delay); _process reads the clock again after.
        handle = self.loop.call_later(_timer_delay(when - now()), _wake_up, hold)
        self._hold = hold
        try:
            await hold
        finally:
            handle.cancel()
            self._hold = None

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
        self.meter.sent += len(data)
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
        for waiter in (self._wake, self._hold):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
