"""Maintenance mode, shared by every instance through one row in the database.

Each instance polls the row (every ``SHOP_MAINTENANCE_POLL_MS``, 250 ms by default) on a dedicated
connection, outside the pool and the breaker, so the poll neither competes with requests nor
skews the breaker. When the database is unreachable the last known value stays in force. The
instance that receives the admin call applies the new value at once; the others see it at their
next poll. The same poll tells ``/readyz`` whether the database answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

import asyncpg

from shopapp.config import Settings
from shopapp.db import Database

log = logging.getLogger(__name__)

_READ = "SELECT enabled FROM maintenance WHERE id = 1"
_WRITE = """
    INSERT INTO maintenance (id, enabled, updated_at, updated_by) VALUES (1, $1, now(), $2)
    ON CONFLICT (id) DO UPDATE
        SET enabled = EXCLUDED.enabled, updated_at = now(), updated_by = EXCLUDED.updated_by
"""


class Maintenance:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.enabled = False
        self._last_ok_at = -math.inf
        self._local_change_at = -math.inf
        self._connection: asyncpg.Connection | None = None
        self._reachable = True  # only for logging the transitions

    def database_answers(self) -> bool:
        """Did the last poll succeed recently (within two poll periods plus one timeout)?"""
        freshness_s = 2 * self._settings.maintenance_poll_s + self._settings.db_timeout_s
        return time.monotonic() - self._last_ok_at <= freshness_s

    async def set(self, database: Database, enabled: bool) -> None:
        """Store the flag for every instance, then apply it here at once."""
        async with database.connection() as connection:
            await connection.execute(_WRITE, enabled, self._settings.instance)
        self.enabled = enabled
        self._local_change_at = time.monotonic()
        log.warning("maintenance mode %s by an admin call", "on" if enabled else "off")

    async def run(self) -> None:
        """Poll until cancelled."""
        try:
            while True:
                await self.poll_once()
                await asyncio.sleep(self._settings.maintenance_poll_s)
        finally:
            if self._connection is not None:
                self._connection.terminate()

    async def poll_once(self) -> None:
        started = time.monotonic()
        try:
            value = await self._read()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if self._connection is not None:
                self._connection.terminate()
                self._connection = None
            if self._reachable:
                log.warning("maintenance poll failed, keeping the last value: %r", exc)
                self._reachable = False
            return
        if not self._reachable:
            log.info("maintenance poll: the database answers again")
            self._reachable = True
        self._last_ok_at = time.monotonic()
        # A poll that started before a local change may have read the old row; skip it.
        if started >= self._local_change_at:
            self.enabled = value

    async def _read(self) -> bool:
        timeout_s = self._settings.db_timeout_s
        async with asyncio.timeout(timeout_s):
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(
                    self._settings.database_url,
                    timeout=timeout_s,
                    server_settings={
                        "application_name": f"shopapp {self._settings.instance} maintenance poll"
                    },
                )
            try:
                value = await self._connection.fetchval(_READ)
            except asyncpg.UndefinedTableError:
                value = None  # not migrated yet: the database answers, no maintenance
        return bool(value)

    async def stop(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
