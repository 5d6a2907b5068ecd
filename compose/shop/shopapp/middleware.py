"""The gate in front of every request, as plain ASGI so a refusal costs next to nothing.

In order: stamp ``X-Shop-Instance`` on every response and count it by status; answer ``503`` at
once in maintenance mode; answer ``503`` at once past ``SHOP_MAX_INFLIGHT`` requests in flight;
and, as the last resort, turn any exception that escaped the app into a logged ``503`` (the shop
never answers ``500``). Health and admin endpoints skip maintenance and shedding: the load balancer
must keep seeing the truth, and operators must reach the switch that turns maintenance off.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopapp.config import Settings
from shopapp.db import is_database_failure
from shopapp.maintenance import Maintenance

log = logging.getLogger(__name__)

_EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
_EXEMPT_PREFIX = "/admin/"


@dataclass
class Stats:
    inflight: int = 0
    shed_total: int = 0
    maintenance_rejected_total: int = 0
    by_status: Counter[int] = field(default_factory=Counter)


def retry_after_headers(settings: Settings, seconds: int) -> dict[str, str]:
    """The Retry-After header for a 503, unless the shop is configured to omit it."""
    return {"Retry-After": str(seconds)} if settings.retry_after else {}


def unavailable(settings: Settings, detail: str, retry_after_s: int) -> JSONResponse:
    """The one way the shop says 503."""
    return JSONResponse(
        {"detail": detail}, status_code=503, headers=retry_after_headers(settings, retry_after_s)
    )


class ShopGate:
    def __init__(
        self, app: ASGIApp, *, settings: Settings, stats: Stats, maintenance: Maintenance
    ) -> None:
        self.app = app
        self.settings = settings
        self.stats = stats
        self.maintenance = maintenance
        self._instance_header = (b"x-shop-instance", settings.instance.encode("latin-1", "replace"))
        # Pre-rendered refusals: the shedding path must stay cheap when the shop is overloaded.
        self._shed = self._refusal("overloaded, retry later", settings.shed_retry_after_s)
        self._maintenance = self._refusal(
            "down for maintenance", settings.maintenance_retry_after_s
        )

    def _refusal(self, detail: str, retry_after_s: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        headers += [
            (k.lower().encode(), v.encode())
            for k, v in retry_after_headers(self.settings, retry_after_s).items()
        ]
        return headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stats = self.stats
        started = False

        async def stamped_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                stats.by_status[message["status"]] += 1
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), self._instance_header],
                }
            await send(message)

        path: str = scope["path"]
        gated = path not in _EXEMPT_PATHS and not path.startswith(_EXEMPT_PREFIX)
        if gated and self.maintenance.enabled:
            stats.maintenance_rejected_total += 1
            await self._refuse(stamped_send, self._maintenance)
            return
        if gated and self.settings.load_shedding and stats.inflight >= self.settings.max_inflight:
            stats.shed_total += 1
            await self._refuse(stamped_send, self._shed)
            return

        if gated:
            stats.inflight += 1
        try:
            await self.app(scope, receive, stamped_send)
        except ClientDisconnect:
            return  # the client went away mid-request: nobody left to answer
        except Exception as exc:
            if started:
                raise  # too late for a clean answer; the server closes the connection
            if is_database_failure(exc):
                log.warning("database error escaped a handler: %r", exc)
                retry_after_s = self.settings.db_retry_after_s
            else:
                log.exception("unhandled error on %s %s; answering 503", scope["method"], path)
                retry_after_s = self.settings.shed_retry_after_s
            response = unavailable(self.settings, "temporarily unavailable", retry_after_s)
            await response(scope, receive, stamped_send)
        finally:
            if gated:
                stats.inflight -= 1

    @staticmethod
    async def _refuse(send: Send, refusal: tuple[list[tuple[bytes, bytes]], bytes]) -> None:
        headers, body = refusal
        start: dict[str, Any] = {"type": "http.response.start", "status": 503, "headers": headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})
