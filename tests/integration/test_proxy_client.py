"""ToxiproxyClient against real servers: the real Toxiproxy and the embedded one.

Each server kind is started once per module through ``harness.proxy.launcher``. A missing real
binary skips (or fails under ``HARNESS_REQUIRE_TOXIPROXY=1``); the embedded server is part of
the package, so its absence fails.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Literal, NoReturn

import pytest
from toxiproxy.api import APIConsumer

from harness.errors import ProxyConflict, ProxyNotFound, ToxiproxyError
from harness.proxy.client import ToxiproxyClient
from harness.proxy.launcher import (
    RunningToxiproxy,
    find_real_toxiproxy,
    running_toxiproxy,
    start_toxiproxy,
    stop_process,
)

pytestmark = pytest.mark.integration

Kind = Literal["real", "embedded"]
KINDS: list[Kind] = ["real", "embedded"]
REQUIRE_TOXIPROXY_ENV = "HARNESS_REQUIRE_TOXIPROXY"
# Never dialled: only proxies with no traffic use these.
NOWHERE_A = "127.0.0.1:1"
NOWHERE_B = "127.0.0.1:2"

RequireOrSkip = Callable[[str, str], NoReturn]


def _check_available(kind: str, require_or_skip: RequireOrSkip) -> None:
    if kind == "real" and find_real_toxiproxy() is None:
        require_or_skip(
            "no real Toxiproxy server found (toxiproxy-server on PATH, ~/go/bin/server, "
            "or HARNESS_TOXIPROXY_BIN)",
            REQUIRE_TOXIPROXY_ENV,
        )


def _start(kind: Kind, stack: ExitStack, log_dir: Path) -> RunningToxiproxy:
    log_dir.mkdir(parents=True, exist_ok=True)
    return stack.enter_context(running_toxiproxy(kind=kind, log_file=log_dir / "server.log"))


@pytest.fixture(scope="module", params=KINDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    require_or_skip: RequireOrSkip,
) -> Iterator[RunningToxiproxy]:
    _check_available(request.param, require_or_skip)
    with ExitStack() as stack:
        running = _start(request.param, stack, tmp_path_factory.mktemp(request.param))
        assert running.kind == request.param
        yield running


def _delete_all(client: ToxiproxyClient) -> None:
    for name in client.proxies():
        client.delete_proxy(name)


@pytest.fixture
def client(server: RunningToxiproxy) -> Iterator[ToxiproxyClient]:
    """A client of the server under test, with no proxies before and after each test."""
    toxiproxy = ToxiproxyClient(server.api_url)
    _delete_all(toxiproxy)
    yield toxiproxy
    _delete_all(toxiproxy)


@pytest.fixture
def echo() -> Iterator[str]:
    """A TCP echo server on 127.0.0.1; yields its address."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _round_trip_s(listen: str, payload: bytes = b"ping") -> float:
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        started = time.perf_counter()
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            assert chunk, "the proxy closed the connection"
            received += chunk
        elapsed = time.perf_counter() - started
    assert received == payload
    return elapsed


def _accepts_connections(listen: str) -> bool:
    host, port = listen.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


# -- server and proxies -------------------------------------------------------------------------


def test_version_is_reported(client: ToxiproxyClient, server: RunningToxiproxy) -> None:
    version = client.version()
    if server.kind == "real":
        assert version == "2.12.0"
    assert version


def test_a_created_proxy_reports_its_bound_port_and_is_listed(client: ToxiproxyClient) -> None:
    created = client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    assert created.name == "db"
    assert created.listen.startswith("127.0.0.1:")
    assert created.listen_port != 0
    assert (created.upstream, created.enabled, created.toxics) == (NOWHERE_A, True, ())
    assert client.proxies() == {"db": created}
    assert client.proxy("db") == created


def test_a_proxy_can_be_created_disabled(client: ToxiproxyClient) -> None:
    assert not client.create_proxy("db", "127.0.0.1:0", NOWHERE_A, enabled=False).enabled


