"""ToxiproxyClient against a scripted HTTP server: error mapping, request shapes, parsing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import FrozenInstanceError, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from toxiproxy.api import APIConsumer

from harness.errors import BadInputError, ProxyConflict, ProxyNotFound, ToxiproxyError
from harness.proxy.client import ProxyInfo, ToxicInfo, ToxiproxyClient

pytestmark = pytest.mark.unit

PROXY = {
    "name": "db",
    "listen": "127.0.0.1:20001",
    "upstream": "127.0.0.1:5432",
    "enabled": True,
    "Logger": {},
    "toxics": [
        {
            "name": "latency_downstream",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1,
            "attributes": {"latency": 100, "jitter": 0},
            "future_field": "ignored",
        }
    ],
}
TOXIC = PROXY["toxics"][0]  # type: ignore[index]


@dataclass
class Seen:
    method: str
    path: str
    body: Any


@dataclass
class FakeToxiproxy:
    """Answers each (method, path) with a scripted (status, body); records every request."""

    url: str = ""
    routes: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: object) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.routes[(method, path)] = (status, raw)


@pytest.fixture
def fake() -> Iterator[FakeToxiproxy]:
    with _serve_fake() as state:
        yield state


@pytest.fixture
def other_fake() -> Iterator[FakeToxiproxy]:
    with _serve_fake() as state:
        yield state


@contextmanager
def _serve_fake() -> Iterator[FakeToxiproxy]:
    state = FakeToxiproxy()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            state.seen.append(Seen(self.command, self.path, json.loads(raw) if raw else None))
            status, body = state.routes.get(
                (self.command, self.path), (404, b"404 page not found\n")
            )
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def error_body(message: str, status: int) -> bytes:
    return json.dumps({"error": message, "status": status}).encode() + b"\n"


# -- error mapping ------------------------------------------------------------------------------


def test_404_becomes_proxy_not_found_with_the_servers_message(fake: FakeToxiproxy) -> None:
    fake.answer("GET", "/proxies/db", 404, error_body("proxy not found", 404))
    with pytest.raises(ProxyNotFound) as caught:
        ToxiproxyClient(fake.url).proxy("db")
    assert caught.value.status == 404
    assert str(caught.value) == "proxy not found"


def test_409_becomes_proxy_conflict_with_the_servers_message(fake: FakeToxiproxy) -> None:
    fake.answer("POST", "/proxies", 409, error_body("proxy already exists", 409))
    with pytest.raises(ProxyConflict) as caught:
        ToxiproxyClient(fake.url).create_proxy("db", "127.0.0.1:0", "127.0.0.1:5432")
    assert (caught.value.status, str(caught.value)) == (409, "proxy already exists")


def test_400_becomes_toxiproxy_error_with_status_400(fake: FakeToxiproxy) -> None:
    fake.answer("POST", "/proxies/db/toxics", 400, error_body("invalid toxic type", 400))
    with pytest.raises(ToxiproxyError) as caught:
        ToxiproxyClient(fake.url).add_toxic("db", "bogus")
    assert type(caught.value) is ToxiproxyError
    assert (caught.value.status, str(caught.value)) == (400, "invalid toxic type")


@pytest.mark.parametrize("status", [403, 405, 500, 502, 503])
def test_statuses_the_package_ignores_still_raise(fake: FakeToxiproxy, status: int) -> None:
    fake.answer("POST", "/proxies", status, error_body("listen tcp: bind: address in use", status))
    with pytest.raises(ToxiproxyError) as caught:
        ToxiproxyClient(fake.url).create_proxy("db", "127.0.0.1:1", "127.0.0.1:5432")
    assert caught.value.status == status
    assert str(caught.value) == "listen tcp: bind: address in use"


def test_a_5xx_on_a_call_without_a_result_still_raises(fake: FakeToxiproxy) -> None:
    fake.answer("POST", "/reset", 500, error_body("boom", 500))
    with pytest.raises(ToxiproxyError, match="boom"):
        ToxiproxyClient(fake.url).reset()


def test_a_plain_text_error_body_becomes_the_message(fake: FakeToxiproxy) -> None:
    with pytest.raises(ProxyNotFound, match="404 page not found"):
        ToxiproxyClient(fake.url).proxy("unknown-route-answer")


def test_an_empty_error_body_falls_back_to_the_http_reason(fake: FakeToxiproxy) -> None:
    fake.answer("DELETE", "/proxies/db", 503, b"")
    with pytest.raises(ToxiproxyError, match="Service Unavailable") as caught:
        ToxiproxyClient(fake.url).delete_proxy("db")
    assert caught.value.status == 503


def test_an_unreachable_server_is_status_0_naming_the_url() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ToxiproxyError) as caught:
            ToxiproxyClient(url).version()
    assert caught.value.status == 0
    assert url in str(caught.value)
    assert "Connection refused" in str(caught.value)
    assert isinstance(caught.value.__cause__, Exception)  # the original is kept as the cause


def test_a_server_that_never_answers_times_out_as_status_0() -> None:
    with socket.socket() as sock:  # listening, so connect succeeds, but nothing ever reads
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ToxiproxyError, match="did not answer GET /proxies") as caught:
            ToxiproxyClient(url, timeout_s=0.2).proxies()
    assert caught.value.status == 0
    assert url in str(caught.value)


def test_a_success_with_a_body_that_is_not_json_raises(fake: FakeToxiproxy) -> None:
    fake.answer("GET", "/proxies", 200, b"<html>captive portal</html>")
    with pytest.raises(ToxiproxyError, match="unexpected body") as caught:
        ToxiproxyClient(fake.url).proxies()
    assert caught.value.status == 200


def test_a_success_with_the_wrong_shape_raises(fake: FakeToxiproxy) -> None:
    fake.answer("GET", "/proxies/db", 200, {"name": "db"})
    with pytest.raises(ToxiproxyError, match="unexpected body"):
        ToxiproxyClient(fake.url).proxy("db")


@pytest.mark.parametrize("url", ["https://127.0.0.1:8474", "http://127.0.0.1:99999", "http://h/x"])
def test_a_bad_api_url_is_bad_input(url: str) -> None:
    with pytest.raises(BadInputError):
        ToxiproxyClient(url)


# -- results ------------------------------------------------------------------------------------


def test_proxy_parses_toxics_and_ignores_unknown_fields(fake: FakeToxiproxy) -> None:
    fake.answer("GET", "/proxies/db", 200, PROXY)
    proxy = ToxiproxyClient(fake.url).proxy("db")
    assert proxy == ProxyInfo(
        name="db",
        listen="127.0.0.1:20001",
        upstream="127.0.0.1:5432",
        enabled=True,
        toxics=(
            ToxicInfo("latency_downstream", "latency", "downstream", 1.0, TOXIC["attributes"]),
        ),
    )
    assert proxy.listen_port == 20001
    assert isinstance(proxy.toxics[0].toxicity, float)


def test_results_are_frozen(fake: FakeToxiproxy) -> None:
    fake.answer("GET", "/proxies/db", 200, PROXY)
    proxy = ToxiproxyClient(fake.url).proxy("db")
    with pytest.raises(FrozenInstanceError):
        proxy.enabled = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        proxy.toxics[0].attributes["latency"] = 1  # type: ignore[index]


def test_proxies_is_keyed_by_name(fake: FakeToxiproxy) -> None:
    fake.answer("GET", "/proxies", 200, {"db": PROXY})
    assert list(ToxiproxyClient(fake.url).proxies()) == ["db"]


def test_version_reads_the_json_body_and_the_old_plain_one(fake: FakeToxiproxy) -> None:
    fake.answer("GET", "/version", 200, {"version": "2.12.0"})
    assert ToxiproxyClient(fake.url).version() == "2.12.0"
    fake.answer("GET", "/version", 200, b"2.1.4\n")
    assert ToxiproxyClient(fake.url).version() == "2.1.4"


# -- requests as sent ---------------------------------------------------------------------------


def test_add_toxic_lets_the_server_name_it_and_returns_what_it_answered(
    fake: FakeToxiproxy,
) -> None:
    fake.answer("POST", "/proxies/db/toxics", 200, TOXIC)
    toxic = ToxiproxyClient(fake.url).add_toxic("db", "latency", attributes={"latency": 100})
    assert toxic.name == "latency_downstream"
    assert fake.seen[-1].body == {
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 100},
    }


def test_update_toxic_sends_only_what_changes(fake: FakeToxiproxy) -> None:
    fake.answer("POST", "/proxies/db/toxics/lag", 200, TOXIC)
    client = ToxiproxyClient(fake.url)
    client.update_toxic("db", "lag", toxicity=0.5)
    client.update_toxic("db", "lag", attributes={"jitter": 5})
    assert [s.body for s in fake.seen] == [{"toxicity": 0.5}, {"attributes": {"jitter": 5}}]


def test_enable_and_disable_post_only_the_flag(fake: FakeToxiproxy) -> None:
    fake.answer("POST", "/proxies/db", 200, PROXY)
    client = ToxiproxyClient(fake.url)
    client.disable("db")
    client.enable("db")
    assert [s.body for s in fake.seen] == [{"enabled": False}, {"enabled": True}]


def test_populate_sends_one_array_to_the_servers_populate(fake: FakeToxiproxy) -> None:
    fake.answer("POST", "/populate", 201, {"proxies": [PROXY]})
    client = ToxiproxyClient(fake.url)
    info = ProxyInfo("a", "127.0.0.1:0", "127.0.0.1:1", False)
    result = client.populate([{"name": "db", "listen": "127.0.0.1:0", "upstream": "x:1"}, info])
    assert [p.name for p in result] == ["db"]
    assert [(s.method, s.path) for s in fake.seen] == [("POST", "/populate")]
    assert fake.seen[0].body == [
        {"name": "db", "listen": "127.0.0.1:0", "upstream": "x:1"},
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1", "enabled": False},
    ]


def test_names_are_quoted_into_one_path_segment(fake: FakeToxiproxy) -> None:
    fake.answer("DELETE", "/proxies/a%2Fb/toxics/x%20y", 204, b"")
    ToxiproxyClient(fake.url).remove_toxic("a/b", "x y")
    assert fake.seen[-1].path == "/proxies/a%2Fb/toxics/x%20y"


def test_the_packages_global_address_is_never_touched(fake: FakeToxiproxy) -> None:
    before = (APIConsumer.host, APIConsumer.port)
    fake.answer("GET", "/version", 200, {"version": "2.12.0"})
    ToxiproxyClient(fake.url).version()
    assert (APIConsumer.host, APIConsumer.port) == before


def test_clients_of_two_servers_in_threads_each_reach_their_own(
    fake: FakeToxiproxy, other_fake: FakeToxiproxy
) -> None:
    fake.answer("GET", "/version", 200, {"version": "A"})
    other_fake.answer("GET", "/version", 200, {"version": "B"})
    clients = {"A": ToxiproxyClient(fake.url), "B": ToxiproxyClient(other_fake.url)}
    wrong: list[str] = []

    def hammer(expected: str) -> None:
        for _ in range(50):
            got = clients[expected].version()
            if got != expected:
                wrong.append(f"client {expected} reached server {got}")

    threads = [threading.Thread(target=hammer, args=(k,)) for k in "ABABAB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not wrong
    assert len(fake.seen) == len(other_fake.seen) == 150
