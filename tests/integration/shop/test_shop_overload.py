"""Load shedding: past SHOP_MAX_INFLIGHT the shop answers 503 + Retry-After at once.

Requests are held "in flight" by sending their headers and only part of the body: the handler is
then waiting for the rest, as a slow client or a slow dependency would keep it.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from shop_support import ShopProcess, StartShop

pytestmark = pytest.mark.integration

_BODY = b'{"cart_id": "00000000-0000-0000-0000-000000000000"}'


@contextmanager
def held_requests(shop: ShopProcess, count: int) -> Iterator[list[socket.socket]]:
    """``count`` checkouts stuck mid-body; on exit their bodies are completed and answered."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", shop.port), timeout=10)
            sock.sendall(
                b"POST /checkout HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
                b"Idempotency-Key: held-" + uuid.uuid4().hex.encode() + b"\r\n"
                b"Content-Length: %d\r\n\r\n" % len(_BODY) + _BODY[:10]
            )
            sockets.append(sock)
        wait_for_inflight(shop, count)
        yield sockets
        for sock in sockets:
            sock.sendall(_BODY[10:])
        for sock in sockets:
            status_line = sock.recv(4096).split(b"\r\n", 1)[0]
            # The held requests were served normally: the cart does not exist.
            assert status_line == b"HTTP/1.1 404 Not Found", status_line
    finally:
        for sock in sockets:
            sock.close()


def wait_for_inflight(shop: ShopProcess, count: int) -> None:
    deadline = time.monotonic() + 5
    while shop.stats()["inflight"] != count:
        assert time.monotonic() < deadline, f"in flight never reached {count}: {shop.stats()}"
        time.sleep(0.02)


def test_requests_past_the_inflight_limit_get_a_fast_503_with_retry_after(
    start_shop: StartShop,
) -> None:
    shop = start_shop(SHOP_MAX_INFLIGHT="3", SHOP_SHED_RETRY_AFTER_S="4")
    with held_requests(shop, 3), shop.client() as client:
        started = time.monotonic()
        response = client.get("/products")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["retry-after"] == "4"
        assert response.headers["x-shop-instance"] == shop.instance
        assert elapsed < 0.2, f"shedding took {elapsed:.3f}s"
        # The load balancer's probes and the operator's stats are never shed.
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
    stats = shop.stats()
    assert stats["shed_total"] == 1
    assert stats["inflight"] == 0
    with shop.client() as client:
        assert client.get("/products").status_code == 200


def test_load_shedding_off_lets_requests_past_the_limit(start_shop: StartShop) -> None:
    shop = start_shop(SHOP_MAX_INFLIGHT="2", SHOP_LOAD_SHEDDING="off")
    with held_requests(shop, 4), shop.client() as client:
        assert client.get("/products").status_code == 200
    assert shop.stats()["shed_total"] == 0


def test_a_concurrent_burst_gets_only_200s_and_503s_with_retry_after(
    start_shop: StartShop,
) -> None:
    shop = start_shop(SHOP_MAX_INFLIGHT="4", SHOP_DB_POOL_SIZE="2")

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=shop.url, timeout=10, limits=limits) as client:
            return await asyncio.gather(*(client.get("/products") for _ in range(200)))

    responses = asyncio.run(burst())
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0
    assert all("retry-after" in r.headers for r in responses if r.status_code == 503)
