"""Wire the shop: settings → database, maintenance, stats → routes, the gate, error handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shopapp import admin, routes
from shopapp.config import Settings
from shopapp.db import CircuitBreaker, Database, DatabaseUnavailable
from shopapp.maintenance import Maintenance
from shopapp.middleware import ShopGate, Stats, unavailable

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    breaker = CircuitBreaker(
        failure_threshold=settings.breaker_failures, cooldown_s=settings.breaker_cooldown_s
    )
    db = Database(settings, breaker)
    maintenance = Maintenance(settings)
    stats = Stats()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.start()
        poller = asyncio.create_task(maintenance.run(), name="maintenance poll")
        log.info("shop instance %s started", settings.instance)
        try:
            yield
        finally:
            await maintenance.stop(poller)
            await db.close()

    app = FastAPI(title="shopapp", version="1.0.0", lifespan=lifespan)
    app.state.shop = routes.Shop(settings=settings, db=db, maintenance=maintenance, stats=stats)
    app.include_router(routes.router)
    app.include_router(admin.router)

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DatabaseUnavailable)
        if exc.busy:
            stats.shed_total += 1
            return unavailable(settings, "overloaded, retry later", settings.shed_retry_after_s)
        return unavailable(settings, exc.reason, settings.db_retry_after_s)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        # Raised outside Database.connection (should not happen), or a "healthy" error a handler
        # did not expect: still the database's answer, so 503, never 500.
        log.warning("database error on %s %s: %r", request.method, request.url.path, exc)
        return unavailable(settings, "database unavailable", settings.db_retry_after_s)

    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    for error in (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        app.add_exception_handler(error, database_error)
    # Anything else is caught by the gate, which is inside Starlette's 500 handler.
    app.add_middleware(ShopGate, settings=settings, stats=stats, maintenance=maintenance)
    return app
