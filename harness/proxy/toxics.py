"""The toxic types of Toxiproxy v2.12.0: their attributes, validation, and what each does to data.

A toxic is configured once (a :class:`ToxicConfig`, immutable, replaced on update) and runs once per
connection and direction as a stage (:class:`~harness.proxy.link.Stage`, seen here only through the
:class:`ToxicStage` protocol, so this module sits at the bottom of the package and imports nothing
from the link or the proxy above it). Each type here is a small class with up to four hooks the
link calls:

- ``on_data(stage, data, ts, emit)``: handle one chunk read at ``ts`` (:func:`now`); call
  ``await emit(data, ts)`` for what goes on to the next stage; may sleep through
  ``stage.sleep``, which an update or removal cuts short (the toxic then forwards what it holds,
  as the real one does).
- ``on_eof(stage)``: the source closed; return once the close may go on (slow_close delays it).
- ``on_start(stage)``: the stage was attached to a live link (timers for timeout).
- ``on_remove(stage)``: the toxic was deleted (timeout closes the connection, as the real one does).

The ``http`` toxic (an extension, :mod:`harness.proxy.http_toxic`) is registered here like the
others but is ``link_level``: it does not run as a stage on chunks; the link hands the connection's
bytes to an HTTP exchange (:mod:`harness.proxy.http_wire`) while such a toxic is active on it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from harness.proxy.http_toxic import ATTRIBUTE_NAMES, HttpAttributeError, parse_attributes

__all__ = [
    "DOWNSTREAM",
    "TOXIC_TYPES",
    "UPSTREAM",
    "Bandwidth",
    "Emit",
    "Http",
    "Latency",
    "LimitData",
    "Noop",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "Timeout",
    "ToxicConfig",
    "ToxicInputError",
    "ToxicLink",
    "ToxicStage",
    "ToxicType",
]

Emit = Callable[[bytes, float], Awaitable[None]]

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"


class ToxicInputError(ValueError):
    """An attribute value the embedded server refuses (maps to a 400 ``bad request body``)."""


@dataclass(frozen=True)
class ToxicConfig:
    """One toxic as the API shows it; ``stream`` keeps the spelling it was given."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)
    # State of the toxic itself, shared by all its connections: carried over by an update (the
    # API passes it on), gone when the toxic is removed (the http toxic's `first` counts).
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The lease the toxic is attached to (an extension, :mod:`harness.proxy.lease`); "" for none.
    # Kept by an update; when the lease expires or is released, the toxic is removed.
    lease: str = ""

    @property
    def direction(self) -> str:
        return self.stream.lower()

    @property
    def kind(self) -> ToxicType:
        return TOXIC_TYPES[self.type]

    def to_json(self) -> dict[str, Any]:
        # Key order of the real server's JSON: attributes, name, type, stream, toxicity.
        toxicity: float | int = self.toxicity
        if float(toxicity).is_integer():
            toxicity = int(toxicity)
        data: dict[str, Any] = {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": toxicity,
        }
        if self.lease:  # only leased toxics show it: a plain toxic's JSON is the real server's
            data["lease"] = self.lease
        return data


def now() -> float:
    """The proxy's clock, for the time a chunk was read and every delay after it.

    ``time.monotonic()``, not the event loop's time: uvloop's ``loop.time()`` is whole milliseconds
    read once per turn of the loop, so a chunk stamped with it looked up to a few ms older than it
    was, and a latency toxic let it go that much early (149.9 ms through a 150 ms toxic).
    """
    return time.monotonic()


class ToxicLink(Protocol):
    """What a toxic may do to the link it runs on: end it."""

    def close_from_toxic(self) -> None: ...


class ToxicStage(Protocol):
    """What a toxic sees of the stage it runs in (implemented by ``harness.proxy.link.Stage``).

    Declared here, where the toxics use it, so the dependency runs one way: link imports toxics,
    never the reverse. Read-only properties, so the concrete stage may hold narrower types.
    """

    @property
    def config(self) -> ToxicConfig: ...

    @property
    def link(self) -> ToxicLink: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def state(self) -> dict[str, Any]: ...

    async def sleep(self, seconds: float) -> bool: ...

    async def sleep_until(self, when: float) -> bool: ...  # ``when`` on :func:`now`

    def set_timer(self, seconds: float, callback: Callable[[], None]) -> None: ...


