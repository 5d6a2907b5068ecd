"""Helpers for the shop's integration tests: launching shop processes, and a TCP link to the
database that a test can slow down or cut. The fixtures that use them are in conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.stack.postgres import PostgresInfo

ADMIN_TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def shop_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env.update(overrides)
    return env


# --- the shop -----------------------------------------------------------------------------------


@dataclass
class ShopProcess:
    instance: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 10) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def stats(self) -> dict[str, object]:
        with self.client() as client:
            response = client.get("/admin/stats", headers=self.admin_headers())
        response.raise_for_status()
        stats: dict[str, object] = response.json()
        return stats

    def log_tail(self) -> str:
        return _tail(self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


StartShop = Callable[..., "ShopProcess"]


def launch_shop(database_url: str, log_dir: Path, instance: str, **env: str) -> ShopProcess:
    """Start ``python -m shopapp serve`` on a free port; return once /healthz answers."""
    port = free_port()
    log = log_dir / f"{instance}.log"
    environment = shop_env(
        SHOP_DATABASE_URL=database_url, SHOP_INSTANCE=instance, SHOP_ADMIN_TOKEN=ADMIN_TOKEN
    )
    environment.update(env)
    with open(log, "wb") as log_handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "shopapp", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    shop = ShopProcess(instance, port, process, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"shop {instance} exited with {process.returncode}:\n{shop.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{shop.url}/healthz", timeout=1).status_code == 200:
                return shop
        time.sleep(0.05)
    shop.stop()
    pytest.fail(f"shop {instance} did not answer /healthz in 20 s:\n{shop.log_tail()}")


# --- a link to the database that can be slowed or cut -------------------------------------------


class FaultyLink:
    """A TCP forwarder in a thread of its own, between the shop and PostgreSQL.

    ``latency_s`` delays every chunk in both directions; ``cut()`` closes the listening port and
    drops every open connection (the database is "down": connection refused); ``restore()``
    listens again on the same port. A small stand-in for Toxiproxy, for tests only.
    """

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.latency_s = 0.0
        self._upstream_port = upstream_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def dsn(self, info: PostgresInfo) -> str:
        return f"postgresql://{info.user}:{info.password}@127.0.0.1:{self.port}/{info.database}"

    def start(self) -> None:
        self._thread.start()
        self.restore()

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def restore(self) -> None:
        self._run(self._listen())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _shutdown(self) -> None:
        # Aborted transports end every pipe by themselves; cancelling the handler tasks instead
        # would make asyncio log each one as an error.
        await self._cut()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.latency_s + 5)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client_w)
        server_w: asyncio.StreamWriter | None = None
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self._upstream_port)
            self._writers.add(server_w)
            await asyncio.gather(
                self._pipe(client_r, server_w),
                self._pipe(server_r, client_w),
                return_exceptions=True,
            )
        except OSError:
            pass
        finally:
            for writer in (client_w, server_w):
                if writer is not None:
                    writer.transport.abort()
                    self._writers.discard(writer)
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()  # one side gone: drop the other, as a dead link would
