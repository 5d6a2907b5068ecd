"""Schema and seed data, applied idempotently in one transaction under an advisory lock, so any
number of instances (or a compose service and the harness) may run ``migrate`` at the same time."""

from __future__ import annotations

import asyncpg

# Any bigint, as long as every migrate run uses the same one.
_LOCK_KEY = 5_031_503

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id          integer PRIMARY KEY,          -- fixed ids, so locustfiles can address them
    sku         text    NOT NULL UNIQUE,
    name        text    NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents > 0),
    stock       integer NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS carts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status     text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked_out')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cart_items (
    cart_id    uuid    NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id integer NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    PRIMARY KEY (cart_id, product_id)
);
CREATE TABLE IF NOT EXISTS orders (
    id              uuid   PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The unique key is what makes checkout idempotent under concurrent retries.
    idempotency_key text   NOT NULL UNIQUE,
    -- One order per cart, whatever the key.
    cart_id         uuid   NOT NULL UNIQUE REFERENCES carts (id),
    status          text   NOT NULL DEFAULT 'placed',
    total_cents     bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id         uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       integer NOT NULL REFERENCES products (id),
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents integer NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
-- One row: the maintenance flag every instance polls.
CREATE TABLE IF NOT EXISTS maintenance (
    id         smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    enabled    boolean  NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);
INSERT INTO maintenance (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
"""

PRODUCTS: list[tuple[int, str, str, int, int]] = [
    (1, "TEE-BLK", "Black T-shirt", 1900, 10_000),
    (2, "TEE-WHT", "White T-shirt", 1900, 10_000),
    (3, "HOOD-GRY", "Grey hoodie", 4900, 5_000),
    (4, "CAP-NVY", "Navy cap", 1500, 5_000),
    (5, "MUG-503", "Mug: 503 Service Unavailable", 1200, 10_000),
    (6, "MUG-429", "Mug: 429 Too Many Requests", 1200, 10_000),
    (7, "STK-PACK", "Sticker pack", 500, 50_000),
    (8, "SOCK-RTY", "Socks with a Retry-After pattern", 900, 10_000),
    (9, "BAG-TOTE", "Tote bag", 1800, 5_000),
    (10, "NB-A5", "A5 notebook", 1100, 10_000),
    (11, "PEN-GEL", "Gel pen", 300, 50_000),
    (12, "BTL-STL", "Steel bottle", 2500, 5_000),
    (13, "KEY-CAP", "Artisan keycap", 3500, 1_000),
    (14, "PAD-DSK", "Desk pad", 2900, 3_000),
    (15, "CBL-USBC", "USB-C cable", 1300, 20_000),
    (16, "HUB-USB", "USB hub", 3900, 2_000),
    (17, "LMP-DSK", "Desk lamp", 5900, 1_000),
    (18, "PLT-SUC", "Succulent in a pot", 1400, 2_000),
    (19, "PZL-1K", "1000-piece puzzle", 2200, 3_000),
    (20, "LTD-DROP", "Limited drop: flash-sale figurine", 9900, 100),
]


async def migrate(dsn: str, *, connect_timeout_s: float = 5.0) -> int:
    """Create the schema and seed the products; return the number of products."""
    conn = await asyncpg.connect(dsn, timeout=connect_timeout_s)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await conn.execute(SCHEMA)
            await conn.executemany(
                "INSERT INTO products (id, sku, name, price_cents, stock)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                PRODUCTS,
            )
        count: int = await conn.fetchval("SELECT count(*) FROM products")
        return count
    finally:
        await conn.close()
