"""The ``http`` toxic, an extension of the embedded server, on the wire and through the API.

Toxiproxy 2.12.0 is only a TCP proxy: it has no such toxic. So the tests of what the toxic does run
against the embedded server only (skipped for the real one, each saying so), and the last tests
check, against the real server only, that it refuses the same requests cleanly: ``400 invalid
toxic type`` for the toxic and a plain 404 for ``/harness/capabilities``, which is how the harness
tells the two apart (``ToxiproxyClient.supports_http_toxics``).

The wire tests go through a real HTTP upstream (``http.server`` on 127.0.0.1) and a raw client
socket, so they see what a client sees: keep-alive kept after an abort, request bodies swallowed,
pipelined answers in order, delays, live removal, ``first`` counted per client key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.proxy.launcher import RunningToxiproxy

from .http_api import Api, assert_error, toxic_view
from .http_upstream import Client, HttpUpstream, chunked, request
from .upstreams import Upstreams
from .wire import Connect, echo_round_trip, recv_exactly

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

PROXY = "web"
TOXIC = "fault"
DELAY_MS = 200
TOLERANCE_S = 0.05

OpenClient = Callable[[], Client]


@pytest.fixture
def embedded(toxiproxy: RunningToxiproxy) -> None:
    if toxiproxy.kind == "real":
        pytest.skip("extension: the real Toxiproxy 2.12.0 has no http toxic (see the last tests)")


@pytest.fixture
def upstream(embedded: None) -> Iterator[HttpUpstream]:
    with HttpUpstream() as server:
        yield server


@pytest.fixture
def listen(api: Api, upstream: HttpUpstream) -> str:
    return str(api.create_proxy(PROXY, upstream.address)["listen"])


@pytest.fixture
def client(connect: Connect, listen: str) -> Iterator[OpenClient]:
    opened: list[Client] = []

    def _open() -> Client:
        opened.append(Client(connect(listen)))
        return opened[-1]

    yield _open
    for each in opened:
        each.close()


def add_http(api: Api, name: str = TOXIC, **attributes: Any) -> dict[str, Any]:
    return api.add_toxic(PROXY, "http", name=name, stream="upstream", attributes=attributes)


# -- the wire -------------------------------------------------------------------------------------


def test_keep_alive_connection_works_after_an_abort(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    add_http(api, action="abort", path_prefix="/abort", retry_after=1.5, body="come back later")
    c = client()
    aborted = c.exchange(request("GET", "/abort/me"))
    assert aborted.status == 503
    assert aborted.headers["retry-after"] == "2"  # whole seconds, rounded up
    assert aborted.headers["content-type"] == "text/plain; charset=utf-8"
    assert "connection" not in aborted.headers
    assert aborted.body == b"come back later"
    passed = c.exchange(request("GET", "/ok"))
    assert (passed.status, passed.body) == (200, b"upstream GET /ok")
    assert upstream.paths() == ["/ok"]


def test_abort_honours_connection_close_and_head(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    add_http(api, action="abort", status=429, body="slow down")
    head = client().exchange(request("HEAD", "/x"), method="HEAD")
    assert (head.status, head.body, head.headers["content-length"]) == (429, b"", "9")
    c = client()
    closing = c.exchange(request("GET", "/x", headers={"Connection": "close"}))
    assert (closing.status, closing.headers["connection"]) == (429, "close")
    assert c.sock.recv(1) == b""  # and the proxy closes the connection
    assert upstream.paths() == []


@pytest.mark.parametrize(
    "framing",
    [pytest.param("content-length", id="content-length"), pytest.param("chunked", id="chunked")],
)
def test_the_body_of_an_aborted_request_is_swallowed(
    api: Api, upstream: HttpUpstream, client: OpenClient, framing: str
) -> None:
    add_http(api, action="abort", method="POST", path_prefix="/orders")
    c = client()
    if framing == "chunked":
        raw = request("POST", "/orders", headers={"Transfer-Encoding": "chunked"})
        body = chunked(b"GET /smuggled HTTP/1.1\r\n", b"x" * 5000, b"tail")
    else:
        raw = request("POST", "/orders", body=b"GET /smuggled HTTP/1.1\r\n" + b"x" * 70_000)
        raw, body = raw[:-70_024], raw[-70_024:]
    c.send(raw)
    for start in range(0, len(body), 4096):  # in pieces, so the body spans many reads
        c.send(body[start : start + 4096])
        time.sleep(0.001)
    assert c.read().status == 503
    after = c.exchange(request("POST", "/next", body=b"kept"))
    assert (after.status, after.body) == (200, b"upstream POST /next")
    assert [(s.path, s.body) for s in upstream.seen] == [("/next", b"kept")]


def test_pipelined_requests_are_answered_in_order(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    add_http(api, action="abort", path_prefix="/abort")
    c = client()
    # The first one is slow at the upstream: the abort's answer must wait for it.
    c.send(request("GET", "/slow") + request("GET", "/abort") + request("GET", "/fast"))
    answers = [c.read() for _ in range(3)]
    assert [(a.status, a.body) for a in answers] == [
        (200, b"upstream GET /slow"),
        (503, b""),
        (200, b"upstream GET /fast"),
    ]
    assert upstream.paths() == ["/slow", "/fast"]
    assert len({s.peer for s in upstream.seen}) == 1  # one upstream connection throughout


@pytest.mark.parametrize("delay_on", ["request", "response"])
def test_a_delay_adds_its_latency_before_the_request_or_the_response(
    api: Api, upstream: HttpUpstream, client: OpenClient, delay_on: str
) -> None:
    add_http(api, action="delay", delay_ms=DELAY_MS, delay_on=delay_on, path_prefix="/delayed")
    c = client()
    started = time.monotonic()
    plain = c.exchange(request("GET", "/plain"))
    assert plain.status == 200
    assert time.monotonic() - started < DELAY_MS / 1000 / 2  # only matching requests wait
    started = time.monotonic()
    answer = c.exchange(request("GET", "/delayed"))
    took = time.monotonic() - started
    at_upstream = upstream.seen[-1].at - started
    assert answer.status == 200
    expected = DELAY_MS / 1000
    assert abs(took - expected) <= TOLERANCE_S, f"took {took * 1000:.0f} ms"
    if delay_on == "request":
        assert abs(at_upstream - expected) <= TOLERANCE_S, f"upstream at {at_upstream:.3f}s"
    else:
        assert at_upstream <= TOLERANCE_S, f"upstream at {at_upstream:.3f}s"


def test_removing_the_toxic_lets_the_next_request_on_a_live_connection_through(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    c = client()
    assert c.exchange(request("GET", "/before")).status == 200  # live before the toxic came
    add_http(api, action="abort")
    assert c.exchange(request("GET", "/during")).status == 503
    api.remove_toxic(PROXY, TOXIC)
    after = c.exchange(request("GET", "/after"))
    assert (after.status, after.body) == (200, b"upstream GET /after")
    assert upstream.paths() == ["/before", "/after"]


def test_removing_a_delay_cuts_it_short(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    add_http(api, action="delay", delay_ms=10_000)
    c = client()
    started = time.monotonic()
    c.send(request("GET", "/held"))
    time.sleep(0.1)
    api.remove_toxic(PROXY, TOXIC)
    assert c.read().status == 200
    assert time.monotonic() - started < 2.0


def test_first_counts_exactly_per_client_key_then_per_connection(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    add_http(api, action="abort", first=3, client_key="Idempotency-Key")
    statuses: dict[str, list[int]] = {"k1": [], "k2": []}
    for _ in range(5):
        for key in statuses:  # a new connection each time: the count is per key, not per socket
            answer = client().exchange(request("POST", "/pay", headers={"Idempotency-Key": key}))
            statuses[key].append(answer.status)
    assert statuses == {"k1": [503, 503, 503, 200, 200], "k2": [503, 503, 503, 200, 200]}
    for _ in range(2):  # without the header: per connection
        c = client()
        assert [c.exchange(request("GET", "/free")).status for _ in range(4)] == [503] * 3 + [200]


def test_first_counts_survive_an_update_and_restart_with_a_new_toxic(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    add_http(api, action="abort", first=1, client_key="X-Client")
    key = {"X-Client": "alice"}
    assert client().exchange(request("GET", "/", headers=key)).status == 503
    api.update_toxic(PROXY, TOXIC, attributes={"status": 500})
    assert client().exchange(request("GET", "/", headers=key)).status == 200  # count kept
    api.remove_toxic(PROXY, TOXIC)
    add_http(api, action="abort", first=1, client_key="X-Client")
    assert client().exchange(request("GET", "/", headers=key)).status == 503  # a new count


def test_matching_by_method_glob_and_header_and_health_paths_excluded(
    api: Api, upstream: HttpUpstream, client: OpenClient
) -> None:
    add_http(api, "by-glob", action="abort", method="delete", path_glob="/items/*/lock")
    add_http(api, "by-header", action="abort", status=502, header_name="X-Canary", header_value="1")
    add_http(api, "everything", action="abort", status=500, path_prefix="/")
    c = client()
    cases = [
        (request("DELETE", "/items/7/lock"), 503),
        (request("GET", "/items/7/lock"), 500),
        (request("GET", "/a", headers={"X-Canary": "1"}), 502),
        (request("GET", "/a", headers={"X-Canary": "0"}), 500),
        (request("GET", "/healthz"), 200),
        (request("GET", "/readyz?full=1"), 200),
    ]
    assert [c.exchange(raw).status for raw, _ in cases] == [status for _, status in cases]
    assert upstream.paths() == ["/healthz", "/readyz?full=1"]


def test_traffic_that_is_not_http_passes_untouched(
    api: Api, upstreams: Upstreams, connect: Connect, embedded: None
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    add_http(api, action="abort")
    sock = connect(listen)
    assert echo_round_trip(sock, b"\x16\x03\x01\x00\xa5 a TLS hello, say") > 0
    # After the protocol error everything passes, even what looks like HTTP.
    looks_like_http = request("GET", "/abort")
    sock.sendall(looks_like_http)
    assert recv_exactly(sock, len(looks_like_http)) == looks_like_http


def test_http_after_a_protocol_error_mid_connection_passes_untouched(
    api: Api, upstreams: Upstreams, connect: Connect, embedded: None
) -> None:
    manual = upstreams.manual()
    listen = api.create_proxy(PROXY, manual.address)["listen"]
    add_http(api, action="abort", path_prefix="/abort")
    sock = connect(listen)
    first = request("GET", "/ok")
    sock.sendall(first)
    peer = manual.next_peer()
    assert recv_exactly(peer.sock, len(first)) == first
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    peer.sock.sendall(response)
    assert recv_exactly(sock, len(response)) == response
    rest = b"\x00\x01 not http\r\n\r\n" + request("GET", "/abort")
    sock.sendall(rest)
    assert recv_exactly(peer.sock, len(rest)) == rest


# -- the API --------------------------------------------------------------------------------------


def test_http_toxic_is_listed_with_every_attribute_and_updated_by_merging(
    api: Api, listen: str
) -> None:
    created = add_http(api, action="abort", status=503, retry_after=5, first=3)
    attributes = created["attributes"]
    assert attributes["exclude_paths"] == ["/healthz", "/readyz"]
    assert (attributes["action"], attributes["retry_after"], attributes["delay_on"]) == (
        "abort",
        5,
        "request",
    )
    assert [toxic_view(t) for t in api.toxics(PROXY)] == [toxic_view(created)]
    updated = api.update_toxic(PROXY, TOXIC, attributes={"retry_after": None, "body": "x"})
    assert (updated["attributes"]["retry_after"], updated["attributes"]["body"]) == (None, "x")
    assert updated["attributes"]["first"] == 3


@pytest.mark.parametrize(
    ("attributes", "mentions"),
    [
        pytest.param({}, "action", id="action-missing"),
        pytest.param({"action": "explode"}, "action", id="action-unknown"),
        pytest.param({"action": "abort", "status": 99}, "status", id="status-range"),
        pytest.param({"action": "abort", "status": "503"}, "status", id="status-type"),
        pytest.param({"action": "abort", "percent": 101}, "percent", id="percent-range"),
        pytest.param({"action": "abort", "first": -1}, "first", id="first-negative"),
        pytest.param({"action": "abort", "retry_after": -1}, "retry_after", id="retry-negative"),
        pytest.param({"action": "delay", "delay_on": "both"}, "delay_on", id="delay-on"),
        pytest.param({"action": "abort", "exclude_paths": "/x"}, "exclude_paths", id="excl"),
        pytest.param({"action": "abort", "body": "x" * 65537}, "body", id="body-too-long"),
        pytest.param({"action": "abort", "colour": "red"}, "colour", id="unknown-key"),
    ],
)
def test_bad_http_toxic_attributes_are_400(
    api: Api, listen: str, attributes: dict[str, Any], mentions: str
) -> None:
    payload = {"name": TOXIC, "type": "http", "stream": "upstream", "attributes": attributes}
    response = api.request("POST", f"/proxies/{PROXY}/toxics", json=payload)
    body = assert_error(response, 400, prefix="bad request body: ")
    assert mentions in body["error"]
    assert api.toxics(PROXY) == []


def test_bad_update_is_400_and_leaves_the_toxic_as_it_was(api: Api, listen: str) -> None:
    created = add_http(api, action="abort")
    response = api.request(
        "PATCH", f"/proxies/{PROXY}/toxics/{TOXIC}", json={"attributes": {"status": 700}}
    )
    assert_error(response, 400, prefix="bad request body: ")
    assert api.toxic(PROXY, TOXIC)["attributes"] == created["attributes"]


def test_http_toxic_on_the_downstream_stream_is_400(api: Api, listen: str) -> None:
    payload = {"type": "http", "attributes": {"action": "abort"}}  # stream defaults to downstream
    response = api.request("POST", f"/proxies/{PROXY}/toxics", json=payload)
    assert_error(response, 400, prefix="bad request body: ", contains="upstream")


def test_capabilities_list_every_toxic_type(api: Api, embedded: None) -> None:
    response = api.request("GET", "/harness/capabilities")
    assert response.status_code == 200
    assert response.json() == {
        "toxics": [
            "noop",
            "latency",
            "bandwidth",
            "slow_close",
            "timeout",
            "reset_peer",
            "slicer",
            "limit_data",
            "http",
        ],
        "leases": True,
    }


# -- the real server refuses the extension cleanly -------------------------------------------------


@pytest.fixture
def real(toxiproxy: RunningToxiproxy) -> None:
    if toxiproxy.kind == "embedded":
        pytest.skip("checks how the real Toxiproxy refuses the embedded server's extension")


def test_real_toxiproxy_refuses_the_http_toxic_type(api: Api, real: None) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    payload = {"type": "http", "stream": "upstream", "attributes": {"action": "abort"}}
    response = api.request("POST", f"/proxies/{PROXY}/toxics", json=payload)
    assert_error(response, 400, "invalid toxic type")
    assert api.toxics(PROXY) == []


def test_real_toxiproxy_has_no_capabilities_endpoint(api: Api, real: None) -> None:
    response = api.request("GET", "/harness/capabilities")
    assert response.status_code == 404
    assert response.headers.get("content-type", "").startswith("text/plain")
