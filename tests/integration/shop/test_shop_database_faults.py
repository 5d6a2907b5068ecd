"""The database down or slow: fast 503 + Retry-After, the breaker opens, the shop heals by itself.

The shop reaches PostgreSQL through a FaultyLink (a small TCP forwarder) that the test cuts or
slows down, as Toxiproxy does in the full stack.
"""

from __future__ import annotations

import time

import httpx
import pytest
from shop_support import FaultyLink, ShopProcess, StartShop, free_port

from harness.stack.postgres import PostgresInfo

pytestmark = pytest.mark.integration

FAST_S = 0.25


def timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def wait_until_served(shop: ShopProcess, path: str = "/products/1", within_s: float = 10) -> float:
    """Poll until ``path`` answers 200; return how long it took."""
    started = time.monotonic()
    with shop.client() as client:
        while client.get(path).status_code != 200:
            assert time.monotonic() - started < within_s, shop.log_tail()
            time.sleep(0.05)
    return time.monotonic() - started


def breaker(shop: ShopProcess) -> dict[str, object]:
    state = shop.stats()["breaker"]
    assert isinstance(state, dict)
    return state


def test_database_down_gives_fast_503s_opens_the_breaker_and_heals(
    start_shop: StartShop, postgres: PostgresInfo, db_link: FaultyLink
) -> None:
    shop = start_shop(
        database_url=db_link.dsn(postgres),
        SHOP_BREAKER_FAILURES="3",
        SHOP_BREAKER_COOLDOWN_MS="500",
        SHOP_DB_RETRY_AFTER_S="7",
    )
    wait_until_served(shop)
    db_link.cut()
    with shop.client() as client:
        for _ in range(6):
            response, elapsed = timed_get(client, "/products/1")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "7"
            assert elapsed < FAST_S, f"took {elapsed:.3f}s"
        assert breaker(shop)["state"] == "open"
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 3
        while client.get("/readyz").status_code != 503:
            assert time.monotonic() < deadline, "readyz kept saying ready with the database down"
            time.sleep(0.05)

    db_link.restore()
    healed_in = wait_until_served(shop)
    assert healed_in < 3, f"healed in {healed_in:.1f}s"
    assert breaker(shop)["state"] == "closed"
    assert wait_until_served(shop, "/readyz") < 2


def test_slow_database_gives_503_within_the_timeout_and_the_open_breaker_skips_it(
    start_shop: StartShop, postgres: PostgresInfo, db_link: FaultyLink
) -> None:
    shop = start_shop(
        database_url=db_link.dsn(postgres),
        SHOP_DB_TIMEOUT_MS="300",
        SHOP_BREAKER_FAILURES="3",
        SHOP_BREAKER_COOLDOWN_MS="1000",
    )
    wait_until_served(shop)
    db_link.latency_s = 1.0
    with shop.client() as client:
        for _ in range(3):
            response, elapsed = timed_get(client, "/products/2")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "2"
            # Bounded by the timeout (plus scheduling), far below the link's one second.
            assert 0.25 < elapsed < 0.9, f"took {elapsed:.3f}s"
        assert breaker(shop)["state"] == "open"
        # Open: refused without a database round trip, so much faster than the timeout.
        response, elapsed = timed_get(client, "/products/2")
        assert response.status_code == 503
        assert elapsed < 0.15, f"took {elapsed:.3f}s"

    db_link.latency_s = 0.0
    assert wait_until_served(shop, "/products/2") < 3
    assert breaker(shop)["state"] == "closed"


def test_shop_starts_without_a_database_and_heals_when_it_appears(
    start_shop: StartShop, postgres: PostgresInfo, db_link: FaultyLink
) -> None:
    db_link.cut()  # nothing listens on the shop's database port
    shop = start_shop(database_url=db_link.dsn(postgres), SHOP_BREAKER_COOLDOWN_MS="300")
    with shop.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        response, elapsed = timed_get(client, "/products")
        assert response.status_code == 503
        assert "retry-after" in response.headers
        assert elapsed < FAST_S
        created = client.post("/carts")
        assert created.status_code == 503

    db_link.restore()
    assert wait_until_served(shop, "/products") < 3
    assert wait_until_served(shop, "/readyz") < 2
    with shop.client() as client:
        assert client.post("/carts").status_code == 201


def test_shop_pointed_at_a_closed_port_never_hangs_or_500s(start_shop: StartShop) -> None:
    shop = start_shop(database_url=f"postgresql://shop:shop@127.0.0.1:{free_port()}/shop")
    with shop.client() as client:
        for path in ("/products", "/products/1", "/readyz"):
            response, elapsed = timed_get(client, path)
            assert response.status_code == 503, path
            assert "retry-after" in response.headers
            assert elapsed < FAST_S
        checkout = client.post(
            "/checkout",
            json={"cart_id": "00000000-0000-0000-0000-000000000001"},
            headers={"Idempotency-Key": "k"},
        )
        assert checkout.status_code == 503
