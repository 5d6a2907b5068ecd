"""Request and response bodies. Bounds mirror the database's column types and CHECKs, so a value
the database would reject is refused with 422 before any query (never a 5xx)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

INT4_MAX = 2**31 - 1
MAX_QUANTITY = 1000

ProductId = Annotated[int, Field(ge=1, le=INT4_MAX)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Product(BaseModel):
    id: int
    sku: str
    name: str
    price_cents: int
    stock: int


class CartCreated(BaseModel):
    cart_id: uuid.UUID


class AddItem(_Strict):
    product_id: ProductId
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


class CartItem(BaseModel):
    product_id: int
    name: str
    quantity: int
    unit_price_cents: int


class Cart(BaseModel):
    cart_id: uuid.UUID
    status: str
    items: list[CartItem]
    total_cents: int


class Checkout(BaseModel):
    # Not strict: JSON has no UUID type, so the id arrives as a string to be parsed.
    model_config = ConfigDict(extra="forbid")
    cart_id: uuid.UUID


class OrderItem(BaseModel):
    product_id: int
    quantity: int
    unit_price_cents: int


class Order(BaseModel):
    order_id: uuid.UUID
    cart_id: uuid.UUID
    status: str
    total_cents: int
    items: list[OrderItem]


class MaintenanceSwitch(_Strict):
    enabled: bool


class MaintenanceState(BaseModel):
    enabled: bool
    instance: str


class Problem(BaseModel):
    detail: str
