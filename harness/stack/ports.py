"""The ports of the local stack: defaults, validation, and the is-anything-in-the-way check.

All of them are checked before the first process starts, so a taken port costs nothing to tear
down and the error can name the port and the piece that wanted it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from harness.errors import BadInputError, StackError
from harness.proxy.launcher import port_is_free

HOST = "127.0.0.1"

# The command-line flag that sets each :class:`StackPorts` field (``harness up`` and
# ``harness run``): a taken port is reported by the flag that moves it.
PORT_FLAG = {
    "entry": "--entry-port",
    "toxiproxy_api": "--toxiproxy-port",
    "postgres": "--postgres-port",
    "app_db_proxy": "--app-db-proxy-port",
    "apps": "--app-ports",
    "lb_proxies": "--lb-proxy-ports",
    "caddy_admin": "--caddy-admin-port",
}


# Caddy runs as the harness's user (root in CI) and its admin API takes any config without
# authentication: on a loopback port, any local user could make it serve the state directory.
ADMIN_OVER_TCP = "only 0 (Caddy's admin API is the state dir's caddy/admin.sock)"


@dataclass(frozen=True)
class StackPorts:
    """Every TCP port the local stack binds. ``caddy_admin`` must be 0: Caddy's admin API is
    not served over TCP (see :data:`ADMIN_OVER_TCP`); the field stays so that
    ``--caddy-admin-port 0`` keeps working."""

    entry: int = 8080
    toxiproxy_api: int = 8474
    postgres: int = 15432
    app_db_proxy: int = 15433
    apps: tuple[int, ...] = (18001, 18002, 18003)
    lb_proxies: tuple[int, ...] = (18101, 18102, 18103)
    caddy_admin: int = 0
    host: str = field(default=HOST)

    def __post_init__(self) -> None:
        if self.caddy_admin:
            raise BadInputError(f"--caddy-admin-port {self.caddy_admin}: {ADMIN_OVER_TCP}")
        if not self.apps:
            raise BadInputError("app ports: at least one instance is needed")
        if len(self.apps) != len(self.lb_proxies):
            raise BadInputError(
                f"app ports ({len(self.apps)}) and lb proxy ports ({len(self.lb_proxies)}) "
                "must be as many: each instance has its own proxy"
            )
        seen: dict[int, str] = {}
        for port, wanted_by in self.wanted():
            if not 1 <= port <= 65535:
                raise BadInputError(f"port {port} ({wanted_by}): must be in 1..65535")
            if port in seen:
                raise BadInputError(f"port {port} is given to both {seen[port]} and {wanted_by}")
            seen[port] = wanted_by

    @classmethod
    def free(cls, instances: int = 3, host: str = HOST) -> StackPorts:
        """Ports free right now: a stack that will not clash with a developer's own (tests, CI
        jobs side by side)."""
        p = free_ports(4 + 2 * instances, host)
        return cls(
            entry=p[0],
            toxiproxy_api=p[1],
            postgres=p[2],
            app_db_proxy=p[3],
            apps=tuple(p[4 : 4 + instances]),
            lb_proxies=tuple(p[4 + instances :]),
            host=host,
        )

    def wanted(self) -> list[tuple[int, str]]:
        """Each port with the piece that binds it, in start order."""
        return [(port, wanted_by) for port, wanted_by, _ in self.wanted_fields()]

    def wanted_fields(self) -> list[tuple[int, str, str]]:
        """Each port with the piece that binds it and the field that sets it, in start order."""
        wanted = [
            (self.postgres, "postgres", "postgres"),
            (self.toxiproxy_api, "toxiproxy API", "toxiproxy_api"),
            (self.app_db_proxy, "toxiproxy proxy app-db", "app_db_proxy"),
        ]
        for index, port in enumerate(self.lb_proxies, start=1):
            wanted.append((port, f"toxiproxy proxy lb-app-{index}", "lb_proxies"))
        for index, port in enumerate(self.apps, start=1):
            wanted.append((port, f"shop instance app-{index}", "apps"))
        wanted.append((self.entry, "caddy entry", "entry"))
        return wanted


def free_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` different ports that were free a moment ago (all held open while choosing)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def check_ports_free(ports: StackPorts) -> None:
    """Raise ``StackError`` naming the first port something else already listens on, and the
    flag that moves it."""
    for port, wanted_by, field_name in ports.wanted_fields():
        if not port_is_free(ports.host, port):
            raise taken(port, PORT_FLAG[field_name], ports.host, wanted_by)


def taken(port: int, flag: str, host: str, wanted_by: str) -> StackError:
    """The one line a taken port is reported in (exit 3: the machine, not the input)."""
    return StackError(f"port {port} ({flag}) is taken on {host}; {wanted_by} needs it")
