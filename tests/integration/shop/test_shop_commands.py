"""``python -m shopapp``: configuration errors, migrate (idempotent, concurrent, unreachable)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import asyncpg
import pytest
from shop_support import free_port, shop_env

from harness.stack.postgres import PostgresInfo

pytestmark = pytest.mark.integration


def run_shopapp(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shopapp", *args],
        env=shop_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHOP_MAX_INFLIGHT", "many"),
        ("SHOP_MAX_INFLIGHT", "0"),
        ("SHOP_LOAD_SHEDDING", "maybe"),
        ("SHOP_RETRY_AFTER", "sometimes"),
        ("SHOP_DB_TIMEOUT_MS", "-5"),
        ("SHOP_BREAKER_FAILURES", "1.5"),
        ("SHOP_DATABASE_URL", "mysql://x"),
    ],
)
def test_a_bad_variable_stops_serve_with_one_line_naming_it(variable: str, value: str) -> None:
    env = {"SHOP_DATABASE_URL": "postgresql://shop:shop@127.0.0.1:1/shop", variable: value}
    result = run_shopapp("serve", "--port", str(free_port()), **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"shopapp: {variable}: ")


def test_a_missing_database_url_stops_migrate_with_exit_2() -> None:
    result = run_shopapp("migrate")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("shopapp: SHOP_DATABASE_URL: required")


def test_migrate_against_an_unreachable_database_fails_with_one_line() -> None:
    port = free_port()
    result = run_shopapp("migrate", SHOP_DATABASE_URL=f"postgresql://shop:pw@127.0.0.1:{port}/shop")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}/shop unreachable" in lines[0]
    assert "pw" not in lines[0]  # the password stays out of logs


def test_concurrent_migrations_of_a_fresh_database_all_succeed(postgres: PostgresInfo) -> None:
    database = f"mig_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres.dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{database}"'))
    try:
        dsn = postgres.dsn.rsplit("/", 1)[0] + f"/{database}"
        env = shop_env(SHOP_DATABASE_URL=dsn)
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "shopapp", "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [run.communicate(timeout=60) for run in runs]
        assert [run.returncode for run in runs] == [0] * 4, outputs
        assert all("(20 products)" in out for out, _ in outputs)
        again = run_shopapp("migrate", SHOP_DATABASE_URL=dsn)
        assert again.returncode == 0
    finally:
        asyncio.run(admin(f'DROP DATABASE "{database}" WITH (FORCE)'))
