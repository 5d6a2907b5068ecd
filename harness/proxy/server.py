"""Run the embedded Toxiproxy-compatible server: the HTTP API plus every proxy, on one event loop.

``serve_forever`` is what ``harness proxy serve`` calls: it loads the optional config file (the
``/populate`` format), serves until SIGINT or SIGTERM, then closes every listener and connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.errors import BadInputError, InfrastructureError
from harness.proxy.api import build_app
from harness.proxy.metrics import ServerMetrics
from harness.proxy.proxy import ApiError, ProxyCollection


def load_config(path: Path) -> list[dict[str, Any]]:
    """Read a config file: a JSON array of ``{"name", "listen", "upstream", "enabled"}``."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(data, list):
        raise BadInputError(f"{path}: expected a JSON array of proxies")
    for index, item in enumerate(data):
        where = f"{path}: [{index}]"
        if not isinstance(item, dict):
            raise BadInputError(f"{where}: expected an object")
        for key in ("name", "upstream"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise BadInputError(f"{where}.{key}: required, a non-empty string")
        if not isinstance(item.get("listen", ""), str):
            raise BadInputError(f"{where}.listen: expected a string like 127.0.0.1:8080")
        if not isinstance(item.get("enabled", True), bool):
            raise BadInputError(f"{where}.enabled: expected true or false")
    return data


async def populate_from(collection: ProxyCollection, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        proxy = collection.new_proxy(entry["name"], entry.get("listen", ""), entry["upstream"])
        try:
            await collection.add_or_replace(proxy, start=entry.get("enabled", True))
        except ApiError as exc:
            raise InfrastructureError(f"proxy {entry['name']!r}: {exc.message}") from exc


@contextlib.asynccontextmanager
async def running_server(
    host: str = "127.0.0.1",
    port: int = 8474,
    config: list[dict[str, Any]] | None = None,
    *,
    metrics: ServerMetrics | None = None,
) -> AsyncIterator[tuple[ProxyCollection, int]]:
    """The API and the configured proxies, torn down on exit. Yields the collection and the
    API's bound port (useful with ``port=0``). ``metrics`` with a flag on adds ``GET /metrics``."""
    collection = ProxyCollection(default_host=host, metrics=metrics)
    runner = web.AppRunner(build_app(collection), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        if config:
            await populate_from(collection, config)
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise InfrastructureError(
                f"toxiproxy API {host}:{port}: cannot listen: {reason}"
            ) from exc
        server = site._server  # aiohttp exposes the bound port only through the server
        bound = port
        if isinstance(server, asyncio.Server) and server.sockets:
            bound = int(server.sockets[0].getsockname()[1])
        yield collection, bound
    finally:
        collection.clear()
        await runner.cleanup()


async def serve(
    host: str,
    port: int,
    config: list[dict[str, Any]] | None,
    metrics: ServerMetrics | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_server(host, port, config, metrics=metrics) as (collection, bound):
        print(
            f"embedded toxiproxy: API on http://{host}:{bound}, {len(collection.proxies)} proxies",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    print("embedded toxiproxy: stopped", file=sys.stderr, flush=True)


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8474,
    config_file: Path | None = None,
    *,
    proxy_metrics: bool = False,
    runtime_metrics: bool = False,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM. Either metrics flag serves
    ``GET /metrics`` (:mod:`harness.proxy.metrics`), as Toxiproxy's ``-proxy-metrics`` and
    ``-runtime-metrics`` do."""
    config = load_config(config_file) if config_file is not None else None
    metrics = ServerMetrics(proxy_metrics=proxy_metrics, runtime_metrics=runtime_metrics)
    _run(serve(host, port, config, metrics))
