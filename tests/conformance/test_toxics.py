"""What each toxic does to the bytes on a live TCP connection, measured with raw sockets.
Modelled on the real server's ``toxics/*_test.go``. Timings are checked within the margins of
:func:`~.wire.assert_duration` (plus jitter), which still fail a toxic that is not applied or is
applied twice."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from .http_api import Api
from .upstreams import Upstreams
from .wire import (
    Connect,
    End,
    assert_duration,
    assert_nothing_arrives,
    echo_round_trip,
    read_to_end,
    recv_exactly,
)

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

PROXY = "toxic"
ECHO_MESSAGE = b"hello world " + b"a" * 32 * 1024 + b"\n"  # the real latency tests' 32 KB line
BIG_PAYLOAD = b"hello world " * 40000  # 480 KB, as in the real bandwidth and slicer tests
# Upstreams that send wait for this first, so that data sent before the proxy has wired the
# connection (test_data_the_upstream_sends_first_reaches_the_client) cannot confuse these tests.
GO = b"go"
# A paced transfer of half a second accumulates scheduling delays on a busy machine; still far
# below what a shared (per-proxy) rate would add in the two-connection test (+240 ms).
BANDWIDTH_LATE_S = 0.08


def random_bytes(size: int, seed: int = 2120) -> bytes:
    return random.Random(seed).randbytes(size)


# latency


def _timed_echo(
    api: Api, upstreams: Upstreams, connect: Connect, toxics: list[dict[str, Any]]
) -> tuple[float, float]:
    """Echo the 32 KB message through a proxy carrying ``toxics``; return (upstream leg,
    downstream leg) in seconds: client send to upstream receipt, upstream receipt to client
    receipt."""
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    for toxic in toxics:
        api.add_toxic(PROXY, "latency", **toxic)
    client = connect(listen)
    peer_wait = 5.0
    start = time.monotonic()
    client.sendall(ECHO_MESSAGE)
    peer = echo.next_peer(peer_wait)
    at_upstream = peer.wait_for_bytes(len(ECHO_MESSAGE), peer_wait)
    assert recv_exactly(client, len(ECHO_MESSAGE), peer_wait) == ECHO_MESSAGE
    at_client = time.monotonic()
    assert peer.data == ECHO_MESSAGE
    return at_upstream - start, at_client - at_upstream


@pytest.mark.parametrize(
    ("toxics", "up_ms", "down_ms", "jitter_ms"),
    [
        pytest.param(
            [{"stream": "upstream", "attributes": {"latency": 100}}], 100, 0, 0, id="upstream"
        ),
        pytest.param(
            [{"stream": "downstream", "attributes": {"latency": 100}}], 0, 100, 0, id="downstream"
        ),
        pytest.param(
            [
                {"stream": "upstream", "attributes": {"latency": 100}},
                {"stream": "downstream", "attributes": {"latency": 150}},
            ],
            100,
            150,
            0,
            id="both-streams",
        ),
        pytest.param(
            [{"stream": "upstream", "attributes": {"latency": 100, "jitter": 20}}],
            100,
            0,
            20,
            id="upstream-with-jitter",
        ),
        pytest.param(
            [
                {"stream": "upstream", "attributes": {"latency": 0}},
                {"stream": "downstream", "attributes": {"latency": 0}},
            ],
            0,
            0,
            0,
            id="zero",
        ),
    ],
)
def test_latency_delays_each_stream_by_its_latency(
    api: Api,
    upstreams: Upstreams,
    connect: Connect,
    toxics: list[dict[str, Any]],
    up_ms: int,
    down_ms: int,
    jitter_ms: int,
) -> None:
    up, down = _timed_echo(api, upstreams, connect, toxics)
    assert_duration("client to upstream", up, up_ms / 1000, jitter=jitter_ms / 1000)
    assert_duration("upstream to client", down, down_ms / 1000)


def test_two_latency_toxics_on_one_stream_add_up(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    toxics = [
        {"name": f"latency_{i}", "stream": "upstream", "attributes": {"latency": 100}}
        for i in range(2)
    ]
    up, down = _timed_echo(api, upstreams, connect, toxics)
    assert_duration("client to upstream through two toxics", up, 0.200)
    assert_duration("upstream to client", down, 0.0)


def test_latency_never_lets_a_chunk_go_before_its_time(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    """The real server sleeps the whole latency after each chunk was read. Checked on every one
    of many small round trips, with no early margin: a proxy whose clock is coarse (whole ms, read
    once per turn of its loop) let some go up to a ms early (149.9 ms through 150 ms)."""
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    api.add_toxic(PROXY, "latency", stream="downstream", attributes={"latency": 20})
    client = connect(listen)
    took = [echo_round_trip(client, b"x%d" % i) for i in range(60)]
    assert min(took) >= 0.020, (
        f"{sum(t < 0.020 for t in took)} early, the earliest {min(took):.5f} s"
    )


# bandwidth


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_bandwidth_paces_the_stream_to_the_rate(
    api: Api, upstreams: Upstreams, connect: Connect, stream: str
) -> None:
    rate_kb_s = 1000
    expected = len(BIG_PAYLOAD) / (rate_kb_s * 1000)  # 0.48 s
    if stream == "upstream":
        sink = upstreams.sink()
        listen = api.create_proxy(PROXY, sink.address)["listen"]
        api.add_toxic(PROXY, "bandwidth", stream=stream, attributes={"rate": rate_kb_s})
        client = connect(listen)
        with ThreadPoolExecutor(1) as pool:
            start = time.monotonic()
            sending = pool.submit(client.sendall, BIG_PAYLOAD)
            peer = sink.next_peer()
            done = peer.wait_for_bytes(len(BIG_PAYLOAD), timeout=10)
            sending.result()
        assert peer.data == BIG_PAYLOAD
    else:
        sender = upstreams.sender(BIG_PAYLOAD, trigger=GO)
        listen = api.create_proxy(PROXY, sender.address)["listen"]
        api.add_toxic(PROXY, "bandwidth", stream=stream, attributes={"rate": rate_kb_s})
        start = time.monotonic()
        client = connect(listen)
        client.sendall(GO)
        assert recv_exactly(client, len(BIG_PAYLOAD), timeout=10) == BIG_PAYLOAD
        done = time.monotonic()
    assert_duration(
        f"480 KB {stream} at {rate_kb_s} KB/s", done - start, expected, late=BANDWIDTH_LATE_S
    )


def test_bandwidth_limit_applies_to_each_connection_separately(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    payload = BIG_PAYLOAD[: len(BIG_PAYLOAD) // 2]  # 240 KB each: 0.24 s alone, 0.48 s if shared
    sender = upstreams.sender(payload, trigger=GO)
    listen = api.create_proxy(PROXY, sender.address)["listen"]
    api.add_toxic(PROXY, "bandwidth", attributes={"rate": 1000})
    clients = [connect(listen), connect(listen)]
    start = time.monotonic()
    for client in clients:
        client.sendall(GO)
    with ThreadPoolExecutor(len(clients)) as pool:
        received = list(pool.map(lambda sock: recv_exactly(sock, len(payload), 10), clients))
    elapsed = time.monotonic() - start
    assert received == [payload, payload]
    assert_duration(
        "two 240 KB downloads in parallel at 1000 KB/s each", elapsed, 0.24, late=BANDWIDTH_LATE_S
    )


# slicer


def test_slicer_delivers_data_intact_in_pieces_of_about_the_average_size(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    sink = upstreams.sink()
    listen = api.create_proxy(PROXY, sink.address)["listen"]
    # delay (µs) between pieces keeps them apart on the wire, so the upstream's reads count them.
    attributes = {"average_size": 1024, "size_variation": 512, "delay": 1000}
    api.add_toxic(PROXY, "slicer", stream="upstream", attributes=attributes)
    client = connect(listen)
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(client.sendall, BIG_PAYLOAD)
        peer = sink.next_peer()
        peer.wait_for_bytes(len(BIG_PAYLOAD), timeout=20)
        sending.result()
    assert peer.data == BIG_PAYLOAD
    # About 480 pieces of 512..1536 bytes; unsliced, 480 KB takes a few dozen reads.
    assert 240 <= peer.recv_count <= 720, f"{peer.recv_count} pieces"


# limit_data


@pytest.mark.parametrize(
    ("writes", "closes"),
    [
        pytest.param([50], False, id="under"),
        pytest.param([100], True, id="at"),
        pytest.param([150], True, id="over"),
        pytest.param([60, 60], True, id="over-in-two-writes"),
    ],
)
def test_limit_data_passes_up_to_the_limit_then_closes(
    api: Api, upstreams: Upstreams, connect: Connect, writes: list[int], closes: bool
) -> None:
    limit = 100
    sink = upstreams.sink()
    listen = api.create_proxy(PROXY, sink.address)["listen"]
    api.add_toxic(PROXY, "limit_data", stream="upstream", attributes={"bytes": limit})
    client = connect(listen)
    payload = random_bytes(sum(writes))
    offset = 0
    for size in writes:
        client.sendall(payload[offset : offset + size])
        offset += size
        time.sleep(0.02)  # separate reads on the proxy side
    peer = sink.next_peer()
    expected = payload[:limit]
    peer.wait_for_bytes(len(expected) if closes else len(payload), timeout=5)
    if closes:
        assert peer.wait_for_end(timeout=2) is not None, "upstream connection was not closed"
        assert peer.data == expected
        assert read_to_end(client, 2.0)[1] in (End.EOF, End.RESET)
    else:
        assert_nothing_arrives(client, 0.2)
        assert not peer.ended
        assert peer.data == payload


def test_limit_data_downstream_truncates_what_the_client_receives(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    payload = random_bytes(150)
    sender = upstreams.sender(payload, trigger=GO)
    listen = api.create_proxy(PROXY, sender.address)["listen"]
    api.add_toxic(PROXY, "limit_data", stream="downstream", attributes={"bytes": 100})
    client = connect(listen)
    client.sendall(GO)
    data, end = read_to_end(client, 2.0)
    assert (data, end) == (payload[:100], End.EOF)


# slow_close


def test_slow_close_passes_data_and_delays_the_close(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    sender = upstreams.sender(b"goodbye", trigger=GO)
    listen = api.create_proxy(PROXY, sender.address)["listen"]
    api.add_toxic(PROXY, "slow_close", attributes={"delay": 300})
    start = time.monotonic()
    client = connect(listen)
    client.sendall(GO)
    assert recv_exactly(client, 7, timeout=2) == b"goodbye"
    assert_duration("data through slow_close", time.monotonic() - start, 0.0)
    data, end = read_to_end(client, 2.0)
    assert (data, end) == (b"", End.EOF)
    assert_duration("close after slow_close", time.monotonic() - start, 0.300)


# noop and toxicity


def test_noop_toxic_passes_data_unchanged_and_promptly(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    api.add_toxic(PROXY, "noop", stream="upstream")
    api.add_toxic(PROXY, "noop", stream="downstream")
    payload = random_bytes(256 * 1024)
    client = connect(listen)
    start = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(client.sendall, payload)
        assert recv_exactly(client, len(payload), timeout=5) == payload
        sending.result()
    assert time.monotonic() - start < 0.5


def test_toxicity_zero_never_applies_the_toxic(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    api.add_toxic(PROXY, "latency", toxicity=0.0, attributes={"latency": 300})
    times = [echo_round_trip(connect(listen)) for _ in range(5)]
    assert max(times) < 0.15, f"round trips: {times}"
    # The same toxic at toxicity 1 does apply, so it was the toxicity that kept it off.
    api.update_toxic(PROXY, "latency_downstream", toxicity=1.0)
    assert echo_round_trip(connect(listen)) >= 0.27


def test_toxicity_one_always_applies_the_toxic(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    api.add_toxic(PROXY, "latency", toxicity=1.0, attributes={"latency": 150})
    times = [echo_round_trip(connect(listen)) for _ in range(3)]
    for elapsed in times:
        assert_duration("round trip with toxicity 1", elapsed, 0.150)


# timeout


def test_timeout_toxic_drops_data_and_holds_the_connection_open(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    manual = upstreams.manual()
    listen = api.create_proxy(PROXY, manual.address)["listen"]
    client = connect(listen)
    server = manual.next_peer().sock
    client.sendall(b"before")
    assert recv_exactly(server, 6) == b"before"

    api.add_toxic(PROXY, "timeout", stream="upstream", attributes={"timeout": 0})
    client.sendall(b"swallowed")
    assert_nothing_arrives(server, 0.3)
    assert_nothing_arrives(client, 0.05)


def test_removing_timeout_toxic_closes_both_ends(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    manual = upstreams.manual()
    listen = api.create_proxy(PROXY, manual.address)["listen"]
    client = connect(listen)
    server = manual.next_peer().sock
    client.sendall(b"foobar")
    assert recv_exactly(server, 6) == b"foobar"
    server.sendall(b"foobar")
    assert recv_exactly(client, 6) == b"foobar"

    api.add_toxic(PROXY, "timeout", name="to_delete", stream="upstream")
    api.remove_toxic(PROXY, "to_delete")
    assert read_to_end(client, 1.0) == (b"", End.EOF)
    assert read_to_end(server, 1.0) == (b"", End.EOF)


def test_timeout_toxic_closes_the_connection_after_the_timeout(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    sink = upstreams.sink()
    listen = api.create_proxy(PROXY, sink.address)["listen"]
    api.add_toxic(PROXY, "timeout", stream="upstream", attributes={"timeout": 200})
    start = time.monotonic()
    client = connect(listen)
    client.sendall(b"swallowed")
    data, end = read_to_end(client, 2.0)
    assert (data, end) == (b"", End.EOF)
    assert_duration("close by the timeout toxic", time.monotonic() - start, 0.2)
    peer = sink.next_peer()
    assert peer.wait_for_end(1.0) is not None, "upstream connection was not closed"
    assert peer.data == b""


# reset_peer


@pytest.mark.parametrize(
    ("stream", "timeout_ms"),
    [("upstream", 0), ("upstream", 100), ("downstream", 100)],
)
def test_reset_peer_resets_the_client_connection_after_the_timeout(
    api: Api, upstreams: Upstreams, connect: Connect, stream: str, timeout_ms: int
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    api.add_toxic(PROXY, "reset_peer", stream=stream, attributes={"timeout": timeout_ms})
    client = connect(listen)
    start = time.monotonic()
    client.sendall(b"reset toxic payload\n")
    data, end = read_to_end(client, 2.0)
    assert (data, end) == (b"", End.RESET)
    assert_duration("reset", time.monotonic() - start, timeout_ms / 1000)