class ToxicType:
    """Base: a toxic that passes data unchanged. Subclasses override the hooks they need."""

    name: ClassVar[str] = "noop"
    attribute_names: ClassVar[tuple[str, ...]] = ()
    # Whether the toxic keeps per-connection state across updates (limit_data counts bytes).
    stateful: ClassVar[bool] = False
    # Handled by the link as a whole rather than run as a stage on each chunk (http).
    link_level: ClassVar[bool] = False

    def merge_attributes(self, given: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """``given`` over ``current``, the real server's way: every attribute is an integer,
        missing ones keep their value (0 on a new toxic), unknown keys are ignored."""
        attributes = dict(current)
        for key in self.attribute_names:
            value = given.get(key)
            if value is None:
                attributes[key] = attributes.get(key, 0)
            elif isinstance(value, int) and not isinstance(value, bool):
                if not -(2**63) <= value < 2**63:  # an int64 in Go: larger is a 400 there
                    raise ToxicInputError(f"field {key!r}: number {str(value)[:40]} out of range")
                attributes[key] = value
            else:
                raise ToxicInputError(f"field {key!r} must be a int, got {json.dumps(value)}")
        return attributes

    def check_stream(self, direction: str) -> None:
        """Refuse a stream the toxic cannot work on. Default: both streams work."""

    def validate(self, attributes: dict[str, Any]) -> None:
        """Reject values that would break the real server. Default: everything goes."""

    async def on_data(self, stage: ToxicStage, data: bytes, ts: float, emit: Emit) -> None:
        await emit(data, ts)

    async def on_eof(self, stage: ToxicStage) -> None:
        return None

    def on_start(self, stage: ToxicStage) -> None:
        return None

    def on_remove(self, stage: ToxicStage) -> None:
        return None


class Noop(ToxicType):
    name = "noop"


class Latency(ToxicType):
    """Each chunk leaves ``latency ± jitter`` ms after it was read, so delays overlap and
    throughput is kept; stacked latency toxics add up because the chunk's time moves on."""

    name = "latency"
    attribute_names = ("latency", "jitter")

    def validate(self, attributes: dict[str, Any]) -> None:
        if attributes["jitter"] < 0:
            raise ToxicInputError("attributes.jitter must not be negative")

    async def on_data(self, stage: ToxicStage, data: bytes, ts: float, emit: Emit) -> None:
        attrs = stage.config.attributes
        delay_ms = attrs["latency"]
        jitter = attrs["jitter"]
        if jitter > 0:
            delay_ms += random.randrange(-jitter, jitter)
        due = ts + delay_ms / 1000.0
        await stage.sleep_until(due)
        await emit(data, max(due, ts))


class Bandwidth(ToxicType):
    """Paces the connection to ``rate`` KB/s (1 KB = 1000 bytes), per connection. Large chunks are
    cut into 100 ms worth of data so a slow rate still trickles instead of arriving in bursts."""

    name = "bandwidth"
    attribute_names = ("rate",)

    def validate(self, attributes: dict[str, Any]) -> None:
        # The real server loops forever on 0 and panics on a negative rate.
        if attributes["rate"] <= 0:
            raise ToxicInputError("attributes.rate must be greater than 0")

    async def on_data(self, stage: ToxicStage, data: bytes, ts: float, emit: Emit) -> None:
        bytes_per_s = stage.config.attributes["rate"] * 1000.0
        piece = max(1, int(bytes_per_s / 10))  # 100 ms of data
        view = memoryview(data)
        offset = 0
        while offset < len(view):
            part = bytes(view[offset : offset + piece]) if len(view) > piece else data
            offset += len(part)
            # `due` is when the data sent so far has been paid for at the rate; carrying it across
            # chunks keeps the long-run rate exact whatever the timer's granularity.
            now_s = now()
            due = max(stage.state.get("due", now_s), now_s) + len(part) / bytes_per_s
            stage.state["due"] = due
            if await stage.sleep_until(due):
                await emit(bytes(view[offset - len(part) :]), ts)  # interrupted: the rest at once
                return
            await emit(part, ts)


class SlowClose(ToxicType):
    """Data passes; the close that follows the source's EOF is delayed by ``delay`` ms."""

    name = "slow_close"
    attribute_names = ("delay",)

    async def on_eof(self, stage: ToxicStage) -> None:
        await stage.sleep(stage.config.attributes["delay"] / 1000.0)


class Timeout(ToxicType):
    """Data is dropped. With ``timeout`` > 0 the connection closes after that many ms without
    data reaching the toxic; 0 holds it open forever. Removing the toxic closes the connection."""

    name = "timeout"
    attribute_names = ("timeout",)

    def on_start(self, stage: ToxicStage) -> None:
        self._arm(stage)

    async def on_data(self, stage: ToxicStage, data: bytes, ts: float, emit: Emit) -> None:
        self._arm(stage)  # the real toxic restarts its timer on every chunk

    def on_remove(self, stage: ToxicStage) -> None:
        stage.link.close_from_toxic()

    @staticmethod
    def _arm(stage: ToxicStage) -> None:
        timeout_ms = stage.config.attributes["timeout"]
        if timeout_ms > 0:
            stage.set_timer(timeout_ms / 1000.0, stage.link.close_from_toxic)


class ResetPeer(ToxicType):
    """On the first data, wait ``timeout`` ms, then close the connection; the close is a TCP RST
    when the toxic existed before the client connected (the real server sets SO_LINGER 0 then)."""

    name = "reset_peer"
    attribute_names = ("timeout",)

    async def on_data(self, stage: ToxicStage, data: bytes, ts: float, emit: Emit) -> None:
        if await stage.sleep(stage.config.attributes["timeout"] / 1000.0):
            return  # removed or updated while waiting: the replacement decides
        stage.link.close_from_toxic()


class Slicer(ToxicType):
    """Cuts each chunk into pieces of about ``average_size`` ± ``size_variation`` bytes by
    recursive halving, with ``delay`` µs between pieces; the bytes and their order are kept."""

    name = "slicer"
    attribute_names = ("average_size", "size_variation", "delay")

    def validate(self, attributes: dict[str, Any]) -> None:
        # The real server recurses forever on average_size <= 0 and slices out of range when
        # the variation exceeds the average size.
        if attributes["average_size"] <= 0:
            raise ToxicInputError("attributes.average_size must be greater than 0")
        if not 0 <= attributes["size_variation"] <= attributes["average_size"]:
            raise ToxicInputError("attributes.size_variation must be between 0 and average_size")

    @staticmethod
    def cut_points(length: int, average: int, variation: int) -> list[int]:
        """Offsets where pieces end, found by halving like the real toxic (no recursion here)."""
        ends: list[int] = []
        stack = [(0, length)]
        while stack:
            start, end = stack.pop()
            if (end - start) - average <= variation:
                ends.append(end)
                continue
            mid = start + (end - start) // 2
            if variation > 0:
                mid += random.randrange(-variation, variation)
            mid = min(max(mid, start + 1), end - 1)
            stack.append((mid, end))  # popped second: keeps pieces in order
            stack.append((start, mid))
        return ends

    async def on_data(self, stage: ToxicStage, data: bytes, ts: float, emit: Emit) -> None:
        attrs = stage.config.attributes
        delay_s = attrs["delay"] / 1_000_000.0
        start = 0
        for end in self.cut_points(len(data), attrs["average_size"], attrs["size_variation"]):
            await emit(data[start:end], ts)
            start = end
            if await stage.sleep(delay_s) and start < len(data):
                await emit(data[start:], ts)  # interrupted: the rest in one piece
                return


class LimitData(ToxicType):
    """Passes up to ``bytes`` per connection and direction, then closes the connection."""

    name = "limit_data"
    attribute_names = ("bytes",)
    stateful = True

    async def on_data(self, stage: ToxicStage, data: bytes, ts: float, emit: Emit) -> None:
        limit = stage.config.attributes["bytes"]
        sent = stage.state.get("sent", 0)
        remaining = max(limit - sent, 0)
        if remaining < len(data):
            data = data[:remaining]
        if data:
            stage.state["sent"] = sent + len(data)
            await emit(data, ts)
        if limit - stage.state.get("sent", 0) <= 0:
            stage.link.close_from_toxic()


class Http(ToxicType):
    """HTTP-aware faults (abort with a status, or delay) on requests that match; an extension the
    real Toxiproxy does not have. Goes on the upstream stream, where the requests are; the link
    runs it (see the module docstring), so the stage hooks are never called."""

    name = "http"
    attribute_names = ATTRIBUTE_NAMES
    link_level = True

    def merge_attributes(self, given: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        try:
            return parse_attributes(given, current)
        except HttpAttributeError as exc:
            raise ToxicInputError(str(exc)) from exc

    def check_stream(self, direction: str) -> None:
        if direction != UPSTREAM:
            raise ToxicInputError(
                "the http toxic goes on the upstream stream (client to server), where it sees "
                'the requests: add it with "stream": "upstream"'
            )


TOXIC_TYPES: dict[str, ToxicType] = {
    kind.name: kind
    for kind in (
        Noop(),
        Latency(),
        Bandwidth(),
        SlowClose(),
        Timeout(),
        ResetPeer(),
        Slicer(),
        LimitData(),
        Http(),
    )
}
