"""``python -m shopapp serve --host H --port N`` and ``python -m shopapp migrate``.

Exit codes: 0 done · 1 the database is unreachable (migrate) · 2 bad configuration or arguments.
Errors are one line on stderr, naming the variable or the database address.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from urllib.parse import urlsplit

import asyncpg

from shopapp.config import ConfigError, Settings, load_settings

EXIT_OK = 0
EXIT_UNREACHABLE = 1
EXIT_CONFIG = 2
# How long an idle keep-alive connection stays open (uvicorn's default, stated): the load
# balancers in front (harness/stack/caddy.py, compose/config/Caddyfile) drop theirs sooner.
KEEP_ALIVE_S = 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shopapp", description="The sample shop (configured by SHOP_* variables)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve HTTP with uvicorn (one worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    commands.add_parser("migrate", help="create the schema and seed products (idempotent)")
    return parser


def _where(dsn: str) -> str:
    """host:port/database of a DSN, without the password, for error messages."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from shopapp.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        workers=1,
        access_log=False,
        lifespan="on",
        # Bounded, so a stop during an outage does not wait on hung requests.
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
        server_header=False,
    )
    server = uvicorn.Server(config)
    server.run()
    # uvicorn sets should_exit on signals; a failed startup (port taken) leaves started False.
    return EXIT_OK if server.started else EXIT_UNREACHABLE


def _migrate(settings: Settings) -> int:
    from shopapp.migrate import migrate

    try:
        count = asyncio.run(migrate(settings.database_url))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"shopapp: migrate: database at {_where(settings.database_url)} unreachable: {reason}",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    print(f"shopapp: migrated {_where(settings.database_url)} ({count} products)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"shopapp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {settings.instance} %(name)s %(levelname)s %(message)s",
    )
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    return _migrate(settings)


if __name__ == "__main__":
    sys.exit(main())