def test_creating_a_proxy_twice_is_a_conflict(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    with pytest.raises(ProxyConflict) as caught:
        client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    assert (caught.value.status, str(caught.value)) == (409, "proxy already exists")


def test_a_missing_proxy_is_not_found_for_every_call(client: ToxiproxyClient) -> None:
    calls: list[Callable[[], object]] = [
        lambda: client.proxy("nope"),
        lambda: client.delete_proxy("nope"),
        lambda: client.disable("nope"),
        lambda: client.toxics("nope"),
        lambda: client.add_toxic("nope", "latency"),
    ]
    for call in calls:
        with pytest.raises(ProxyNotFound) as caught:
            call()
        assert (caught.value.status, str(caught.value)) == (404, "proxy not found")


def test_a_bind_failure_is_a_500_not_silence(
    client: ToxiproxyClient, server: RunningToxiproxy
) -> None:
    with pytest.raises(ToxiproxyError) as caught:
        client.create_proxy("db", f"127.0.0.1:{server.port}", NOWHERE_A)
    assert caught.value.status == 500
    assert "address already in use" in str(caught.value)


def test_deleting_a_proxy_removes_it(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    client.delete_proxy("db")
    assert client.proxies() == {}


def test_disable_closes_the_listener_and_enable_reopens_it(client: ToxiproxyClient) -> None:
    listen = client.create_proxy("db", "127.0.0.1:0", NOWHERE_A).listen
    assert not client.disable("db").enabled
    assert not _accepts_connections(listen)
    assert client.enable("db").enabled
    assert _accepts_connections(listen)


def test_populate_keeps_identical_proxies_and_replaces_differing_ones(
    client: ToxiproxyClient,
) -> None:
    same = client.create_proxy("same", "127.0.0.1:0", NOWHERE_A)
    client.add_toxic("same", "latency", attributes={"latency": 5})
    changed = client.create_proxy("changed", "127.0.0.1:0", NOWHERE_A)
    client.add_toxic("changed", "latency", attributes={"latency": 5})

    result = client.populate(
        [
            same,
            {"name": "changed", "listen": changed.listen, "upstream": NOWHERE_B},
            {"name": "new", "listen": "127.0.0.1:0", "upstream": NOWHERE_B},
        ]
    )

    assert {p.name for p in result} >= {"changed", "new"}
    proxies = client.proxies()
    assert set(proxies) == {"same", "changed", "new"}
    assert [t.name for t in proxies["same"].toxics] == ["latency_downstream"]
    assert proxies["changed"].upstream == NOWHERE_B
    assert proxies["changed"].toxics == ()


# -- toxics -------------------------------------------------------------------------------------


def test_add_toxic_returns_the_servers_defaults(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    toxic = client.add_toxic("db", "latency", attributes={"latency": 100})
    assert (toxic.name, toxic.type, toxic.stream, toxic.toxicity) == (
        "latency_downstream",
        "latency",
        "downstream",
        1.0,
    )
    assert toxic.attributes == {"latency": 100, "jitter": 0}
    assert client.toxics("db") == [toxic]
    assert client.proxy("db").toxics == (toxic,)


def test_an_invalid_toxic_type_is_a_400(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    with pytest.raises(ToxiproxyError) as caught:
        client.add_toxic("db", "bogus")
    assert (caught.value.status, str(caught.value)) == (400, "invalid toxic type")


def test_a_toxic_name_is_unique_across_streams(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    client.add_toxic("db", "latency", name="lag", stream="upstream")
    with pytest.raises(ProxyConflict, match="toxic already exists"):
        client.add_toxic("db", "latency", name="lag", stream="downstream")


def test_update_toxic_merges_attributes_and_replaces_toxicity(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    client.add_toxic("db", "latency", name="lag", attributes={"latency": 100, "jitter": 10})
    updated = client.update_toxic("db", "lag", attributes={"jitter": 3})
    assert updated.attributes == {"latency": 100, "jitter": 3}
    updated = client.update_toxic("db", "lag", toxicity=0.25)
    assert (updated.toxicity, updated.attributes["jitter"]) == (0.25, 3)
    assert client.toxics("db") == [updated]


def test_updating_or_removing_a_missing_toxic_is_not_found(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    for call in (
        lambda: client.update_toxic("db", "nope", toxicity=0.5),
        lambda: client.remove_toxic("db", "nope"),
    ):
        with pytest.raises(ProxyNotFound) as caught:
            call()
        assert str(caught.value) == "toxic not found"


def test_toxics_list_upstream_first_then_insertion_order(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    client.add_toxic("db", "latency", name="d1")
    client.add_toxic("db", "latency", name="u1", stream="upstream")
    client.add_toxic("db", "noop", name="d2")
    client.add_toxic("db", "noop", name="u2", stream="upstream")
    assert [t.name for t in client.toxics("db")] == ["u1", "u2", "d1", "d2"]


def test_remove_toxic_removes_only_that_toxic(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    client.add_toxic("db", "latency", name="a")
    client.add_toxic("db", "latency", name="b")
    client.remove_toxic("db", "a")
    assert [t.name for t in client.toxics("db")] == ["b"]


def test_reset_reenables_proxies_and_removes_toxics(client: ToxiproxyClient) -> None:
    client.create_proxy("db", "127.0.0.1:0", NOWHERE_A)
    client.add_toxic("db", "latency")
    client.disable("db")
    client.reset()
    proxy = client.proxy("db")
    assert (proxy.enabled, proxy.toxics) == (True, ())


def test_a_toxic_added_through_the_client_shapes_traffic(
    client: ToxiproxyClient, echo: str
) -> None:
    listen = client.create_proxy("echo", "127.0.0.1:0", echo).listen
    assert _round_trip_s(listen) < 0.1
    client.add_toxic("echo", "latency", attributes={"latency": 150})
    assert _round_trip_s(listen) >= 0.15
    client.remove_toxic("echo", "latency_downstream")
    assert _round_trip_s(listen) < 0.1


def test_a_stopped_server_is_unreachable_status_0(server: RunningToxiproxy, tmp_path: Path) -> None:
    running, process = start_toxiproxy(kind=server.kind, log_file=tmp_path / "server.log")
    try:
        client = ToxiproxyClient(running.api_url, timeout_s=2)
        assert client.version()
    finally:
        stop_process(process)
    with pytest.raises(ToxiproxyError) as caught:
        client.proxies()
    assert caught.value.status == 0
    assert running.api_url in str(caught.value)


# -- several servers, several threads -----------------------------------------------------------

PAIRS: list[tuple[Kind, Kind]] = [("real", "real"), ("real", "embedded")]


@pytest.mark.parametrize(("kind_a", "kind_b"), PAIRS, ids=["real+real", "real+embedded"])
def test_clients_of_two_servers_used_from_threads_never_cross_talk(
    kind_a: Kind,
    kind_b: Kind,
    tmp_path: Path,
    require_or_skip: RequireOrSkip,
) -> None:
    """Eight threads drive two servers at once, creating the same proxy names on both with
    different upstreams: a request sent to the wrong server would show up as a conflict, a
    missing proxy or a wrong upstream. A ninth thread keeps pointing the package's global
    address elsewhere, as other code using ``toxiproxy-python`` directly would."""
    _check_available(kind_a, require_or_skip)
    _check_available(kind_b, require_or_skip)
    workers, rounds = 8, 15
    errors: list[BaseException] = []
    done = threading.Event()
    start = threading.Barrier(workers + 1)
    saved = (APIConsumer.host, APIConsumer.port)

    with ExitStack() as stack:
        a = ToxiproxyClient(_start(kind_a, stack, tmp_path / "a").api_url)
        b = ToxiproxyClient(_start(kind_b, stack, tmp_path / "b").api_url)

        def work(worker: int) -> None:
            try:
                start.wait(timeout=10)
                for i in range(rounds):
                    name = f"w{worker}-{i}"
                    a.create_proxy(name, "127.0.0.1:0", NOWHERE_A)
                    b.create_proxy(name, "127.0.0.1:0", NOWHERE_B)
                    a.add_toxic(name, "latency", attributes={"latency": worker})
                    assert a.proxy(name).upstream == NOWHERE_A
                    assert b.proxy(name).upstream == NOWHERE_B
                    assert b.toxics(name) == []
                    a.delete_proxy(name)
                    assert b.proxy(name).name == name  # still there: the delete went to a
                    b.delete_proxy(name)
            except BaseException as exc:  # reported below, with the worker that saw it
                errors.append(exc)

        def meddle() -> None:
            while not done.is_set():
                APIConsumer.host, APIConsumer.port = "127.0.0.1", 9
                time.sleep(0.0005)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        meddler = threading.Thread(target=meddle)
        try:
            meddler.start()
            for thread in threads:
                thread.start()
            start.wait(timeout=10)
            for thread in threads:
                thread.join(timeout=120)
        finally:
            done.set()
            meddler.join(timeout=5)
            APIConsumer.host, APIConsumer.port = saved

        assert not errors, f"{len(errors)} worker(s) failed, first: {errors[0]!r}"
        assert not any(t.is_alive() for t in threads)
        assert a.proxies() == {}
        assert b.proxies() == {}
