"""What the local stack is asked to be: ports, Toxiproxy flavour, the shop's settings.

Kept in the state file next to the processes, so any later process (``harness down``, a fault
injector) knows the stack as ``up`` built it without being told again.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from harness.errors import BadInputError
from harness.stack.ports import StackPorts

ToxiproxyKind = Literal["auto", "real", "embedded"]
TOXIPROXY_KINDS: tuple[ToxiproxyKind, ...] = ("auto", "real", "embedded")


def new_admin_token() -> str:
    return secrets.token_urlsafe(24)


def new_db_password() -> str:
    """Hex: safe as is in a URL, in SQL quotes and in a compose file."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class LocalStackConfig:
    """The local stack's settings. ``app_env`` adds to (or overrides) the shop's environment,
    e.g. ``SHOP_DB_TIMEOUT_MS``; the harness sets the variables that wire the topology itself.
    An empty ``admin_token`` or ``db_password`` means "make one up" (``up`` does, and keeps it
    in the state, which only its owner can read)."""

    ports: StackPorts = field(default_factory=StackPorts)
    toxiproxy: ToxiproxyKind = "auto"
    admin_token: str = ""
    app_env: tuple[tuple[str, str], ...] = ()
    # The part of ``app_env`` a person gave `harness up` (--app-env): the stack's own settings,
    # kept when a run brings the shop to its scenario's ``stack.env`` (which goes on top).
    base_env: tuple[tuple[str, str], ...] = ()
    db_password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        # One spelling per environment, so two configs that mean the same compare equal.
        object.__setattr__(self, "app_env", tuple(sorted(dict(self.app_env).items())))
        object.__setattr__(self, "base_env", tuple(sorted(dict(self.base_env).items())))
        if self.toxiproxy not in TOXIPROXY_KINDS:
            raise BadInputError(
                f"toxiproxy: expected one of {', '.join(TOXIPROXY_KINDS)}, got {self.toxiproxy!r}"
            )

    def with_token(self) -> LocalStackConfig:
        """This config with an admin token and a database password, made up where absent."""
        return replace(
            self,
            admin_token=self.admin_token or new_admin_token(),
            db_password=self.db_password or new_db_password(),
        )

    def satisfied_by(self, running: LocalStackConfig) -> bool:
        """Would the ``running`` stack do for this request? A made-up secret is no requirement."""
        token = self.admin_token or running.admin_token
        password = self.db_password or running.db_password
        asked = replace(self, admin_token=token, db_password=password, base_env=running.base_env)
        return asked == running

    def env_for(self, scenario_env: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """The shop's environment for a scenario on this stack: its own, then the scenario's."""
        return tuple({**dict(self.base_env), **dict(scenario_env)}.items())

    @property
    def instance_names(self) -> tuple[str, ...]:
        return tuple(f"app-{i}" for i in range(1, len(self.ports.apps) + 1))

    def to_json(self) -> dict[str, Any]:
        ports = self.ports
        return {
            "ports": {
                "host": ports.host,
                "entry": ports.entry,
                "toxiproxy_api": ports.toxiproxy_api,
                "postgres": ports.postgres,
                "app_db_proxy": ports.app_db_proxy,
                "apps": list(ports.apps),
                "lb_proxies": list(ports.lb_proxies),
                "caddy_admin": ports.caddy_admin,
            },
            "toxiproxy": self.toxiproxy,
            "admin_token": self.admin_token,
            "db_password": self.db_password,
            "app_env": dict(self.app_env),
            "base_env": dict(self.base_env),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocalStackConfig:
        ports = dict(data["ports"])
        # Caddy's admin API is no longer on a TCP port (a stack from before says 2019).
        ports["caddy_admin"] = 0
        ports["apps"] = tuple(ports["apps"])
        ports["lb_proxies"] = tuple(ports["lb_proxies"])
        return cls(
            ports=StackPorts(**ports),
            toxiproxy=cast(ToxiproxyKind, data["toxiproxy"]),
            admin_token=str(data["admin_token"]),
            # A state written before each stack had its own password: the fixed one of then.
            db_password=str(data.get("db_password", "shop")),
            app_env=tuple(dict(data["app_env"]).items()),
            # A state written before base_env: everything it runs is taken as the stack's own.
            base_env=tuple(dict(data.get("base_env", data["app_env"])).items()),
        )


def parse_env_pairs(pairs: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """``["KEY=VALUE", ...]`` as pairs (the last of a repeated key wins); no ``=`` is bad input."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInputError(f"app env {pair!r}: expected KEY=VALUE")
        parsed[key] = value
    return tuple(parsed.items())
