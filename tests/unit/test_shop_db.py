"""Database.connection without a database: the breaker's verdicts and the fast refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from shopapp.config import load_settings
from shopapp.db import (
    BreakerState,
    CircuitBreaker,
    Database,
    DatabaseUnavailable,
    is_database_failure,
)

pytestmark = pytest.mark.unit


class FakeConnection:
    def __init__(self) -> None:
        self.terminated = False

    def terminate(self) -> None:
        self.terminated = True


class FakePool:
    """Stands in for asyncpg's pool: hands out FakeConnections or raises ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.acquired = 0
        self.released: list[FakeConnection] = []

    async def acquire(self, timeout: float) -> FakeConnection:
        self.acquired += 1
        if self.error is not None:
            raise self.error
        return FakeConnection()

    async def release(self, connection: FakeConnection, timeout: float) -> None:
        self.released.append(connection)


def make_db(pool: FakePool, *, failures: int = 2, timeout_ms: int = 200) -> Database:
    settings = load_settings(
        {
            "SHOP_DATABASE_URL": "postgresql://x@127.0.0.1:9/x",
            "SHOP_BREAKER_FAILURES": str(failures),
            "SHOP_DB_TIMEOUT_MS": str(timeout_ms),
            "SHOP_DB_POOL_SIZE": "1",
        }
    )
    db = Database(settings, CircuitBreaker(failure_threshold=failures, cooldown_s=60))
    db._pool = pool  # type: ignore[assignment]
    return db


async def use(db: Database, body: Any = None) -> None:
    async with db.connection() as conn:
        if body is not None:
            await body(conn)


def test_connection_failures_open_the_breaker_and_then_skip_the_pool() -> None:
    pool = FakePool(error=ConnectionRefusedError(111, "refused"))
    db = make_db(pool, failures=2)
    for _ in range(2):
        with pytest.raises(DatabaseUnavailable):
            asyncio.run(use(db))
    assert db.breaker.state is BreakerState.OPEN
    with pytest.raises(DatabaseUnavailable, match="circuit breaker open"):
        asyncio.run(use(db))
    assert pool.acquired == 2  # the third call never reached the pool


def test_a_query_past_the_deadline_terminates_the_connection() -> None:
    pool = FakePool()
    db = make_db(pool, failures=5, timeout_ms=50)

    async def hang_until_terminated(conn: FakeConnection) -> None:
        while not conn.terminated:
            await asyncio.sleep(0.005)
        raise asyncpg.ConnectionDoesNotExistError("connection was closed")

    with pytest.raises(DatabaseUnavailable, match="timed out"):
        asyncio.run(use(db, hang_until_terminated))
    assert pool.released[0].terminated
    assert db.breaker.consecutive_failures == 1


def test_a_refused_request_counts_as_a_healthy_database() -> None:
    pool = FakePool()
    db = make_db(pool)
    db.breaker.record_failure()

    async def conflict(conn: FakeConnection) -> None:
        raise asyncpg.UniqueViolationError("duplicate key")

    with pytest.raises(asyncpg.UniqueViolationError):
        asyncio.run(use(db, conflict))
    assert db.breaker.consecutive_failures == 0
    assert not pool.released[0].terminated


def test_a_busy_pool_is_reported_as_busy_not_as_a_database_failure() -> None:
    pool = FakePool()
    db = make_db(pool, timeout_ms=30)

    async def two_at_once() -> None:
        holder = asyncio.Event()

        async def hold(conn: FakeConnection) -> None:
            holder.set()
            await asyncio.sleep(0.1)  # longer than the 30 ms a second caller may wait

        first = asyncio.create_task(use(db, hold))
        await holder.wait()
        with pytest.raises(DatabaseUnavailable) as caught:
            async with db.connection():
                pass
        assert caught.value.busy
        await first

    asyncio.run(two_at_once())
    assert db.breaker.state is BreakerState.CLOSED
    assert db.breaker.consecutive_failures == 0


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (asyncpg.ConnectionDoesNotExistError("gone"), True),
        (asyncpg.CannotConnectNowError("starting up"), True),
        (asyncpg.TooManyConnectionsError("too many"), True),
        (asyncpg.QueryCanceledError("statement timeout"), True),
        (asyncpg.UndefinedTableError("no table"), True),
        (asyncpg.InterfaceError("closed"), True),
        (asyncpg.UniqueViolationError("dup"), False),
        (asyncpg.ForeignKeyViolationError("fk"), False),
        (asyncpg.DataError("bad value"), False),
        (asyncpg.DeadlockDetectedError("deadlock"), False),
        (ValueError("bug"), False),
    ],
)
def test_database_failures_are_told_from_refused_requests(
    error: BaseException, failure: bool
) -> None:
    assert is_database_failure(error) is failure
