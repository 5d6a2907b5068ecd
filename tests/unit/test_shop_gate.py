"""The shop's ASGI gate in front of a stand-in app: shedding, maintenance, the last-resort 503."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from shopapp.config import Settings, load_settings
from shopapp.maintenance import Maintenance
from shopapp.middleware import ShopGate, Stats
from starlette.responses import PlainTextResponse

pytestmark = pytest.mark.unit

Scope = dict[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]


def settings(**env: str) -> Settings:
    return load_settings(
        {"SHOP_DATABASE_URL": "postgresql://x@127.0.0.1:9/x", "SHOP_INSTANCE": "app-7", **env}
    )


def ok_app() -> App:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    return app


def raising_app(error: Exception) -> App:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise error

    return app


def gate(app: App, config: Settings, *, maintenance: bool = False) -> tuple[ShopGate, Stats]:
    flag = Maintenance(config)
    flag.enabled = maintenance
    stats = Stats()
    return ShopGate(app, settings=config, stats=stats, maintenance=flag), stats


async def get(app: ShopGate, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        return await client.get(path)


def test_every_response_carries_the_instance_and_is_counted() -> None:
    app, stats = gate(ok_app(), settings())
    response = asyncio.run(get(app, "/products"))
    assert response.status_code == 200
    assert response.headers["x-shop-instance"] == "app-7"
    assert stats.by_status == {200: 1}
    assert stats.inflight == 0


def test_an_unexpected_error_becomes_a_logged_503_not_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, stats = gate(raising_app(KeyError("bug")), settings(SHOP_SHED_RETRY_AFTER_S="3"))
    response = asyncio.run(get(app, "/products"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert response.headers["x-shop-instance"] == "app-7"
    assert "unhandled error on GET /products" in caplog.text
    assert stats.inflight == 0


def test_a_database_error_that_escaped_gets_the_database_retry_after() -> None:
    error = asyncpg.ConnectionDoesNotExistError("gone")
    app, _ = gate(raising_app(error), settings(SHOP_DB_RETRY_AFTER_S="9"))
    response = asyncio.run(get(app, "/products"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "9"


def test_retry_after_off_leaves_the_header_out_of_every_503() -> None:
    config = settings(SHOP_RETRY_AFTER="off")
    for app in (
        gate(raising_app(RuntimeError("bug")), config)[0],
        gate(ok_app(), config, maintenance=True)[0],
    ):
        response = asyncio.run(get(app, "/products"))
        assert response.status_code == 503
        assert "retry-after" not in response.headers


def test_maintenance_refuses_all_but_health_and_admin() -> None:
    app, stats = gate(ok_app(), settings(), maintenance=True)
    refused = asyncio.run(get(app, "/carts/x"))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "30"
    assert refused.json() == {"detail": "down for maintenance"}
    for path in ("/healthz", "/readyz", "/admin/stats"):
        assert asyncio.run(get(app, path)).status_code == 200
    assert stats.maintenance_rejected_total == 1


def test_past_the_inflight_limit_requests_are_shed_and_health_is_not() -> None:
    release = asyncio.Event()

    async def slow(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        await PlainTextResponse("ok")(scope, receive, send)

    app, stats = gate(slow, settings(SHOP_MAX_INFLIGHT="2"))

    async def scenario() -> list[int]:
        held = [asyncio.create_task(get(app, "/slow")) for _ in range(2)]
        while stats.inflight < 2:
            await asyncio.sleep(0.001)
        shed = await get(app, "/products")
        health = await get(app, "/healthz")
        release.set()
        done = await asyncio.gather(*held)
        assert shed.headers["retry-after"] == "1"
        return [shed.status_code, health.status_code, *(r.status_code for r in done)]

    assert asyncio.run(scenario()) == [503, 200, 200, 200]
    assert stats.shed_total == 1
    assert stats.inflight == 0
