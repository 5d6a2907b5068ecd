"""The ``http`` toxic on a live connection: HTTP/1.1 read with h11 on both directions.

While an http toxic is active on a connection, its links hand what they read to an
:class:`HttpExchange` before anything else (``Link.filter``): the request side on the upstream link,
the response side on the downstream link. Both run inside the socket callbacks, without a task or a
queue, and hand on the *raw* bytes they read (never a re-serialisation), so a request that matches
nothing reaches the upstream byte for byte.

- **Requests.** One h11 server-role parser per request. Once its head is in, every active http
  toxic (in the order they were added) is asked whether it affects it: the first that aborts wins,
  delays add up. A forwarded request goes on (held back by its request delay, if any); an aborted
  one is dropped with its body (Content-Length or chunked) and answered once its last byte is in.
- **Responses.** Read only when needed, since h11 costs as much again: from the first request when
  a toxic delays responses, and from the first sign of pipelining (a request arriving before a
  byte of the previous one's response has), so that the answer to an aborted request goes out
  only after the responses to the requests before it. Then one h11 client-role parser per
  response counts the upstream's completed responses, holds each back by its response delay and
  slots waiting answers in after the response they wait for. A client that waits for each
  response (every common one) needs none of this: its aborts are answered at once.
- **Not HTTP.** After a protocol error the request side hands everything on untouched for the
  rest of the connection, except on a connection that was live before the toxic came: an error
  before its first request is taken for the rest of a request under way, the bytes go on, and
  parsing starts again with the next chunk. A protocol error on the response side (a protocol
  switch, an upstream that is not HTTP) flushes the waiting answers and stops response tracking.
- **Live changes.** Removing the last http toxic detaches both sides (the response side once its
  answers have gone out); an update or removal cuts delays under way short. A request sent
  half-way through the previous response, or in a pipelined burst the toxic joined, is taken for
  one sent after it: its answer may not wait for the responses already under way.

Delays never block: a held piece is queued on the link with the time (``toxics.now``) before
which it may not go (``not_before``); the link's processor waits for it, and everything behind
it, in order.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import h11

from harness.proxy.http_toxic import (
    FirstCounts,
    HttpRules,
    abort_response,
    has_token,
    request_path,
    rules_of,
)
from harness.proxy.toxics import ToxicStage

__all__ = ["HttpExchange", "LinkFilter", "WireLink"]

MAX_HEAD_BYTES: Final = 64 * 1024  # h11's limit on a request or response head (default 16 KiB)

# What the response parser is told was asked: only the method changes how a response is framed
# (no body after HEAD; CONNECT switches protocols), so one request per such method will do.
_HOST: Final = [(b"host", b"harness")]
_ASKED: Final = {
    method: h11.Request(method=method, target=b"/", headers=_HOST)
    for method in (b"GET", b"HEAD", b"CONNECT")
}
_END: Final = h11.EndOfMessage()
# How a request line can start (a method in capitals, then a space). Joined late, bytes that
# cannot be one are the rest of a request already under way.
_REQUEST_START: Final = re.compile(rb"[A-Z]{1,20}(?: |\Z)")


class LinkFilter(Protocol):
    """What a link hands its input to while an exchange is attached."""

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self) -> None: ...


class WireLink(Protocol):
    """What the exchange needs of a link (``harness.proxy.link.Link``)."""

    filter: LinkFilter | None
    received: int  # bytes read from the source so far

    def now(self) -> float: ...

    def pass_on(self, data: bytes, not_before: float = 0.0) -> None: ...

    def end_input(self) -> None: ...

    def cut_delays(self) -> None: ...


@dataclass(slots=True)
class _Expected:
    """A forwarded request whose response has not started yet."""

    method: bytes
    delay_s: float


@dataclass(slots=True)
class _Answer:
    """An abort's answer waiting for the responses to the ``after`` requests forwarded before."""

    after: int
    data: bytes
    close: bool
    not_before: float


