"""Shopping and checkout against a real PostgreSQL: idempotency under concurrent retries,
and validation that answers 4xx (never 5xx)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from shop_support import ShopProcess, StartShop

from harness.stack.postgres import PostgresInfo

pytestmark = pytest.mark.integration


async def _fetchval(info: PostgresInfo, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(info.dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def fetchval(info: PostgresInfo, query: str, *args: Any) -> Any:
    return asyncio.run(_fetchval(info, query, *args))


def new_cart(client: httpx.Client, *items: tuple[int, int]) -> str:
    created = client.post("/carts")
    assert created.status_code == 201
    cart_id: str = created.json()["cart_id"]
    for product_id, quantity in items:
        added = client.post(
            f"/carts/{cart_id}/items", json={"product_id": product_id, "quantity": quantity}
        )
        assert added.status_code == 200, added.text
    return cart_id


def test_shopping_flow_creates_an_order_and_takes_stock(shop: ShopProcess) -> None:
    with shop.client() as client:
        products = client.get("/products")
        assert products.status_code == 200
        assert len(products.json()) == 20
        assert products.headers["x-shop-instance"] == shop.instance
        stock_before = client.get("/products/4").json()["stock"]

        cart_id = new_cart(client, (4, 2), (7, 1), (4, 1))
        cart = client.get(f"/carts/{cart_id}").json()
        assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(4, 3), (7, 1)]
        assert cart["total_cents"] == 3 * 1500 + 500

        placed = client.post(
            "/checkout", json={"cart_id": cart_id}, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["total_cents"] == 3 * 1500 + 500
        assert client.get(f"/orders/{order['order_id']}").json() == order
        assert client.get("/products/4").json()["stock"] == stock_before - 3
        assert client.get(f"/carts/{cart_id}").json()["status"] == "checked_out"


def test_concurrent_retries_of_one_key_create_exactly_one_order(
    start_shop: StartShop, postgres: PostgresInfo
) -> None:
    # Two instances, as behind the load balancer: a client's retries may land on either.
    shops = [start_shop(SHOP_DB_TIMEOUT_MS="5000"), start_shop(SHOP_DB_TIMEOUT_MS="5000")]
    with shops[0].client() as client:
        cart_id = new_cart(client, (1, 2), (5, 1))
    stock_before = fetchval(postgres, "SELECT stock FROM products WHERE id = 1")
    key = f"retry-{uuid.uuid4()}"

    async def attempt(i: int) -> httpx.Response:
        async with httpx.AsyncClient(base_url=shops[i % 2].url, timeout=10) as client:
            return await client.post(
                "/checkout", json={"cart_id": cart_id}, headers={"Idempotency-Key": key}
            )

    async def storm() -> list[httpx.Response]:
        return await asyncio.gather(*(attempt(i) for i in range(20)))

    responses = asyncio.run(storm())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert fetchval(postgres, "SELECT count(*) FROM orders WHERE idempotency_key = $1", key) == 1
    assert fetchval(postgres, "SELECT count(*) FROM orders WHERE cart_id = $1", uuid.UUID(cart_id))
    assert fetchval(postgres, "SELECT stock FROM products WHERE id = 1") == stock_before - 2


def test_concurrent_checkouts_of_one_cart_with_different_keys_create_one_order(
    start_shop: StartShop, postgres: PostgresInfo
) -> None:
    shop = start_shop(SHOP_DB_TIMEOUT_MS="5000")
    with shop.client() as client:
        cart_id = new_cart(client, (2, 1))

    async def attempt(key: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=shop.url, timeout=10) as client:
            return await client.post(
                "/checkout", json={"cart_id": cart_id}, headers={"Idempotency-Key": key}
            )

    async def storm() -> list[httpx.Response]:
        return await asyncio.gather(*(attempt(f"k-{uuid.uuid4()}") for _ in range(10)))

    statuses = sorted(r.status_code for r in asyncio.run(storm()))
    assert statuses == [201] + [409] * 9
    count = "SELECT count(*) FROM orders WHERE cart_id = $1"
    assert fetchval(postgres, count, uuid.UUID(cart_id)) == 1


def test_a_key_reused_for_another_cart_is_refused(start_shop: StartShop) -> None:
    shop = start_shop()
    key = f"reuse-{uuid.uuid4()}"
    with shop.client() as client:
        first = client.post(
            "/checkout",
            json={"cart_id": new_cart(client, (3, 1))},
            headers={"Idempotency-Key": key},
        )
        assert first.status_code == 201
        other = client.post(
            "/checkout",
            json={"cart_id": new_cart(client, (3, 1))},
            headers={"Idempotency-Key": key},
        )
        assert other.status_code == 422
        assert "another cart" in other.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "expected"),
    [
        ("GET", "/products/999", None, {}, 404),
        ("GET", "/products/0", None, {}, 422),
        ("GET", "/products/99999999999", None, {}, 422),
        ("GET", "/carts/not-a-uuid", None, {}, 422),
        ("GET", f"/carts/{uuid.UUID(int=0)}", None, {}, 404),
        ("GET", f"/orders/{uuid.UUID(int=0)}", None, {}, 404),
        ("POST", "/carts/{cart}/items", {"product_id": 999, "quantity": 1}, {}, 404),
        ("POST", "/carts/{cart}/items", {"product_id": 1, "quantity": 0}, {}, 422),
        ("POST", "/carts/{cart}/items", {"product_id": 1, "quantity": 5000}, {}, 422),
        ("POST", "/carts/{cart}/items", {"product_id": "1", "quantity": 1}, {}, 422),
        ("POST", "/carts/{cart}/items", {"product_id": 1}, {}, 422),
        ("POST", f"/carts/{uuid.UUID(int=0)}/items", {"product_id": 1, "quantity": 1}, {}, 404),
        ("POST", "/checkout", {"cart_id": "{cart}"}, {}, 422),  # no Idempotency-Key
        ("POST", "/checkout", {"cart_id": "{cart}"}, {"Idempotency-Key": "has space"}, 422),
        ("POST", "/checkout", {"cart_id": "{cart}"}, {"Idempotency-Key": "x" * 256}, 422),
        ("POST", "/checkout", {"cart_id": "{cart}"}, {"Idempotency-Key": "empty-cart"}, 409),
        ("POST", "/checkout", {"cart_id": str(uuid.UUID(int=0))}, {"Idempotency-Key": "k"}, 404),
        ("POST", "/checkout", {"cart": "x"}, {"Idempotency-Key": "k"}, 422),
    ],
)
def test_bad_requests_get_a_4xx(
    shop: ShopProcess,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    expected: int,
) -> None:
    with shop.client() as client:
        cart_id = new_cart(client)  # empty
        if body is not None:
            body = {
                k: v.replace("{cart}", cart_id) if isinstance(v, str) else v
                for k, v in body.items()
            }
        if headers.get("Idempotency-Key") == "empty-cart":
            headers = {"Idempotency-Key": f"empty-{uuid.uuid4()}"}
        response = client.request(
            method, path.replace("{cart}", cart_id), json=body, headers=headers
        )
    assert response.status_code == expected, response.text


def test_items_cannot_be_added_to_a_checked_out_cart(shop: ShopProcess) -> None:
    with shop.client() as client:
        cart_id = new_cart(client, (6, 1))
        placed = client.post(
            "/checkout", json={"cart_id": cart_id}, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert placed.status_code == 201
        late = client.post(f"/carts/{cart_id}/items", json={"product_id": 6, "quantity": 1})
        assert late.status_code == 409
