"""The shop's public API: products, carts, checkout, orders, and the health endpoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from shopapp.config import Settings
from shopapp.db import Database
from shopapp.maintenance import Maintenance
from shopapp.middleware import Stats, unavailable
from shopapp.models import (
    INT4_MAX,
    MAX_QUANTITY,
    AddItem,
    Cart,
    CartCreated,
    Checkout,
    Order,
    Problem,
    Product,
)


@dataclass(frozen=True)
class Shop:
    """Everything a handler needs, wired once in :func:`shopapp.app.create_app`."""

    settings: Settings
    db: Database
    maintenance: Maintenance
    stats: Stats


def get_shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


ShopDep = Annotated[Shop, Depends(get_shop)]
ProductIdPath = Annotated[int, Path(ge=1, le=INT4_MAX)]
# Printable ASCII without spaces: what clients generate (UUIDs, ULIDs), and safe to store as text.
IdempotencyKey = Annotated[str, Header(min_length=1, max_length=255, pattern=r"^[!-~]+$")]

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "Overloaded, in maintenance or database unavailable"}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": Problem}}

router = APIRouter()


# --- health ---------------------------------------------------------------------------------------


@router.get("/healthz", responses=_UNAVAILABLE)
async def healthz(shop: ShopDep) -> dict[str, str]:
    """Alive: the process answers. Never touches the database."""
    return {"status": "ok", "instance": shop.settings.instance}


@router.get("/readyz", response_model=None, responses=_UNAVAILABLE)
async def readyz(shop: ShopDep) -> dict[str, str] | JSONResponse:
    """Ready for traffic: not in maintenance, and the database answered the last poll.

    Deliberately independent of the circuit breaker: an open breaker only heals through traffic,
    and a load balancer sends none to an instance that is not ready.
    """
    settings = shop.settings
    if shop.maintenance.enabled:
        return unavailable(settings, "down for maintenance", settings.maintenance_retry_after_s)
    if not shop.maintenance.database_answers():
        return unavailable(settings, "database unavailable", settings.db_retry_after_s)
    return {"status": "ready", "instance": settings.instance}


# --- products -----------------------------------------------------------------------------------

_PRODUCT_COLUMNS = "id, sku, name, price_cents, stock"


@router.get("/products", responses=_UNAVAILABLE)
async def list_products(shop: ShopDep) -> list[Product]:
    async with shop.db.connection() as conn:
        rows = await conn.fetch(f"SELECT {_PRODUCT_COLUMNS} FROM products ORDER BY id")  # noqa: S608
    return [Product(**dict(row)) for row in rows]


@router.get("/products/{product_id}", responses=_UNAVAILABLE | _NOT_FOUND)
async def get_product(shop: ShopDep, product_id: ProductIdPath) -> Product:
    async with shop.db.connection() as conn:
        row = await conn.fetchrow(
            f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE id = $1",  # noqa: S608
            product_id,
        )
    if row is None:
        raise HTTPException(404, "product not found")
    return Product(**dict(row))


# --- carts --------------------------------------------------------------------------------------


@router.post("/carts", status_code=201, responses=_UNAVAILABLE)
async def create_cart(shop: ShopDep) -> CartCreated:
    async with shop.db.connection() as conn:
        cart_id = await conn.fetchval("INSERT INTO carts DEFAULT VALUES RETURNING id")
    return CartCreated(cart_id=cart_id)


async def _load_cart(conn: asyncpg.Connection, cart_id: uuid.UUID) -> Cart:
    status = await conn.fetchval("SELECT status FROM carts WHERE id = $1", cart_id)
    if status is None:
        raise HTTPException(404, "cart not found")
    rows = await conn.fetch(
        """
        SELECT ci.product_id, p.name, ci.quantity, p.price_cents AS unit_price_cents
        FROM cart_items ci JOIN products p ON p.id = ci.product_id
        WHERE ci.cart_id = $1 ORDER BY ci.product_id
        """,
        cart_id,
    )
    items = [dict(row) for row in rows]
    total = sum(item["quantity"] * item["unit_price_cents"] for item in items)
    return Cart.model_validate(
        {"cart_id": cart_id, "status": status, "items": items, "total_cents": total}
    )


@router.get("/carts/{cart_id}", responses=_UNAVAILABLE | _NOT_FOUND)
async def get_cart(shop: ShopDep, cart_id: uuid.UUID) -> Cart:
    async with shop.db.connection() as conn:
        return await _load_cart(conn, cart_id)


@router.post("/carts/{cart_id}/items", responses=_UNAVAILABLE | _NOT_FOUND | _CONFLICT)
async def add_item(shop: ShopDep, cart_id: uuid.UUID, item: AddItem) -> Cart:
    """Add ``quantity`` of a product (added to what the cart already holds)."""
    async with shop.db.connection() as conn, conn.transaction():
        # The row lock orders this against a concurrent checkout of the same cart.
        status = await conn.fetchval("SELECT status FROM carts WHERE id = $1 FOR UPDATE", cart_id)
        if status is None:
            raise HTTPException(404, "cart not found")
        if status != "open":
            raise HTTPException(409, "cart already checked out")
        try:
            await conn.execute(
                """
                INSERT INTO cart_items (cart_id, product_id, quantity) VALUES ($1, $2, $3)
                ON CONFLICT (cart_id, product_id)
                    DO UPDATE SET quantity = cart_items.quantity + EXCLUDED.quantity
                """,
                cart_id,
                item.product_id,
                item.quantity,
            )
        except asyncpg.ForeignKeyViolationError:
            raise HTTPException(404, "product not found") from None
        except asyncpg.CheckViolationError:
            raise HTTPException(409, f"at most {MAX_QUANTITY} of one product per cart") from None
        return await _load_cart(conn, cart_id)


# --- checkout and orders ------------------------------------------------------------------------


async def _load_order(conn: asyncpg.Connection, *, where: str, value: object) -> Order | None:
    row = await conn.fetchrow(
        f"SELECT id, cart_id, status, total_cents FROM orders WHERE {where} = $1",  # noqa: S608
        value,
    )
    if row is None:
        return None
    items = await conn.fetch(
        "SELECT product_id, quantity, unit_price_cents FROM order_items"
        " WHERE order_id = $1 ORDER BY product_id",
        row["id"],
    )
    return Order.model_validate(
        {
            "order_id": row["id"],
            "cart_id": row["cart_id"],
            "status": row["status"],
            "total_cents": row["total_cents"],
            "items": [dict(item) for item in items],
        }
    )


class _Refused(Exception):
    """Roll the checkout back and answer ``status``."""

    def __init__(self, status: int, detail: str, *, key_race: bool = False) -> None:
        self.status = status
        self.detail = detail
        self.key_race = key_race  # the cart's unique index: maybe this key's own order


_CHECKOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Order, "description": "A retry: the order this key already created"},
    201: {"model": Order, "description": "The order, created now"},
    422: {"description": "Invalid body, or the key was used for another cart"},
    **_UNAVAILABLE,
    **_NOT_FOUND,
    **_CONFLICT,
}


@router.post("/checkout", status_code=201, responses=_CHECKOUT_RESPONSES)
async def checkout(shop: ShopDep, body: Checkout, idempotency_key: IdempotencyKey) -> JSONResponse:
    """Turn a cart into an order. The ``Idempotency-Key`` makes retries safe: the first request
    creates the order (201), every later one with the same key gets that same order (200)."""
    if not shop.settings.idempotency:
        # SHOP_IDEMPOTENCY=off, a deliberately bad shop: the key is ignored (every request gets
        # its own), so a retry after a lost answer is told "cart already checked out" (409)
        # although its order was placed: what the harness's integrity checks must catch.
        idempotency_key = f"ignored-{uuid.uuid4()}"
    cart_taken = False
    async with shop.db.connection() as conn:
        try:
            async with conn.transaction():
                order = await _place_order(conn, body.cart_id, idempotency_key)
        except _Refused as refused:
            if not refused.key_race:
                raise HTTPException(refused.status, refused.detail) from None
            # Concurrent requests with one key can also meet on the cart's unique index, which
            # ON CONFLICT does not arbitrate: the other request placed this key's order.
            order, cart_taken = None, True
        if order is not None:
            return JSONResponse(order.model_dump(mode="json"), status_code=201)
        # The key was taken: by an earlier request, or by a concurrent one we waited for.
        existing = await _load_order(conn, where="idempotency_key", value=idempotency_key)
    if existing is None and cart_taken:  # by an order of another key
        raise HTTPException(409, "cart already checked out")
    if existing is None:  # pragma: no cover - the unique index says it exists
        raise HTTPException(409, "checkout in progress for this key, retry")
    if existing.cart_id != body.cart_id:
        raise HTTPException(422, "this Idempotency-Key was used for another cart")
    return JSONResponse(existing.model_dump(mode="json"), status_code=200)


async def _place_order(conn: asyncpg.Connection, cart_id: uuid.UUID, key: str) -> Order | None:
    """Inside one transaction: claim the key, then build the order. ``None`` if the key was taken.

    Claiming first is what makes concurrent retries safe: the unique index on the key makes a
    second INSERT wait for the first transaction and then do nothing (no check-then-insert race).
    """
    try:
        order_id = await conn.fetchval(
            """
            INSERT INTO orders (idempotency_key, cart_id) VALUES ($1, $2)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
            """,
            key,
            cart_id,
        )
    except asyncpg.ForeignKeyViolationError:
        raise _Refused(404, "cart not found") from None
    except asyncpg.UniqueViolationError:  # orders.cart_id is unique too
        raise _Refused(409, "cart already checked out", key_race=True) from None
    if order_id is None:
        return None

    await conn.execute("SELECT 1 FROM carts WHERE id = $1 FOR UPDATE", cart_id)
    items = await conn.fetch(
        "SELECT product_id, quantity FROM cart_items WHERE cart_id = $1 ORDER BY product_id",
        cart_id,
    )
    if not items:
        raise _Refused(409, "cart is empty")
    product_ids = [item["product_id"] for item in items]
    # Lock the products in id order, so concurrent checkouts cannot deadlock on them.
    await conn.execute(
        "SELECT 1 FROM products WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE", product_ids
    )
    taken = await conn.fetch(
        """
        UPDATE products p SET stock = p.stock - ci.quantity
        FROM cart_items ci
        WHERE ci.cart_id = $1 AND p.id = ci.product_id AND p.stock >= ci.quantity
        RETURNING p.id
        """,
        cart_id,
    )
    if len(taken) != len(items):
        raise _Refused(409, "not enough stock")
    await conn.execute(
        """
        INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents)
        SELECT $1, ci.product_id, ci.quantity, p.price_cents
        FROM cart_items ci JOIN products p ON p.id = ci.product_id WHERE ci.cart_id = $2
        """,
        order_id,
        cart_id,
    )
    await conn.execute(
        """
        UPDATE orders SET total_cents =
            (SELECT coalesce(sum(quantity * unit_price_cents), 0) FROM order_items
             WHERE order_id = $1)
        WHERE id = $1
        """,
        order_id,
    )
    await conn.execute("UPDATE carts SET status = 'checked_out' WHERE id = $1", cart_id)
    return await _load_order(conn, where="id", value=order_id)


@router.get("/orders/{order_id}", responses=_UNAVAILABLE | _NOT_FOUND)
async def get_order(shop: ShopDep, order_id: uuid.UUID) -> Order:
    async with shop.db.connection() as conn:
        order = await _load_order(conn, where="id", value=order_id)
    if order is None:
        raise HTTPException(404, "order not found")
    return order
