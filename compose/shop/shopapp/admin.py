"""The admin API: maintenance on/off for every instance, and this instance's stats.

Protected by ``Authorization: Bearer $SHOP_ADMIN_TOKEN``. Without a configured token the admin API
is off (403), so a shop started without one can never be switched by anybody.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shopapp.models import MaintenanceState, MaintenanceSwitch, Problem
from shopapp.routes import ShopDep

# auto_error=False: we answer 401 ourselves, the same way for a missing and a wrong token.
_bearer = HTTPBearer(auto_error=False)


def require_admin(
    shop: ShopDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = shop.settings.admin_token
    if expected is None:
        raise HTTPException(403, "admin API disabled: SHOP_ADMIN_TOKEN is not set")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401, "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"}
        )


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    503: {"model": Problem},
}

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)], responses=_ERRORS)


@router.post("/maintenance")
async def set_maintenance(shop: ShopDep, switch: MaintenanceSwitch) -> MaintenanceState:
    """Turn maintenance mode on or off for every instance (they follow within a second)."""
    await shop.maintenance.set(shop.db, switch.enabled)
    return MaintenanceState(enabled=shop.maintenance.enabled, instance=shop.settings.instance)


@router.get("/stats")
async def stats(shop: ShopDep) -> dict[str, Any]:
    s = shop.stats
    breaker = shop.db.breaker
    return {
        "instance": shop.settings.instance,
        "inflight": s.inflight,
        "max_inflight": shop.settings.max_inflight,
        "load_shedding": shop.settings.load_shedding,
        "shed_total": s.shed_total,
        "maintenance": shop.maintenance.enabled,
        "maintenance_rejected_total": s.maintenance_rejected_total,
        "database_answers": shop.maintenance.database_answers(),
        "breaker": {
            "state": breaker.state.value,
            "consecutive_failures": breaker.consecutive_failures,
            "opened_total": breaker.opened_total,
        },
        "requests_by_status": {str(code): n for code, n in sorted(s.by_status.items())},
    }
