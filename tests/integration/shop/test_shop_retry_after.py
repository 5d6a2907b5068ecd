"""SHOP_RETRY_AFTER=off: the deliberately bad shop whose 503s carry no Retry-After, so the
harness can show what its verdicts say about such a service."""

from __future__ import annotations

import socket
import time

import pytest
from shop_support import StartShop, free_port

pytestmark = pytest.mark.integration


def test_retry_after_off_removes_the_header_from_database_503s(start_shop: StartShop) -> None:
    closed = f"postgresql://shop:shop@127.0.0.1:{free_port()}/shop"
    shop = start_shop(database_url=closed, SHOP_RETRY_AFTER="off")
    with shop.client() as client:
        for path in ("/products", "/readyz"):
            response = client.get(path)
            assert response.status_code == 503
            assert "retry-after" not in response.headers


def test_retry_after_off_removes_the_header_from_shedding_503s(start_shop: StartShop) -> None:
    shop = start_shop(SHOP_MAX_INFLIGHT="1", SHOP_RETRY_AFTER="off")
    # One checkout stuck mid-body fills the single in-flight slot.
    with socket.create_connection(("127.0.0.1", shop.port), timeout=10) as held:
        held.sendall(
            b"POST /checkout HTTP/1.1\r\nHost: shop\r\nIdempotency-Key: k\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        deadline = time.monotonic() + 5
        while shop.stats()["inflight"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with shop.client() as client:
            response = client.get("/products")
        assert response.status_code == 503
        assert "retry-after" not in response.headers


def test_retry_after_on_is_the_default(start_shop: StartShop) -> None:
    closed = f"postgresql://shop:shop@127.0.0.1:{free_port()}/shop"
    shop = start_shop(database_url=closed)
    with shop.client() as client:
        assert client.get("/products").headers["retry-after"] == "2"
