"""A proxy's connections over its life: plain relaying, disable and enable, an unreachable
upstream, and toxics changed under a live connection. Modelled on the real server's
``proxy_test.go`` (``TestProxyToDownUpstream``) and ``toxics/toxic_test.go``
(``TestToxicAddRemove``)."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .http_api import Api
from .upstreams import Upstreams, refused_address
from .wire import (
    Connect,
    End,
    assert_duration,
    connection_refused,
    echo_round_trip,
    read_to_end,
    recv_exactly,
)

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

PROXY = "life"


def test_proxy_relays_bytes_unchanged_in_both_directions(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    payload = random.Random(1).randbytes(1024 * 1024)
    client = connect(listen)
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(client.sendall, payload)
        assert recv_exactly(client, len(payload), timeout=10) == payload
        sending.result()
    assert echo.next_peer().data == payload


def test_upstream_close_reaches_the_client_after_its_data(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    sender = upstreams.sender(b"last words", trigger=b"go")
    listen = api.create_proxy(PROXY, sender.address)["listen"]
    client = connect(listen)
    client.sendall(b"go")
    assert read_to_end(client, 2.0) == (b"last words", End.EOF)


@pytest.mark.parametrize(
    "greeting",
    [
        pytest.param(b"220 upstream ready\r\n", id="short"),
        pytest.param(random.Random(4).randbytes(480_000), id="480KB"),
    ],
)
def test_data_the_upstream_sends_first_reaches_the_client(
    api: Api, upstreams: Upstreams, connect: Connect, greeting: bytes
) -> None:
    # Server-first protocols (MySQL, SMTP) send as soon as the upstream accepts, possibly before
    # the proxy has finished wiring the connection; none of it may be lost.
    sender = upstreams.sender(greeting)
    listen = api.create_proxy(PROXY, sender.address)["listen"]
    for attempt in range(25):  # losing the head is a race, so give it many chances
        data, end = read_to_end(connect(listen), 5.0)
        assert (len(data), end) == (len(greeting), End.EOF), f"attempt {attempt + 1}"
        assert data == greeting


def test_client_close_reaches_the_upstream_after_its_data(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    sink = upstreams.sink()
    listen = api.create_proxy(PROXY, sink.address)["listen"]
    client = connect(listen)
    client.sendall(b"last words")
    client.close()
    peer = sink.next_peer()
    assert peer.wait_for_end(2.0) is not None, "upstream connection was not closed"
    assert peer.data == b"last words"


@pytest.mark.parametrize(
    ("type_", "attributes"),
    [
        # Each holds the 480 KB for about 100 ms: long enough for the upstream's close to
        # overtake the data inside the proxy.
        pytest.param("latency", {"latency": 100}, id="latency"),
        pytest.param("bandwidth", {"rate": 4800}, id="bandwidth"),
        pytest.param("slicer", {"average_size": 4096, "delay": 1000}, id="slicer"),
    ],
)
def test_upstream_close_reaches_the_client_only_after_data_held_by_a_toxic(
    api: Api, upstreams: Upstreams, connect: Connect, type_: str, attributes: dict[str, int]
) -> None:
    payload = random.Random(3).randbytes(480_000)
    # The upstream sends only once the client's "go" reached it, so this test is about the close
    # and not about data sent before the connection is wired (the test above).
    sender = upstreams.sender(payload, trigger=b"go")
    listen = api.create_proxy(PROXY, sender.address)["listen"]
    api.add_toxic(PROXY, type_, stream="downstream", attributes=attributes)
    for attempt in range(3):  # losing the tail is a race, so give it more than one chance
        client = connect(listen)
        start = time.monotonic()
        client.sendall(b"go")
        data, end = read_to_end(client, 5.0)
        assert (len(data), end) == (len(payload), End.EOF), f"attempt {attempt + 1}"
        assert data == payload
        assert time.monotonic() - start >= 0.08, "the toxic did not hold the data"


def test_unreachable_upstream_closes_the_client_connection_at_once(
    api: Api, connect: Connect
) -> None:
    listen = api.create_proxy(PROXY, refused_address())["listen"]
    start = time.monotonic()
    client = connect(listen)
    assert read_to_end(client, 2.0) == (b"", End.EOF)
    assert time.monotonic() - start < 0.5
    # The proxy itself stays up for the next client.
    assert read_to_end(connect(listen), 2.0) == (b"", End.EOF)


def test_disabling_a_proxy_drops_live_connections_and_closes_its_listener(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    client = connect(listen)
    client.sendall(b"ping")
    assert recv_exactly(client, 4) == b"ping"
    peer = echo.next_peer()

    assert api.update_proxy(PROXY, enabled=False)["enabled"] is False
    data, end = read_to_end(client, 2.0)
    assert (data, end in (End.EOF, End.RESET)) == (b"", True)
    assert peer.wait_for_end(2.0) is not None, "upstream connection was not closed"
    assert connection_refused(listen)


def test_reenabled_proxy_listens_again_on_the_same_address_with_its_toxics(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    toxic = api.add_toxic(PROXY, "latency", stream="downstream", attributes={"latency": 150})
    api.update_proxy(PROXY, enabled=False)
    assert api.toxics(PROXY) == [toxic]

    body = api.update_proxy(PROXY, enabled=True)
    assert (body["enabled"], body["listen"]) == (True, listen)
    assert api.toxics(PROXY) == [toxic]
    elapsed = echo_round_trip(connect(listen))
    assert_duration("round trip after re-enable", elapsed, 0.15)


def test_toxic_added_to_a_live_connection_applies_to_it(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    client = connect(listen)
    client.sendall(b"ping")
    assert recv_exactly(client, 4) == b"ping"

    api.add_toxic(PROXY, "latency", stream="upstream", attributes={"latency": 150})
    assert_duration("round trip on the live link", echo_round_trip(client), 0.15)
    api.remove_toxic(PROXY, "latency_upstream")
    assert_duration("round trip after removal", echo_round_trip(client), 0.0)


def test_toxics_added_and_removed_on_a_live_connection_lose_no_data(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    chunk_size, chunks = 16 * 1024, 128  # 2 MB, paced to last about a second
    payload = random.Random(7).randbytes(chunk_size * chunks)
    client = connect(listen)
    sending_done = threading.Event()

    def send_paced() -> None:
        try:
            for i in range(chunks):
                client.sendall(payload[i * chunk_size : (i + 1) * chunk_size])
                time.sleep(0.008)
        finally:
            sending_done.set()

    toggles = 0
    with ThreadPoolExecutor(2) as pool:
        sending = pool.submit(send_paced)
        receiving = pool.submit(recv_exactly, client, len(payload), 30.0)
        # Change the chain on both streams over and over while bytes flow through it.
        while not sending_done.is_set():
            api.add_toxic(PROXY, "latency", stream="upstream", attributes={"latency": 5})
            api.add_toxic(PROXY, "latency", stream="downstream", attributes={"latency": 5})
            api.add_toxic(PROXY, "noop", stream="downstream")
            api.remove_toxic(PROXY, "latency_upstream")
            api.remove_toxic(PROXY, "latency_downstream")
            api.remove_toxic(PROXY, "noop_downstream")
            toggles += 1
        sending.result()
        echoed = receiving.result()
    assert toggles >= 3, f"only {toggles} add/remove rounds happened while data was flowing"
    assert echo.next_peer().data == payload, "upstream did not receive every byte in order"
    assert echoed == payload, "client did not receive every byte back in order"
