"""The embedded server's HTTP API under random requests: it never dies, never answers with an
internal error, and serves a valid request right after.

Random methods (the API's and others), paths built from the real route set with random segments,
random bodies (JSON shaped like the API's own, other JSON, bytes that are not JSON or not UTF-8),
random Content-Type and other headers. Every answer must be a well-formed HTTP response with a
status below 500, or the 500 the real Toxiproxy also gives for a listen address the OS refuses
(``listen tcp ...: bind: ...``, ``lookup ...``, ``address ...``): never the middleware's catch-all
``internal error: ...``, which is a bug. After every request ``GET /version`` must answer 200.

Only the embedded server: the real one is Go's, not ours to harden. Listen addresses are drawn
from a fixed list of loopback ones (port 0) or junk without a port, so the fuzzer never binds a
port another test may want, nor sends a DNS query off the machine.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.proxy.api import build_app
from harness.proxy.launcher import RunningToxiproxy, running_toxiproxy
from harness.proxy.proxy import ProxyCollection

pytestmark = pytest.mark.conformance

SEED_PROXY = "seed"
SEED_TOXIC = "seed_latency"
# The server's own route table: most requests are one of these, so they reach a handler.
ROUTE_TABLE = [
    (route.method, route.resource.canonical)
    for route in build_app(ProxyCollection(default_host="127.0.0.1")).router.routes()
    if route.resource is not None
]
ODD_ROUTES = ["/", "/{extra}", "/proxies/{proxy}/toxics/{toxic}/{extra}", "//proxies", "/proxies/"]
ODD_METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "TRACE", "FOO", "get"]
LISTENS = [
    "127.0.0.1:0",
    "localhost:0",
    ":0",
    "[::1]:0",
    "127.0.0.1:99999",
    "127.0.0.1:-1",
    "127.0.0.1:",
    "",
    "nope",
    "[127.0.0.1]:0",
]
FIELD_NAMES = [
    "name",
    "listen",
    "upstream",
    "enabled",
    "type",
    "stream",
    "toxicity",
    "attributes",
    "latency",
    "jitter",
    "rate",
    "delay",
    "timeout",
    "bytes",
    "average_size",
    "size_variation",
    "lease",  # the lease extension's fields
    "ttl_ms",
    "owner",
]
TOXIC_TYPES = [
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "noop",
    "Latency",
    "",
]

segments = st.one_of(
    st.sampled_from([SEED_PROXY, SEED_TOXIC]),
    st.sampled_from(["x", "..", ".", "%2F", "%00", "%ff", "%", ""]),
    st.text(max_size=12).map(lambda s: quote(s, safe="")),
)
routes = st.one_of(
    st.sampled_from(ROUTE_TABLE),
    st.sampled_from(ROUTE_TABLE),
    st.tuples(st.sampled_from(ODD_METHODS), st.sampled_from([t for _, t in ROUTE_TABLE])),
    st.tuples(st.sampled_from(ODD_METHODS), st.sampled_from(ODD_ROUTES)),
)
# Seeded names most of the time, so the handlers past the lookup run.
proxy_segments = st.one_of(st.just(SEED_PROXY), st.just(SEED_PROXY), segments)
toxic_segments = st.one_of(st.just(SEED_TOXIC), st.just(SEED_TOXIC), segments)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(
        [*LISTENS, *TOXIC_TYPES, "upstream", "downstream", SEED_PROXY, SEED_TOXIC, "127.0.0.1:1"]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=6)), inner, max_size=6
        ),
    ),
    max_leaves=12,
)


@st.composite
def api_shaped(draw: st.DrawFn) -> Any:
    """An object (or a list of them, for /populate) with the API's own fields, values random
    but often right, so the handlers get past the first check."""

    def one() -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=6, unique=True)):
            if key == "listen":
                body[key] = draw(st.one_of(st.sampled_from(LISTENS), json_scalars))
            elif key == "type":
                body[key] = draw(st.one_of(st.sampled_from(TOXIC_TYPES), json_scalars))
            elif key == "attributes":
                body[key] = draw(
                    st.one_of(
                        st.dictionaries(
                            st.sampled_from(FIELD_NAMES),
                            st.one_of(st.integers(-(2**40), 2**40), json_scalars),
                            max_size=4,
                        ),
                        json_values,
                    )
                )
            else:
                body[key] = draw(json_scalars)
        return body

    return draw(st.one_of(st.builds(one), st.lists(st.builds(one), max_size=3)))


def _safe_listen(body: Any) -> bool:
    """Bind only loopback port 0 (or fail before binding): see the module's docstring."""
    if isinstance(body, list):
        return all(_safe_listen(item) for item in body)
    if not isinstance(body, dict):
        return True
    listen = body.get("listen")
    return listen is None or listen in LISTENS or (isinstance(listen, str) and ":" not in listen)