@dataclass(slots=True)
class _Abort:
    """The request being dropped, answered once its last byte is in."""

    rules: HttpRules
    head_only: bool
    close: bool
    not_before: float


class HttpExchange:
    """The HTTP view of one connection while http toxics are active on it."""

    def __init__(
        self,
        up: WireLink,
        down: WireLink,
        *,
        joined_late: bool = False,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.joined_late = joined_late  # the connection carried data before the exchange came
        self.up = up
        self.down = down
        self.rand = rand
        self.toxics: list[tuple[ToxicStage, HttpRules, FirstCounts]] = []
        self.forwarded = 0  # requests handed on to the upstream
        self.completed = 0  # responses to those the upstream has finished (while tracking)
        self.expected: deque[_Expected] = deque()  # forwarded, response not started (tracking)
        self.waiting: deque[_Answer] = deque()
        self.tracking = False  # the response side reads responses in step with the requests
        self.needs_responses = False  # a toxic delays responses
        self.responses_lost = False  # the response side gave up: answers go at once from now on
        self.not_http = False  # the request side gave up: nothing to attach again
        self.last_method = b"GET"  # of the last forwarded request
        self.down_mark = -1  # down.received when it was forwarded (-1: none yet)
        self.requests: _RequestSide | None = None
        self.responses: _ResponseSide | None = None
        self._attach_requests()

    @property
    def finished(self) -> bool:
        """Both sides detached: a new toxic needs a new exchange."""
        return self.requests is None and self.responses is None

    def use(self, stages: list[ToxicStage]) -> None:
        """The active http toxics of the connection, in order (there is at least one)."""
        self.toxics = [
            (stage, *rules_of(stage.config.attributes, stage.config.shared)) for stage in stages
        ]
        self.needs_responses = any(r.on_response and not r.abort for _, r, _ in self.toxics)
        if self.requests is None:
            self.joined_late = True  # attached again on a live connection
            self._attach_requests()
        else:
            self.requests.releasing = False
        if self.responses is not None:
            self.responses.releasing = False

    def release(self) -> None:
        """No http toxic is left: hand everything on untouched, once what is held has gone."""
        self.toxics = []
        if self.requests is not None:
            self.requests.release()
        if self.responses is not None:
            self.responses.release()

    def cut(self) -> None:
        """An http toxic was updated or removed: delays under way end now."""
        if self.requests is not None:
            self.requests.not_before = 0.0
        if self.responses is not None:
            self.responses.not_before = 0.0
        for answer in self.waiting:
            answer.not_before = 0.0
        self.up.cut_delays()
        self.down.cut_delays()

    def _attach_requests(self) -> None:
        if not self.not_http:
            self.requests = _RequestSide(self)
            self.up.filter = self.requests

    # -- decisions and answers ---------------------------------------------------------------

    def decide(
        self, method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> tuple[HttpRules | None, float, float]:
        """(the rules that abort the request or None, request delay, response delay) in s."""
        path = request_path(target)
        before = after = 0.0
        for stage, rules, counts in self.toxics:
            if not rules.affects(
                method, path, headers, counts=counts, connection=stage.state, rand=self.rand
            ):
                continue
            if rules.abort:
                return rules, before, 0.0
            if rules.on_response:
                after += rules.delay(self.rand)
            else:
                before += rules.delay(self.rand)
        return None, before, after

    def request_arrives(self) -> None:
        """A request head is in: start reading responses if it is now needed (see the module
        docstring). The response stream is taken to be between two responses here, with the
        previous request's response still to come if not a byte of it has arrived."""
        if self.tracking or self.responses_lost:
            return
        pipelined = self.down_mark == self.down.received
        if pipelined or self.needs_responses:
            self.expected = deque([_Expected(self.last_method, 0.0)] if pipelined else [])
            self.completed = self.forwarded - len(self.expected)
            self.tracking = True
            self.responses = _ResponseSide(self)
            self.down.filter = self.responses

    def forwarded_request(self, method: bytes, response_delay_s: float) -> None:
        self.forwarded += 1
        self.last_method = method
        self.down_mark = self.down.received
        if self.tracking:
            self.expected.append(_Expected(method, response_delay_s))

    def answer(self, data: bytes, *, close: bool, not_before: float) -> None:
        """Send an abort's answer after the responses to the requests forwarded before it."""
        self.waiting.append(_Answer(self.forwarded, data, close, not_before))
        self.flush()

    def flush(self) -> None:
        """Send the answers whose turn has come (all of them once responses are not tracked)."""
        while self.waiting and (not self.tracking or self.waiting[0].after <= self.completed):
            answer = self.waiting.popleft()
            self.down.pass_on(answer.data, answer.not_before)
            if answer.close:
                self.waiting.clear()
                self.down.end_input()

    def stop_tracking(self) -> None:
        self.responses_lost = True
        self.tracking = False
        self.expected.clear()
        self.flush()


class _RequestSide:
    """Reads requests on the upstream link; hands on, holds back or drops them."""

    def __init__(self, exchange: HttpExchange) -> None:
        self.x = exchange
        self.link = exchange.up
        self.parser: h11.Connection | None = None
        self.held = b""  # what the parser has been given and not yet turned into events
        # A request has been read, or the exchange was there from the connection's first byte:
        # a protocol error now means "not HTTP".
        self.synced = not exchange.joined_late
        self.closed = False  # answered with Connection: close: later input is dropped
        self.aborting: _Abort | None = None
        self.not_before = 0.0  # the current request's hold (request delay)
        self.releasing = False

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        if self.parser is None:
            self.parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.parser.receive_data(data)
        self.held += data
        self._drain()

    def feed_eof(self) -> None:
        if not self.closed and self.aborting is None and self.held:
            self.link.pass_on(self.held, self.not_before)
        self.held = b""
        self.parser = None
        self.link.end_input()

    def release(self) -> None:
        if self.aborting is not None:
            self.releasing = True  # drop the rest of the aborted request first
        else:
            self._detach()

    def _detach(self) -> None:
        if self.held and not self.closed:
            self.link.pass_on(self.held, self.not_before)
        self.held = b""
        self.parser = None
        if self.link.filter is self:
            self.link.filter = None
        if self.x.requests is self:
            self.x.requests = None

    def _drain(self) -> None:
        parser = self.parser
        while parser is not None:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError:
                self._lost()
                return
            if event is h11.NEED_DATA:
                if not self.synced and not _REQUEST_START.match(self.held[:21]):
                    self._lost()
                return
            rest = parser.trailing_data[0]
            piece = self.held[: len(self.held) - len(rest)]
            self.held = rest
            kind = type(event)
            if kind is h11.Request:
                assert isinstance(event, h11.Request)
                self._on_request(event, piece)
            elif kind is h11.Data:
                self._hand_on(piece)
            elif kind is h11.EndOfMessage:
                self._hand_on(piece)
                self._on_end()
                parser = self.parser = None
                if self.releasing:
                    self._detach()
                    return
                if self.held and not self.closed:
                    parser = self.parser = h11.Connection(
                        h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES
                    )
                    parser.receive_data(self.held)
            else:  # PAUSED or ConnectionClosed: h11 will not read on; neither do we
                self._hand_on(piece)
                self._lost()
                return
            if self.closed:
                return

    def _on_request(self, event: h11.Request, piece: bytes) -> None:
        self.synced = True
        self.x.request_arrives()
        headers: Sequence[tuple[bytes, bytes]] = event.headers
        rules, before, after = self.x.decide(event.method, event.target, headers)
        self.not_before = self.link.now() + before if before > 0 else 0.0
        if rules is None:
            self.x.forwarded_request(event.method, after)
            self._hand_on(piece)
            return
        close = event.http_version == b"1.0" or has_token(headers, b"connection", b"close")
        # A client waiting for 100 Continue would not send the body: answer now, then close.
        early = has_token(headers, b"expect", b"100-continue")
        head_only = event.method == b"HEAD"
        self.aborting = _Abort(rules, head_only, close or early, self.not_before)
        if early:
            self._on_end()

    def _hand_on(self, piece: bytes) -> None:
        if self.aborting is None and piece:
            self.link.pass_on(piece, self.not_before)

    def _on_end(self) -> None:
        abort, self.aborting = self.aborting, None
        self.not_before = 0.0
        if abort is None:
            return
        data = abort_response(abort.rules, head_only=abort.head_only, close=abort.close)
        self.x.answer(data, close=abort.close, not_before=abort.not_before)
        if abort.close:
            self.closed = True
            self.parser = None
            self.held = b""

    def _lost(self) -> None:
        """h11 cannot read this: see the module docstring."""
        self.parser = None
        if self.aborting is not None:  # the dropped request's body is broken: answer, close
            self.aborting.close = True
            self._on_end()
            return
        held, self.held = self.held, b""
        if held:
            self.link.pass_on(held, self.not_before)
        if self.synced:
            self.x.not_http = True
            self._detach()


class _ResponseSide:
    """Reads responses on the downstream link: counts them, holds them back, slots answers in."""

    def __init__(self, exchange: HttpExchange) -> None:
        self.x = exchange
        self.link = exchange.down
        self.parser: h11.Connection | None = None
        self.held = b""
        self.counted = False  # the current response answers a forwarded request
        self.not_before = 0.0  # the current response's hold (response delay)
        self.releasing = False

    def feed(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            parser = self._begin()
        parser.receive_data(data)
        self.held += data
        self._drain()

    def feed_eof(self) -> None:
        if self.held:
            self.link.pass_on(self.held, self.not_before)
        self.held = b""
        self.parser = None
        self.link.end_input()

    def release(self) -> None:
        if self.x.waiting:
            self.releasing = True  # detach once the answers held here have gone out
        else:
            self._detach()

    def _detach(self) -> None:
        if self.held:
            self.link.pass_on(self.held, self.not_before)
        self.held = b""
        self.parser = None
        if self.link.filter is self:
            self.link.filter = None
        if self.x.responses is self:
            self.x.responses = None
            self.x.tracking = False

    def _begin(self) -> h11.Connection:
        x = self.x
        expected = x.expected.popleft() if x.expected else None
        parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        method = expected.method if expected is not None else b"GET"
        parser.send(_ASKED.get(method, _ASKED[b"GET"]))
        parser.send(_END)
        self.parser = parser
        self.counted = expected is not None
        delay = expected.delay_s if expected is not None else 0.0
        self.not_before = self.link.now() + delay if delay > 0 else 0.0
        return parser

    def _drain(self) -> None:
        parser = self.parser
        while parser is not None:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError:
                self._lost()
                return
            if event is h11.NEED_DATA:
                return
            rest = parser.trailing_data[0]
            piece = self.held[: len(self.held) - len(rest)]
            self.held = rest
            if piece:
                self.link.pass_on(piece, self.not_before)
            kind = type(event)
            if kind is h11.EndOfMessage:
                if self.counted:
                    self.x.completed += 1
                parser = self.parser = None
                self.not_before = 0.0
                self.x.flush()
                if self.releasing and not self.x.waiting:
                    self._detach()
                    return
                if self.held:
                    parser = self._begin()
                    parser.receive_data(self.held)
            elif kind not in (h11.Response, h11.InformationalResponse, h11.Data):
                self._lost()  # PAUSED: the protocol was switched (CONNECT, Upgrade)
                return

    def _lost(self) -> None:
        self._detach()
        self.x.stop_tracking()
