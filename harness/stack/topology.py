"""The local stack's topology as data: which piece listens where and what each proxy links.

Pure functions of the config, so ``up`` (which builds the stack) and every later reader of the
state file (which only has the config) describe the same stack.
"""

from __future__ import annotations

from harness.stack.base import Endpoint, Instance, Proxy, Service, StackInfo
from harness.stack.config import LocalStackConfig

# Roles of the processes; also the layers ``down`` stops together, in reverse of this order.
DATABASE, TOXIPROXY, APP, ENTRY = "database", "toxiproxy", "app", "entry"

# A throw-away cluster on loopback. The shop's role is an ordinary one (no superuser) and its
# password is made up for each stack (LocalStackConfig.db_password): a fixed one would let any
# local user log in, and a superuser could run programs as the server's account.
DB_USER = DB_NAME = "shop"
APP_DB_PROXY = "app-db"
# What `harness up` prints to open: the shop's product listing answers 200 (its root is 404).
SHOP_PAGE = "/products"


def database_url(endpoint: Endpoint, password: str) -> str:
    """The shop's database at ``endpoint``; the password is URL-safe (hex)."""
    return f"postgresql://{DB_USER}:{password}@{endpoint.address}/{DB_NAME}"


def stack_info(config: LocalStackConfig) -> StackInfo:
    ports, host = config.ports, config.ports.host
    instances = tuple(
        Instance(name=name, endpoint=Endpoint(host, port), proxy=f"lb-{name}")
        for name, port in zip(config.instance_names, ports.apps, strict=True)
    )
    services = [
        Service("caddy", ENTRY, Endpoint(host, ports.entry)),
        Service("toxiproxy", TOXIPROXY, Endpoint(host, ports.toxiproxy_api)),
        Service("postgres", DATABASE, Endpoint(host, ports.postgres)),
    ]
    return StackInfo(
        entry_url=Endpoint(host, ports.entry).url(),
        toxiproxy_url=Endpoint(host, ports.toxiproxy_api).url(),
        services=tuple(services),
        instances=instances,
        proxies=proxies(config),
        admin_token=config.admin_token,
        database_url=database_url(Endpoint(host, ports.postgres), config.db_password),
        entry_path=SHOP_PAGE,
    )


def proxies(config: LocalStackConfig) -> tuple[Proxy, ...]:
    """One proxy in front of each instance (the load balancer's links), one to the database."""
    ports, host = config.ports, config.ports.host
    lb = tuple(
        Proxy(name=f"lb-{name}", listen=Endpoint(host, listen), upstream=Endpoint(host, app))
        for name, listen, app in zip(
            config.instance_names, ports.lb_proxies, ports.apps, strict=True
        )
    )
    db = Proxy(APP_DB_PROXY, Endpoint(host, ports.app_db_proxy), Endpoint(host, ports.postgres))
    return (*lb, db)


def toxiproxy_config(config: LocalStackConfig) -> list[dict[str, object]]:
    """Toxiproxy's ``-config`` file: the format of ``POST /populate``."""
    return [
        {
            "name": p.name,
            "listen": p.listen.address,
            "upstream": p.upstream.address,
            "enabled": True,
        }
        for p in proxies(config)
    ]
