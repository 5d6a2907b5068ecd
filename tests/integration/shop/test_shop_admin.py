"""The admin API: shared maintenance mode across instances, stats, and token checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import pytest
from shop_support import ADMIN_TOKEN, ShopProcess, StartShop

from harness.stack.postgres import PostgresInfo

pytestmark = pytest.mark.integration


@pytest.fixture
def maintenance_reset(postgres: PostgresInfo) -> Iterator[None]:
    """Maintenance is shared through the database: never leave it on for the next test."""
    yield

    async def reset() -> None:
        conn = await asyncpg.connect(postgres.dsn)
        try:
            await conn.execute("UPDATE maintenance SET enabled = false")
        finally:
            await conn.close()

    asyncio.run(reset())


def wait_for_status(shop: ShopProcess, path: str, status: int, within_s: float) -> float:
    started = time.monotonic()
    with shop.client() as client:
        while client.get(path).status_code != status:
            assert time.monotonic() - started < within_s, f"{shop.instance} {path} != {status}"
            time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.usefixtures("maintenance_reset")
def test_maintenance_through_one_instance_reaches_every_instance_within_a_second(
    start_shop: StartShop,
) -> None:
    one, two = start_shop(), start_shop()
    auth = one.admin_headers()
    for shop in (one, two):
        wait_for_status(shop, "/readyz", 200, within_s=3)

    with one.client() as client:
        switched = client.post("/admin/maintenance", json={"enabled": True}, headers=auth)
        assert switched.status_code == 200
        assert switched.json() == {"enabled": True, "instance": one.instance}
        # The instance that took the call applies it at once.
        products = client.get("/products")
        assert products.status_code == 503
        assert products.headers["retry-after"] == "30"
    assert wait_for_status(two, "/products", 503, within_s=1.0) < 1.0
    for shop in (one, two):
        with shop.client() as client:
            assert client.get("/readyz").status_code == 503  # the load balancer sees it
            assert client.get("/healthz").status_code == 200  # alive all the same
            refused = client.post("/carts")
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "30"
            assert refused.headers["x-shop-instance"] == shop.instance
        assert shop.stats()["maintenance"] is True

    # Switch it off through the other instance: the admin API works during maintenance.
    with two.client() as client:
        switched = client.post("/admin/maintenance", json={"enabled": False}, headers=auth)
        assert switched.status_code == 200
    assert wait_for_status(one, "/products", 200, within_s=1.0) < 1.0
    for shop in (one, two):
        wait_for_status(shop, "/readyz", 200, within_s=1.0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
    ],
    ids=["missing", "wrong", "not-bearer", "no-scheme"],
)
def test_admin_without_the_right_token_is_401(shop: ShopProcess, headers: dict[str, str]) -> None:
    with shop.client() as client:
        stats = client.get("/admin/stats", headers=headers)
        switch = client.post("/admin/maintenance", json={"enabled": True}, headers=headers)
        # Even with a bad body the token is checked first.
        bad_body = client.post("/admin/maintenance", json={"on": 1}, headers=headers)
        assert client.get("/products").status_code == 200  # and nothing was switched
    for response in (stats, switch, bad_body):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_admin_without_a_configured_token_is_disabled(start_shop: StartShop) -> None:
    shop = start_shop(SHOP_ADMIN_TOKEN="")
    with shop.client() as client:
        for headers in ({}, {"Authorization": "Bearer anything"}):
            assert client.get("/admin/stats", headers=headers).status_code == 403
            switch = client.post("/admin/maintenance", json={"enabled": True}, headers=headers)
            assert switch.status_code == 403


def test_stats_count_requests_by_status(start_shop: StartShop) -> None:
    shop = start_shop()
    with shop.client() as client:
        client.get("/products")
        client.get("/products/999")
        client.get("/products/abc")
    stats = shop.stats()
    assert stats["instance"] == shop.instance
    assert stats["breaker"] == {"state": "closed", "consecutive_failures": 0, "opened_total": 0}
    by_status = stats["requests_by_status"]
    assert isinstance(by_status, dict)
    assert by_status["404"] == 1
    assert by_status["422"] == 1
    assert by_status["200"] >= 2  # /healthz at start, /products
    assert stats["inflight"] == 0


@pytest.mark.usefixtures("maintenance_reset")
def test_maintenance_switch_rejects_a_malformed_body(shop: ShopProcess) -> None:
    with shop.client() as client:
        for body in ({}, {"enabled": "yes"}, {"enabled": 1}, {"enabled": True, "extra": 1}):
            response = client.post("/admin/maintenance", json=body, headers=shop.admin_headers())
            assert response.status_code == 422, body
        assert client.get("/products").status_code == 200
