"""Fixtures for the shop's integration tests: a real PostgreSQL for the session, real uvicorn
processes of the shop, and a TCP link to the database that a test can slow down or cut."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import session_cleanup
from shop_support import FaultyLink, ShopProcess, StartShop, free_port, launch_shop, shop_env

from harness.stack.postgres import PostgresInfo, init_cluster, start_postgres, stop_postgres

# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresInfo]:
    """A migrated cluster in a temporary directory on a free port, stopped by PID at the end."""
    # Not tmp_path_factory: pytest keeps its base temp dir private (0700), and when the tests run
    # as root the server runs as an unprivileged user that must reach the data directory.
    root = Path(tempfile.mkdtemp(prefix="shop-it-pg-"))
    # In the session's record before anything starts: a session killed from here on leaves no
    # server and no directory behind (the next one sweeps them).
    record = session_cleanup.current()
    if record is not None:
        record.add_state_dir(root)
    data_dir = root / "data"
    port = free_port()
    init_cluster(data_dir, createdb=True)  # test_shop_commands makes databases of its own
    process = start_postgres(data_dir, port=port, log_file=root / "postgres.log")
    if record is not None:
        record.add_pids([process.pid])
    try:
        info = PostgresInfo(
            host="127.0.0.1",
            port=port,
            user="shop",
            password="shop",
            database="shop",
            data_dir=data_dir,
            pid=process.pid,
        )
        migrated = subprocess.run(
            [sys.executable, "-m", "shopapp", "migrate"],
            env=shop_env(SHOP_DATABASE_URL=info.dsn),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        yield info
    finally:
        stop_postgres(process.pid)
        process.wait(timeout=5)  # reaped already by stop_postgres; this records the return code
        shutil.rmtree(root, ignore_errors=True)
        if record is not None:
            record.forget_state_dir(root)


@pytest.fixture
def start_shop(postgres: PostgresInfo, tmp_path: Path) -> Iterator[StartShop]:
    """Factory: ``start_shop(SHOP_MAX_INFLIGHT="2", database_url=...)``; all stopped at the end."""
    started: list[ShopProcess] = []

    def start(*, database_url: str | None = None, **env: str) -> ShopProcess:
        instance = env.pop("SHOP_INSTANCE", f"app-{len(started) + 1}")
        shop = launch_shop(database_url or postgres.dsn, tmp_path, instance, **env)
        started.append(shop)
        return shop

    yield start
    for shop in started:
        shop.stop()


@pytest.fixture(scope="module")
def shop(postgres: PostgresInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopProcess]:
    """One shop with the default configuration, shared by a module's tests."""
    shared = launch_shop(postgres.dsn, tmp_path_factory.mktemp("shop"), "app-shared")
    yield shared
    shared.stop()


@pytest.fixture
def db_link(postgres: PostgresInfo) -> Iterator[FaultyLink]:
    link = FaultyLink(postgres.port)
    link.start()
    yield link
    link.close()