bodies = st.one_of(
    st.none(),
    api_shaped().filter(_safe_listen).map(lambda v: json.dumps(v).encode()),
    json_values.filter(_safe_listen).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.sampled_from([b"{", b"[", b"null", b'{"name": "x"} trailing', b"\xff\xfe", b" " * 10]),
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "garbage/;;;",
    ]
)
extra_headers = st.fixed_dictionaries(
    {},
    optional={
        "User-Agent": st.sampled_from(["Mozilla/5.0 (X11)", "curl/8", "", "x" * 300]),
        "Accept": st.sampled_from(["*/*", "text/html", "application/json;q=0.1", ""]),
        "Accept-Encoding": st.sampled_from(["gzip", "br, deflate", "identity;q=0"]),
        "Expect": st.just("100-continue"),
        "X-Forwarded-For": st.sampled_from(["10.0.0.1", "::1, 1.2.3.4", "junk"]),
    },
)


@pytest.fixture
def api() -> None:
    """Overrides the suite's autouse fixture, which would start both kinds of server: this
    module fuzzes the embedded one only, and cleans up after itself."""


@pytest.fixture(scope="module")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningToxiproxy]:
    """The embedded server, started through the launcher as the harness starts it."""
    log_file = tmp_path_factory.mktemp("toxiproxy-fuzz") / "server.log"
    with running_toxiproxy(kind="embedded", log_file=log_file) as running:
        yield running


def _send(
    server: RunningToxiproxy,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _seed(server: RunningToxiproxy) -> None:
    """A proxy with a toxic, so random paths that name them reach the deeper handlers."""
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    port = upstream.getsockname()[1]
    upstream.close()  # nothing connects through it: an address is all the proxy needs
    body = {"name": SEED_PROXY, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{port}"}
    _send(server, "POST", "/proxies", json.dumps(body).encode(), {})
    toxic = {"name": SEED_TOXIC, "type": "latency", "attributes": {"latency": 1}}
    _send(server, "POST", f"/proxies/{SEED_PROXY}/toxics", json.dumps(toxic).encode(), {})


def _assert_served(status: int, payload: bytes, what: str) -> None:
    assert 100 <= status < 600, f"{what}: status {status}"
    if status >= 500:
        assert status == 500, f"{what}: {status} {payload!r}"
        error = json.loads(payload)["error"]
        assert not error.startswith("internal error"), f"{what}: a bug: {payload!r}"
        # The OS refused a listen address: the real server's 500 too (see the docstring).
        assert error.startswith(("listen tcp", "lookup ", "address ")), f"{what}: {payload!r}"


def _still_serves(server: RunningToxiproxy) -> None:
    status, payload = _send(server, "GET", "/version", None, {})
    assert status == 200, payload
    assert json.loads(payload) == {"version": "2.12.0"}


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,  # the same requests in CI every time
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    route=routes,
    proxy=proxy_segments,
    toxic=toxic_segments,
    extra=segments,
    body=bodies,
    content_type=content_types,
    headers=extra_headers,
)
def test_random_requests_never_kill_the_api_nor_get_an_internal_error(
    toxiproxy: RunningToxiproxy,
    route: tuple[str, str],
    proxy: str,
    toxic: str,
    extra: str,
    body: bytes | None,
    content_type: str | None,
    headers: dict[str, str],
) -> None:
    _seed(toxiproxy)  # a previous example may have deleted it (409s when it is there)
    method, template = route
    path = template.format(proxy=proxy, toxic=toxic, extra=extra, lease=extra) or "/"
    sent = dict(headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    status, payload = _send(toxiproxy, method, path, body, sent)
    _assert_served(status, payload, f"{method} {path} {body!r}")
    _still_serves(toxiproxy)


def test_the_api_still_does_its_job_after_the_fuzzing(toxiproxy: RunningToxiproxy) -> None:
    # Runs after the fuzz test in file order; on its own it proves the same of a fresh server.
    _seed(toxiproxy)
    status, payload = _send(toxiproxy, "GET", f"/proxies/{SEED_PROXY}/toxics", None, {})
    assert status == 200
    assert [t["name"] for t in json.loads(payload)] == [SEED_TOXIC]
    status, _ = _send(toxiproxy, "DELETE", f"/proxies/{SEED_PROXY}", None, {})
    assert status == 204
