"""Database access that fails fast: a deadline on every unit of work, and a circuit breaker.

The shop must answer ``503`` + ``Retry-After`` quickly when PostgreSQL is slow or down, never hang
and never ``500``. Every use of the database goes through :meth:`Database.connection`, which

* refuses at once while the breaker is open (no connection attempt at all),
* bounds the wait for one of our pool slots, the connect, and the work itself by
  ``SHOP_DB_TIMEOUT_MS`` (the work by terminating the connection when the deadline passes, which
  fails any pending query at once, even on a link that swallows packets),
* tells the breaker whether the database answered, and
* turns every failure into :class:`DatabaseUnavailable`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from shopapp.config import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker with one trial call when half-open.

    closed → open after ``failure_threshold`` consecutive failures; open → half-open once
    ``cooldown_s`` has passed, letting one trial call through; the trial's success closes it, its
    failure opens it again for another cooldown. A trial that never reports back (a cancelled
    request) does not wedge it: after another cooldown a new trial is allowed.
    """

    def __init__(
        self, *, failure_threshold: int, cooldown_s: float, clock: Clock = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_started_at: float | None = None
        self.opened_total = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go to the database now? A ``True`` must be followed by one verdict."""
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self._cooldown_s:
                return False
            self._state = BreakerState.HALF_OPEN
        if self._trial_started_at is not None and now - self._trial_started_at < self._cooldown_s:
            return False
        self._trial_started_at = now
        return True

    def record_success(self) -> None:
        if self._state is not BreakerState.CLOSED:
            log.info("circuit breaker closed: the database answers again")
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial_started_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self._threshold
        ):
            if self._state is BreakerState.CLOSED:
                log.warning("circuit breaker open after %d consecutive failures", self._failures)
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._trial_started_at = None
            self.opened_total += 1

    def abandon(self) -> None:
        """The call was cancelled before a verdict: free the trial slot, judge nothing."""
        if self._state is BreakerState.HALF_OPEN:
            self._trial_started_at = None


class DatabaseUnavailable(Exception):
    """The database could not serve this request in time; the answer is 503 + Retry-After."""

    def __init__(self, reason: str, *, busy: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # busy: our own pool slots are all taken (load, not a database fault): shed-style answer.
        self.busy = busy


# Errors that mean "the database answered, the request was wrong or lost a race": the database is
# healthy, so they do not count against the breaker.
_HEALTHY_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    asyncpg.exceptions.TransactionRollbackError,
)


def is_database_failure(exc: BaseException) -> bool:
    """Does ``exc`` say the database is down, slow or unusable (rather than the request bad)?"""
    if isinstance(exc, _HEALTHY_ERRORS):
        return False
    return isinstance(exc, OSError | TimeoutError | asyncpg.PostgresError | asyncpg.InterfaceError)


class _Deadline:
    """Terminates a connection when the time is up; a terminated connection fails every pending
    and later query at once, so no await on it can outlive the deadline."""

    def __init__(self, connection: asyncpg.Connection, seconds: float) -> None:
        self.hit = False
        self._connection = connection
        self._handle = asyncio.get_running_loop().call_later(max(seconds, 0.0), self._fire)

    def _fire(self) -> None:
        self.hit = True
        self._connection.terminate()

    def cancel(self) -> None:
        self._handle.cancel()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset query on release: handlers never change session state (no SET,
    LISTEN or session-level advisory lock), so the reset would cost a round trip per request for
    nothing. asyncpg still rolls back an open transaction before calling this."""


class Database:
    """The pool, the breaker and the deadline, behind one context manager."""

    def __init__(self, settings: Settings, breaker: CircuitBreaker) -> None:
        self.settings = settings
        self.breaker = breaker
        self._timeout_s = settings.db_timeout_s
        self._slots = asyncio.Semaphore(settings.db_pool_size)
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        # min_size=0: creating the pool opens no connection, so the shop starts (and answers 503)
        # while the database is down; each acquire connects on demand and so retries by itself.
        self._pool = await asyncpg.create_pool(
            self.settings.database_url,
            min_size=0,
            max_size=self.settings.db_pool_size,
            timeout=self._timeout_s,  # connect, including authentication
            max_inactive_connection_lifetime=60,
            reset=_keep_session,
            server_settings={
                "application_name": f"shopapp {self.settings.instance}",
                # The server gives up too, so lock waits behind a stuck client cannot pile up.
                "statement_timeout": str(self.settings.db_timeout_ms),
            },
        )

    async def close(self) -> None:
        if self._pool is None:
            return
        try:
            await asyncio.wait_for(self._pool.close(), timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._pool.terminate()
        self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one unit of work, all of it within ``SHOP_DB_TIMEOUT_MS``."""
        pool = self._pool
        if pool is None:
            raise DatabaseUnavailable("the shop is starting")
        if not self.breaker.allow():
            raise DatabaseUnavailable("circuit breaker open")
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            self.breaker.abandon()
            raise DatabaseUnavailable("all database connections busy", busy=True) from None
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        try:
            async with self._judged():
                remaining = self._timeout_s - (time.monotonic() - started)
                connection = await pool.acquire(timeout=max(remaining, 0.001))
                deadline = _Deadline(connection, self._timeout_s - (time.monotonic() - started))
                try:
                    yield connection
                except BaseException as exc:
                    if deadline.hit:
                        raise TimeoutError("database deadline passed") from exc
                    if is_database_failure(exc) or isinstance(exc, asyncio.CancelledError):
                        # After an I/O error or a cancelled query the session state is unknown.
                        connection.terminate()
                    raise
                finally:
                    deadline.cancel()
                    # Instant on a terminated connection; otherwise at most a bounded ROLLBACK
                    # (asyncpg terminates the connection if that fails).
                    await pool.release(connection, timeout=self._timeout_s)
        finally:
            self._slots.release()

    @asynccontextmanager
    async def _judged(self) -> AsyncIterator[None]:
        """Report the outcome of one call to the breaker; map failures to DatabaseUnavailable."""
        try:
            yield
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        except Exception as exc:
            if not is_database_failure(exc):
                self.breaker.record_success()  # it answered; the request itself was refused
                raise
            self.breaker.record_failure()
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise DatabaseUnavailable(f"database unavailable: {reason}") from exc
        self.breaker.record_success()
