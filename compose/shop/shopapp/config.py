"""The shop's configuration: environment variables only, parsed once at start into ``Settings``.

A bad value stops the process with one line naming the variable (exit code 2), so a typo in a
compose file or a scenario fails loudly at start instead of changing behaviour mid-run. An empty
variable counts as unset.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

_SWITCH_VALUES = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    database_url: str
    instance: str
    max_inflight: int
    load_shedding: bool
    retry_after: bool
    idempotency: bool
    shed_retry_after_s: int
    db_retry_after_s: int
    maintenance_retry_after_s: int
    db_timeout_ms: int
    db_pool_size: int
    breaker_failures: int
    breaker_cooldown_ms: int
    maintenance_poll_ms: int
    admin_token: str | None

    @property
    def db_timeout_s(self) -> float:
        return self.db_timeout_ms / 1000

    @property
    def breaker_cooldown_s(self) -> float:
        return self.breaker_cooldown_ms / 1000

    @property
    def maintenance_poll_s(self) -> float:
        return self.maintenance_poll_ms / 1000


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(name, f"expected an integer from {minimum} to {maximum}, got {value}")
    return value


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        return _SWITCH_VALUES[raw.lower()]
    except KeyError:
        raise ConfigError(name, f"expected on or off, got {raw!r}") from None


def load_settings(env: Mapping[str, str]) -> Settings:
    """Parse and validate the ``SHOP_*`` variables in ``env``; raise :class:`ConfigError`."""
    database_url = _get(env, "SHOP_DATABASE_URL")
    if database_url is None:
        raise ConfigError(
            "SHOP_DATABASE_URL", "required, e.g. postgresql://shop:shop@host:5432/shop"
        )
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("SHOP_DATABASE_URL", "expected a postgresql:// URL")
    day_s = 86_400
    return Settings(
        database_url=database_url,
        instance=_get(env, "SHOP_INSTANCE") or socket.gethostname(),
        max_inflight=_int(env, "SHOP_MAX_INFLIGHT", 64, minimum=1, maximum=100_000),
        load_shedding=_switch(env, "SHOP_LOAD_SHEDDING", True),
        retry_after=_switch(env, "SHOP_RETRY_AFTER", True),
        idempotency=_switch(env, "SHOP_IDEMPOTENCY", True),
        shed_retry_after_s=_int(env, "SHOP_SHED_RETRY_AFTER_S", 1, minimum=0, maximum=day_s),
        db_retry_after_s=_int(env, "SHOP_DB_RETRY_AFTER_S", 2, minimum=0, maximum=day_s),
        maintenance_retry_after_s=_int(
            env, "SHOP_MAINTENANCE_RETRY_AFTER_S", 30, minimum=0, maximum=day_s
        ),
        db_timeout_ms=_int(env, "SHOP_DB_TIMEOUT_MS", 500, minimum=1, maximum=600_000),
        db_pool_size=_int(env, "SHOP_DB_POOL_SIZE", 10, minimum=1, maximum=1_000),
        breaker_failures=_int(env, "SHOP_BREAKER_FAILURES", 5, minimum=1, maximum=1_000_000),
        breaker_cooldown_ms=_int(
            env, "SHOP_BREAKER_COOLDOWN_MS", 2000, minimum=0, maximum=day_s * 1000
        ),
        maintenance_poll_ms=_int(env, "SHOP_MAINTENANCE_POLL_MS", 250, minimum=10, maximum=60_000),
        admin_token=_get(env, "SHOP_ADMIN_TOKEN"),
    )
