"""The http toxic's pieces without sockets: attributes, matching, counting, the abort answer, and
the HTTP exchange driven through fake links (what it hands on, in which order, with which hold)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from harness.errors import ToxiproxyError
from harness.proxy.client import ToxiproxyClient
from harness.proxy.http_toxic import (
    DEFAULT_EXCLUDE_PATHS,
    FirstCounts,
    HttpAttributeError,
    HttpRules,
    abort_response,
    parse_attributes,
    request_path,
)
from harness.proxy.http_wire import HttpExchange, LinkFilter
from harness.proxy.toxics import TOXIC_TYPES, ToxicConfig, ToxicInputError

from .test_proxy_client import _serve_fake

pytestmark = pytest.mark.unit


def rules(**attributes: Any) -> HttpRules:
    return HttpRules.from_attributes(parse_attributes({"action": "abort", **attributes}, {}))


def affects(r: HttpRules, method: bytes = b"GET", path: str = "/", **kw: Any) -> bool:
    headers = kw.pop("headers", [])
    counts = kw.pop("counts", FirstCounts())
    connection = kw.pop("connection", {})
    rand = kw.pop("rand", lambda: 0.5)
    return r.affects(method, path, headers, counts=counts, connection=connection, rand=rand)


# -- attributes -----------------------------------------------------------------------------------


def test_defaults_fill_every_attribute() -> None:
    assert parse_attributes({"action": "abort"}, {}) == {
        "action": "abort",
        "status": 503,
        "retry_after": None,
        "body": "",
        "percent": 100,
        "first": 0,
        "client_key": "",
        "delay_ms": 0,
        "jitter_ms": 0,
        "delay_on": "request",
        "method": "",
        "path_prefix": "",
        "path_glob": "",
        "header_name": "",
        "header_value": "",
        "exclude_paths": ["/healthz", "/readyz"],
    }


def test_an_update_merges_and_null_restores_the_default() -> None:
    current = parse_attributes({"action": "abort", "retry_after": 5, "first": 3}, {})
    merged = parse_attributes({"retry_after": None, "status": 429}, current)
    assert (merged["retry_after"], merged["status"], merged["first"]) == (None, 429, 3)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "action is required"),
        ({"action": "abort", "status": 600}, "status must be an integer between 100 and 599"),
        ({"action": "abort", "status": True}, "status"),
        ({"action": "abort", "status": 503.0}, "status"),
        ({"action": "abort", "retry_after": "5s"}, "retry_after"),
        ({"action": "abort", "retry_after": float("inf")}, "retry_after"),
        ({"action": "abort", "percent": -0.1}, "percent"),
        ({"action": "abort", "first": 1.5}, "first"),
        ({"action": "delay", "delay_ms": -1}, "delay_ms"),
        ({"action": "delay", "delay_on": "Response"}, "delay_on"),
        ({"action": "abort", "method": "GET POST"}, "method"),
        ({"action": "abort", "client_key": "Bad Key"}, "client_key"),
        ({"action": "abort", "exclude_paths": ["/ok", 3]}, "exclude_paths"),
        ({"action": "abort", "body": "é" * 40_000}, "body must be at most 65536 bytes"),
        ({"action": "abort", "header_value": "1"}, "header_value needs attributes.header_name"),
        ({"action": "abort", "Status": 503}, "attributes.Status: unknown attribute"),
    ],
)
def test_bad_attributes_are_refused_with_the_attribute_named(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(HttpAttributeError, match=message):
        parse_attributes(given, {})


def test_the_registered_type_maps_bad_attributes_to_a_toxic_input_error() -> None:
    kind = TOXIC_TYPES["http"]
    assert kind.link_level
    with pytest.raises(ToxicInputError, match="status"):
        kind.merge_attributes({"action": "abort", "status": 7}, {})
    with pytest.raises(ToxicInputError, match="upstream"):
        kind.check_stream("downstream")
    kind.check_stream("upstream")


# -- matching -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/a/b?x=1", "/a/b"),
        (b"/a%20b", "/a%20b"),
        (b"http://host:8080/p?q", "/p"),
        (b"http://host", "/"),
        (b"*", "*"),
    ],
)
def test_request_path_leaves_out_the_query_and_the_authority(target: bytes, path: str) -> None:
    assert request_path(target) == path


@pytest.mark.parametrize(
    ("attributes", "method", "path", "headers", "expected"),
    [
        ({}, b"GET", "/anything", [], True),
        ({"method": "post"}, b"POST", "/", [], True),
        ({"method": "POST"}, b"GET", "/", [], False),
        ({"path_prefix": "/api/"}, b"GET", "/api/items", [], True),
        ({"path_prefix": "/api/"}, b"GET", "/apix", [], False),
        ({"path_glob": "/items/*/lock"}, b"GET", "/items/7/lock", [], True),
        ({"path_glob": "/items/*/lock"}, b"GET", "/items/7/unlock", [], False),
        ({"header_name": "X-Canary"}, b"GET", "/", [(b"x-canary", b"anything")], True),
        ({"header_name": "X-Canary"}, b"GET", "/", [(b"x-other", b"1")], False),
        ({"header_name": "X-Canary", "header_value": "1"}, b"GET", "/", [(b"x-canary", b"1")], 1),
        ({"header_name": "X-Canary", "header_value": "1"}, b"GET", "/", [(b"x-canary", b"2")], 0),
        ({}, b"GET", "/healthz", [], False),
        ({}, b"GET", "/readyz", [], False),
        ({}, b"GET", "/healthz/deep", [], True),  # exact paths only
        ({"exclude_paths": ["/ready"]}, b"GET", "/healthz", [], True),
        ({"exclude_paths": ["/ready"]}, b"GET", "/ready", [], False),
    ],
)
def test_matching_rules(
    attributes: dict[str, Any],
    method: bytes,
    path: str,
    headers: list[tuple[bytes, bytes]],
    expected: bool,
) -> None:
    assert rules(**attributes).matches(method, path, headers) is bool(expected)


def test_default_exclusions_are_the_health_checks() -> None:
    assert DEFAULT_EXCLUDE_PATHS == ("/healthz", "/readyz")


# -- counting -------------------------------------------------------------------------------------


def test_first_three_per_client_key_exactly_then_pass() -> None:
    r = rules(first=3, client_key="Idempotency-Key")
    counts = FirstCounts()
    outcomes = {
        key: [
            affects(r, headers=[(b"idempotency-key", key)], counts=counts, connection={})
            for _ in range(6)
        ]
        for key in (b"a", b"b")
    }
    assert outcomes == {b"a": [True] * 3 + [False] * 3, b"b": [True] * 3 + [False] * 3}


def test_first_without_the_key_counts_per_connection() -> None:
    r = rules(first=2, client_key="Idempotency-Key")
    counts = FirstCounts()
    one: dict[str, Any] = {}
    two: dict[str, Any] = {}
    assert [affects(r, counts=counts, connection=one) for _ in range(3)] == [True, True, False]
    assert [affects(r, counts=counts, connection=two) for _ in range(3)] == [True, True, False]
    assert len(counts) == 0


def test_requests_that_do_not_match_are_not_counted() -> None:
    r = rules(first=1, path_prefix="/pay")
    connection: dict[str, Any] = {}
    assert not affects(r, path="/other", connection=connection)
    assert affects(r, path="/pay", connection=connection)
    assert not affects(r, path="/pay", connection=connection)


def test_first_counts_forget_the_oldest_key_past_their_limit() -> None:
    counts = FirstCounts(limit=2)
    assert [counts.take(key, 1) for key in (b"a", b"b", b"c")] == [True, True, True]
    assert len(counts) == 2
    assert counts.take(b"a", 1)  # forgotten, so counted afresh
    assert not counts.take(b"c", 1)


def test_percent_draws_per_request_with_the_given_random_source() -> None:
    r = rules(percent=20)
    rng = random.Random(1234)
    hits = sum(affects(r, rand=rng.random) for _ in range(10_000))
    replay = random.Random(1234)
    expected_hits = sum(replay.random() * 100 < 20 for _ in range(10_000))
    assert hits == expected_hits
    assert 1800 < hits < 2200
    assert not any(affects(rules(percent=0), rand=lambda: 0.0) for _ in range(10))
    assert all(affects(rules(percent=100), rand=lambda: 0.999) for _ in range(10))


def test_delay_with_jitter_stays_within_its_bounds() -> None:
    r = HttpRules.from_attributes(
        parse_attributes({"action": "delay", "delay_ms": 100, "jitter_ms": 30}, {})
    )
    assert r.delay(lambda: 0.0) == pytest.approx(0.07)
    assert r.delay(lambda: 1.0) == pytest.approx(0.13)
    big_jitter = HttpRules.from_attributes(
        parse_attributes({"action": "delay", "delay_ms": 10, "jitter_ms": 50}, {})
    )
    assert big_jitter.delay(lambda: 0.0) == 0.0


# -- the abort answer -----------------------------------------------------------------------------


def test_abort_response_bytes() -> None:
    r = rules(status=503, retry_after=2.1, body="later")
    assert abort_response(r) == (
        b"HTTP/1.1 503 Service Unavailable\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 5\r\n"
        b"Retry-After: 3\r\n"
        b"\r\n"
        b"later"
    )
    assert abort_response(r, head_only=True).endswith(b"Retry-After: 3\r\n\r\n")
    closing = abort_response(rules(status=599), close=True)
    assert closing.startswith(b"HTTP/1.1 599 \r\n")
    assert b"Connection: close\r\n" in closing
    assert b"Retry-After" not in closing


# -- the exchange, through fake links -------------------------------------------------------------


class FakeLink:
    """Records what the exchange hands on, with its hold, and whether the input ended."""

    def __init__(self) -> None:
        self.filter: LinkFilter | None = None
        self.received = 0
        self.out: list[tuple[bytes, float]] = []
        self.ended = False
        self.clock = 100.0

    def now(self) -> float:
        return self.clock

    def pass_on(self, data: bytes, not_before: float = 0.0) -> None:
        assert not self.ended
        self.out.append((data, not_before))

    def end_input(self) -> None:
        self.ended = True

    def cut_delays(self) -> None:
        self.out = [(data, 0.0) for data, _ in self.out]

    @property
    def data(self) -> bytes:
        return b"".join(data for data, _ in self.out)

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.filter is None:
            self.pass_on(data)
        else:
            self.filter.feed(data)


class FakeStage:
    def __init__(self, **attributes: Any) -> None:
        self.config = ToxicConfig("t", "http", "upstream", 1.0, parse_attributes(attributes, {}))
        self.state: dict[str, Any] = {}


def exchange(
    *stages: FakeStage, rand: Callable[[], float] = lambda: 0.5
) -> tuple[HttpExchange, FakeLink, FakeLink]:
    up, down = FakeLink(), FakeLink()
    x = HttpExchange(up, down, rand=rand)
    x.use(list(stages))  # type: ignore[arg-type]
    return x, up, down


def req(method: str, path: str, extra: str = "", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/1.1\r\nHost: h\r\n{extra}{length}\r\n".encode() + body


def ok(text: bytes = b"ok") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text)


def test_requests_that_match_nothing_go_on_byte_for_byte() -> None:
    _, up, down = exchange(FakeStage(action="abort", path_prefix="/nothing"))
    raw = req("GET", "/a", "X-Mixed-Case: Yes\r\n") + req("POST", "/b", body=b"12345")
    for i in range(len(raw)):  # one byte at a time
        up.feed(raw[i : i + 1])
    assert up.data == raw
    down.feed(ok() + ok())
    assert down.data == ok() + ok()


def test_aborted_request_body_is_dropped_and_answered_at_its_end() -> None:
    x, up, down = exchange(FakeStage(action="abort", path_prefix="/drop"))
    up.feed(b"POST /drop HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
    assert down.out == []  # not answered before the body is in
    up.feed(b"lo\r\n0\r\n\r\n" + req("GET", "/next"))
    assert up.data == req("GET", "/next")
    assert down.data.startswith(b"HTTP/1.1 503 ")
    assert x.forwarded == 1


def test_pipelined_abort_waits_for_the_responses_before_it() -> None:
    x, up, down = exchange(FakeStage(action="abort", path_prefix="/drop"))
    up.feed(req("GET", "/1") + req("GET", "/drop") + req("GET", "/3"))
    assert up.data == req("GET", "/1") + req("GET", "/3")
    assert down.out == []  # /1 has not been answered yet
    down.feed(ok(b"one")[:20])
    assert not down.data.startswith(b"HTTP/1.1 503")
    down.feed(ok(b"one")[20:] + ok(b"three"))
    assert down.data.startswith(ok(b"one") + b"HTTP/1.1 503 ")
    assert down.data.endswith(ok(b"three"))
    assert (x.forwarded, x.completed, len(x.waiting)) == (2, 2, 0)


def test_delays_hold_requests_and_responses() -> None:
    _, up, down = exchange(
        FakeStage(action="delay", delay_ms=200, path_prefix="/slow-in"),
        FakeStage(action="delay", delay_ms=300, delay_on="response", path_prefix="/slow-out"),
    )
    up.feed(req("GET", "/slow-in") + req("GET", "/slow-out"))
    assert [hold for _, hold in up.out] == [pytest.approx(100.2), 0.0]
    down.clock = 101.0
    down.feed(ok() + ok())
    assert b"".join(data for data, hold in down.out if hold == 0.0) == ok()
    assert b"".join(data for data, hold in down.out if hold == pytest.approx(101.3)) == ok()


def test_protocol_error_passes_everything_on_from_then_on() -> None:
    x, up, _ = exchange(FakeStage(action="abort"))
    garbage = b"\x16\x03\x01 not http\r\n\r\n"
    up.feed(garbage)
    up.feed(req("GET", "/would-abort"))
    assert up.data == garbage + req("GET", "/would-abort")
    assert up.filter is None
    assert x.not_http


def test_joined_late_it_skips_the_rest_of_a_request_under_way() -> None:
    up, down = FakeLink(), FakeLink()
    x = HttpExchange(up, down, joined_late=True)
    x.use([FakeStage(action="abort")])  # type: ignore[list-item]
    up.feed(b"ody of a request that started earlier")
    up.feed(req("GET", "/x"))
    assert up.data == b"ody of a request that started earlier"
    assert down.data.startswith(b"HTTP/1.1 503 ")


def test_http_1_0_and_expect_continue_aborts_close_the_connection() -> None:
    _, up, down = exchange(FakeStage(action="abort"))
    up.feed(b"GET / HTTP/1.0\r\n\r\n")
    assert b"Connection: close" in down.data
    assert down.ended
    _, up, down = exchange(FakeStage(action="abort"))
    up.feed(req("PUT", "/big", "Expect: 100-continue\r\nContent-Length: 1000000\r\n"))
    assert b"Connection: close" in down.data  # answered without the body
    assert down.ended


def test_release_hands_on_what_is_held_and_detaches() -> None:
    x, up, down = exchange(FakeStage(action="abort"))
    up.feed(b"GET /partial HTTP/1.1\r\nHo")
    assert up.out == []
    x.release()
    assert up.data == b"GET /partial HTTP/1.1\r\nHo"
    assert (up.filter, down.filter, x.finished) == (None, None, True)


def test_release_waits_for_an_aborted_request_to_end() -> None:
    x, up, down = exchange(FakeStage(action="abort"))
    up.feed(req("POST", "/x", body=b"0123456789")[:-5])
    x.release()
    assert up.filter is not None
    up.feed(b"56789")
    assert up.filter is None
    assert up.data == b""
    assert down.data.startswith(b"HTTP/1.1 503 ")


def test_first_abort_wins_and_earlier_delays_hold_the_answer() -> None:
    _, up, down = exchange(
        FakeStage(action="delay", delay_ms=50),
        FakeStage(action="abort", status=500),
        FakeStage(action="abort", status=502),
    )
    up.feed(req("GET", "/"))
    assert down.data.startswith(b"HTTP/1.1 500 ")
    assert down.out[0][1] == pytest.approx(100.05)


def test_a_client_that_waits_for_each_response_costs_no_response_reading() -> None:
    x, up, down = exchange(FakeStage(action="abort", path_prefix="/drop"))
    for _ in range(3):
        up.feed(req("GET", "/a"))
        down.feed(ok())
        up.feed(req("GET", "/drop"))
        assert down.data.endswith(b"\r\n\r\n")  # the answer, at once
    assert (x.tracking, x.responses, down.filter) == (False, None, None)
    assert down.data.count(b"HTTP/1.1 503 ") == 3


def test_responses_are_read_from_the_first_request_when_a_toxic_delays_them() -> None:
    x, up, down = exchange(FakeStage(action="delay", delay_ms=10, delay_on="response"))
    up.feed(req("GET", "/a"))
    assert x.tracking
    assert down.filter is x.responses


def test_a_pipelined_request_starts_response_reading_with_the_previous_response_pending() -> None:
    x, up, down = exchange(FakeStage(action="abort", path_prefix="/drop"))
    up.feed(req("GET", "/a"))
    down.feed(ok())
    up.feed(req("GET", "/b"))  # waits for /a's answer: not pipelined
    assert not x.tracking
    up.feed(req("GET", "/drop"))  # not a byte of /b's answer yet: pipelined
    assert x.tracking
    assert down.data == ok()  # the abort's answer waits for /b's
    down.feed(ok(b"b"))
    assert down.data.startswith(ok() + ok(b"b") + b"HTTP/1.1 503 ")


def test_a_toxic_added_while_the_last_one_finishes_an_abort_keeps_the_requests_read() -> None:
    x, up, down = exchange(FakeStage(action="abort"))
    up.feed(req("POST", "/x", body=b"0123456789")[:-5])
    x.release()
    x.use([FakeStage(action="abort", status=500)])  # type: ignore[list-item]
    up.feed(b"56789" + req("GET", "/y"))
    assert up.filter is x.requests
    assert [line.split(b"\r\n")[0] for line in down.data.split(b"HTTP/1.1 ")[1:]] == [
        b"503 Service Unavailable",
        b"500 Internal Server Error",
    ]


# -- the client's capability check ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"toxics": ["latency", "http"], "leases": False}, True),
        (200, {"toxics": ["latency"], "leases": False}, False),
        (200, {"leases": False}, False),
        (200, b"not json", False),
        (404, b"404 page not found\n", False),  # the real Toxiproxy
    ],
)
def test_supports_http_toxics_only_when_the_server_lists_them(
    status: int, body: object, expected: bool
) -> None:
    with _serve_fake() as fake:
        if status != 404:
            fake.answer("GET", "/harness/capabilities", status, body)
        assert ToxiproxyClient(fake.url).supports_http_toxics() is expected


def test_supports_http_toxics_raises_when_the_server_fails() -> None:
    with _serve_fake() as fake:
        fake.answer("GET", "/harness/capabilities", 500, {"error": "boom", "status": 500})
        with pytest.raises(ToxiproxyError, match="boom"):
            ToxiproxyClient(fake.url).supports_http_toxics()
