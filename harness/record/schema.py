"""The run store's SQLite side, shared by the reader (:class:`~harness.record.store.RunDir`) and
the writer (:class:`~harness.record.store.RunWriter`): file names, the schema, the statuses a run
ends in, and how values are encoded and errors reported."""

from __future__ import annotations

import contextlib
import enum
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from harness.errors import InfrastructureError
from harness.record.buckets import Bucket

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DB_FILE",
    "LOCK_FILE",
    "NAMES_META",
    "SCHEMA",
    "STORE_FORMAT",
    "UPSERT_BUCKET",
    "RunStatus",
    "dumps",
    "encode",
    "merge_bucket_sql",
    "wrapped",
]

DB_FILE: Final = "run.sqlite"
LOCK_FILE: Final = "writer.lock"
STORE_FORMAT: Final = 1  # PRAGMA user_version of a run store this code writes and reads
NAMES_META: Final = "request_names"  # meta key: responses per Locust request name, per worker
BUSY_TIMEOUT_MS: Final = 5000  # a reader may meet the writer's checkpoint; wait, don't fail

SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE events (
    id INTEGER PRIMARY KEY, t REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;
CREATE TABLE buckets (idx INTEGER PRIMARY KEY, data TEXT NOT NULL) STRICT;
-- ANY keeps a logical_id an int or a str as it was given (a TEXT column would turn 7 into '7').
CREATE TABLE attempts (
    logical_id ANY NOT NULL, attempt INTEGER NOT NULL, t REAL NOT NULL, status INTEGER NOT NULL,
    latency REAL NOT NULL, retry_after_followed REAL
) STRICT;
"""

# The merge happens inside SQLite's upsert, so a batch of buckets is one executemany.
UPSERT_BUCKET: Final = """
INSERT INTO buckets (idx, data) VALUES (?, ?)
ON CONFLICT (idx) DO UPDATE SET data = harness_merge_bucket(data, excluded.data)
"""


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"  # stopped by a guard
    INTERRUPTED = "interrupted"  # SIGINT / SIGTERM, after the faults were reverted
    CRASHED = "crashed"


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def merge_bucket_sql(stored: str, incoming: str) -> str:
    # Both sides are known good: stored rows were validated on their way in, and so was the
    # incoming part (merge_all in upsert_buckets), so this cannot raise on our own data.
    merged = Bucket.from_dict(json.loads(stored))
    merged.merge(Bucket.from_dict(json.loads(incoming)))
    return dumps(merged.to_dict())


def encode(db: Path, what: str, value: object) -> str:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise InfrastructureError(f"run store {db}: {what} is not JSON: {exc}") from None


@contextlib.contextmanager
def wrapped(db: Path, action: str) -> Iterator[None]:
    """sqlite3 and OS errors as InfrastructureError, with a one-line message naming the store."""
    try:
        yield
    except sqlite3.Error as exc:
        raise InfrastructureError(f"run store {db}: {action}: {exc}") from None
    except OSError as exc:
        raise InfrastructureError(f"run store {db}: {action}: {exc.strerror or exc}") from None
