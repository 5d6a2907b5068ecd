"""The run directory and its durable store: everything a run records, committed as it happens.

Layout of ``reports/<scenario>-<UTC YYYYmmddTHHMMSSZ>[-N]/``::

    run.sqlite     the store (SQLite, WAL): meta, events, buckets, attempts
    writer.lock    held (flock) by the one process writing the store while the run is live
    summary.json, junit.xml, report.html   written after the run by the verdict and the report

Tables (every JSON value compact, every time unix seconds)::

    meta(key TEXT PRIMARY KEY, value JSON)   format, harness_version, scenario_name, scenario,
                                             started_at, ended_at, status
    events(id, t, kind, name, detail JSON)   kind: one of EventKind; id is the write order
    buckets(idx INTEGER PRIMARY KEY, data JSON)
                                             one serialized bucket (harness.record.buckets) per
                                             100 ms; a part arriving for a stored bucket is merged
                                             into it (summed), never replaces it
    attempts(logical_id, attempt, t, status, latency, retry_after_followed)
                                             harness.record.buckets.AttemptRecord, one per row

Durability: every write is its own committed transaction, in WAL mode with synchronous=NORMAL: a
crash or SIGKILL of the writer keeps every committed write (only an OS crash or power loss may
lose the last few). Concurrency: one writer, the Locust master, on one thread (sqlite3 refuses
another thread; ``writer.lock`` refuses another process); readers (the verdict, a live
dashboard) may open the store at any time, also during the run.

A run whose status is still ``running`` but whose writer lock is free was left by a writer that
died: :attr:`RunDir.status` reports it as ``crashed``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from harness import __version__
from harness.errors import BadInputError, HarnessError, InfrastructureError
from harness.record.buckets import AttemptRecord, Bucket, BucketFormatError, merge_all
from harness.record.events import Event, EventKind
from harness.record.schema import (
    BUSY_TIMEOUT_MS,
    DB_FILE,
    LOCK_FILE,
    SCHEMA,
    STORE_FORMAT,
    UPSERT_BUCKET,
    RunStatus,
    dumps,
    encode,
    merge_bucket_sql,
    wrapped,
)

_TIMESTAMP: Final = "%Y%m%dT%H%M%SZ"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_SAME_SECOND: Final = 1000


def _slug(scenario_name: str) -> str:
    slug = _UNSAFE.sub("-", scenario_name).strip("-.")[:80]
    if not slug:
        raise BadInputError(
            f"scenario name {scenario_name!r}: needs a letter or digit to name its run directory"
        )
    return slug


class RunDir:
    """A run directory: its paths, and the readers of its store. Get one from :meth:`create`
    (a new run) or :meth:`open` (an existing one); write through :meth:`writer`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # The last buckets() read of a store nobody writes, with what identified it then.
        self._read_once: tuple[tuple[Any, ...], list[Bucket]] | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @property
    def database(self) -> Path:
        return self.root / DB_FILE

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def junit_xml(self) -> Path:
        return self.root / "junit.xml"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    # -- creating and opening ---------------------------------------------------------------

    @classmethod
    def create(
        cls, base: Path, scenario_name: str, *, clock: Callable[[], float] = time.time
    ) -> RunDir:
        """A new run directory under ``base`` (created if missing) with an initialized store.

        The name is ``<scenario>-<UTC start time>``, with ``-2``, ``-3``... when another run
        took it in the same second (``mkdir`` decides, so two processes never share one).
        Open its :meth:`writer` at once: until a writer holds the lock, :attr:`status` takes
        the ``running`` run for a crashed one.
        """
        started_at = clock()
        stem = f"{_slug(scenario_name)}-{time.strftime(_TIMESTAMP, time.gmtime(started_at))}"
        try:
            base.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise BadInputError(f"reports directory {base}: not a directory") from None
        except OSError as exc:
            raise InfrastructureError(
                f"reports directory {base}: cannot create it: {exc.strerror or exc}"
            ) from None
        for n in range(1, _MAX_SAME_SECOND + 1):
            root = base / (stem if n == 1 else f"{stem}-{n}")
            try:
                root.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise InfrastructureError(
                    f"run directory {root}: cannot create it: {exc.strerror or exc}"
                ) from None
            break
        else:
            raise InfrastructureError(f"run directory {base / stem}: {n} runs in the same second")
        run = cls(root)
        run._initialize(scenario_name, started_at)
        return run

    def _initialize(self, scenario_name: str, started_at: float) -> None:
        # The store is built under another name and renamed into place once whole, so a reader
        # polling the run directory (a live view, a test) never opens a half-made store: it
        # sees either no store yet or a complete one, never one that reads as format 0.
        partial = self.database.with_name(self.database.name + ".new")
        with wrapped(self.database, "cannot initialize the store"):
            conn = sqlite3.connect(partial, isolation_level=None)
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    raise InfrastructureError(
                        f"run store {self.database}: the filesystem refused WAL mode ({mode})"
                    )
                # One transaction for schema and meta: a store either is a run store or is empty.
                # (Not executescript(): it commits whatever transaction is open first.)
                conn.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                meta = {
                    "format": STORE_FORMAT,
                    "harness_version": __version__,
                    "scenario_name": scenario_name,
                    "started_at": started_at,
                    "status": RunStatus.RUNNING.value,
                }
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [(k, dumps(v)) for k, v in meta.items()],
                )
                conn.execute(
                    "INSERT INTO events (t, kind, name, detail) VALUES (?, ?, ?, ?)",
                    (started_at, EventKind.RUN_START.value, scenario_name, "{}"),
                )
                conn.execute(f"PRAGMA user_version = {STORE_FORMAT}")
                conn.execute("COMMIT")
            finally:
                conn.close()  # the last connection: SQLite checkpoints its WAL and deletes it
            for leftover in ("-wal", "-shm"):
                if partial.with_name(partial.name + leftover).exists():
                    raise InfrastructureError(
                        f"run store {partial}: SQLite left its {leftover[1:]} file behind"
                    )
            os.replace(partial, self.database)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run directory, for reading. BadInputError when ``path`` is not one."""
        run = cls(path)
        if not path.is_dir():
            raise BadInputError(f"run directory {path}: does not exist or is not a directory")
        if not run.database.is_file():
            raise BadInputError(f"run directory {path}: has no {DB_FILE}, not a run directory")
        try:
            with run._reader() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
        except InfrastructureError as exc:
            raise BadInputError(f"run directory {path}: {DB_FILE} is not readable: {exc}") from None
        if version != STORE_FORMAT:
            raise BadInputError(
                f"run directory {path}: store format {version}, this harness reads {STORE_FORMAT}"
            )
        return run

    def writer(self, *, clock: Callable[[], float] = time.time) -> RunWriter:
        """The store's one writer. Use it as a context manager; see :class:`RunWriter`."""
        return RunWriter(self, clock=clock)

    # -- readers ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        # mode=rw: a reader must never create an empty store where a run should be.
        uri = self.database.absolute().as_uri() + "?mode=rw"
        with wrapped(self.database, "cannot read the store"):
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA query_only = 1")
                yield conn
            finally:
                conn.close()

    @property
    def meta(self) -> dict[str, Any]:
        """Every meta value, JSON-decoded (the scenario is a dict, times are floats)."""
        with self._reader() as conn:
            rows = conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
        return {key: json.loads(value) for key, value in rows}

    @property
    def status(self) -> RunStatus:
        """The run's status; ``crashed`` when it says ``running`` but no writer holds the lock."""
        raw = self.meta.get("status")
        try:
            status = RunStatus(str(raw))
        except ValueError:
            raise InfrastructureError(
                f"run store {self.database}: unknown status {raw!r}"
            ) from None
        if status is RunStatus.RUNNING and not self._writer_alive():
            return RunStatus.CRASHED
        return status

    def _writer_alive(self) -> bool:
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except FileNotFoundError:
            return False  # no writer ever opened this run
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases our probe lock, if we got it
        return False

    def events(self) -> list[Event]:
        """Every event, in the order written."""
        with self._reader() as conn:
            rows = conn.execute("SELECT id, t, kind, name, detail FROM events ORDER BY id")
            return [
                Event(id=i, t=t, kind=EventKind(kind), name=name, detail=json.loads(detail))
                for i, t, kind, name, detail in rows
            ]

    def buckets(self, start_idx: int | None = None, end_idx: int | None = None) -> list[Bucket]:
        """Stored buckets with ``start_idx <= idx < end_idx`` (either bound optional), by idx.

        Buckets with no attempt were never written: a gap in the indices is 100 ms of silence.
        A finished run's buckets are decoded once and the same objects returned again: read
        them, never change them.
        """
        lo = start_idx if start_idx is not None else -(2**63)
        hi = end_idx if end_idx is not None else 2**63 - 1
        # Judging a run and reporting it read every bucket (18,000 for 30 minutes) one after the
        # other: a finished run's are decoded once. Only while no writer holds the store, and
        # only while its files are as they were (a writer that came since changed them).
        key = (lo, hi, *self._files_state()) if not self._writer_alive() else None
        if key is not None and self._read_once is not None and self._read_once[0] == key:
            return list(self._read_once[1])
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT idx, data FROM buckets WHERE idx >= ? AND idx < ? ORDER BY idx", (lo, hi)
            ).fetchall()
        try:
            buckets = [Bucket.from_dict(json.loads(data)) for _, data in rows]
        except (BucketFormatError, json.JSONDecodeError) as exc:
            raise InfrastructureError(f"run store {self.database}: corrupt bucket: {exc}") from None
        self._read_once = (key, buckets) if key is not None else None
        return list(buckets)

    def _files_state(self) -> tuple[int, ...]:
        """Size and modification time of the store and its write-ahead log (0s when absent)."""
        state: list[int] = []
        for path in (self.database, self.database.with_name(self.database.name + "-wal")):
            try:
                st = path.stat()
            except OSError:
                state += (0, 0)
            else:
                state += (st.st_size, st.st_mtime_ns)
        return tuple(state)

    def attempts(self) -> list[AttemptRecord]:
        """The attempt log (retried logical requests), ordered by start time."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT logical_id, attempt, t, status, latency, retry_after_followed "
                "FROM attempts ORDER BY t, rowid"
            ).fetchall()
        return [AttemptRecord._make(row) for row in rows]


class RunWriter:
    """The one writer of a run store: every method commits before it returns.

    Owned by the Locust master (workers ship to it; they never open the store). Leaving the
    ``with`` block without :meth:`finish` records ``completed`` on a normal exit,
    ``interrupted`` on KeyboardInterrupt and ``crashed`` on any other exception.
    """

    def __init__(self, run: RunDir, *, clock: Callable[[], float] = time.time) -> None:
        self.run = run
        self._clock = clock
        self._finished: RunStatus | None = None
        db = run.database
        try:
            self._lock_fd = os.open(run.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InfrastructureError(
                f"run directory {run.root}: cannot open {LOCK_FILE}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise InfrastructureError(
                f"run store {db}: another process is writing it (the master owns the writer)"
            ) from None
        conn: sqlite3.Connection | None = None
        try:
            with wrapped(db, "cannot open the store for writing"):
                if not db.is_file():  # connect() would create an empty one
                    raise InfrastructureError(f"run store {db}: missing")
                conn = sqlite3.connect(db, isolation_level=None)
                # NORMAL, not FULL: in WAL mode a commit survives the process being killed;
                # only an OS crash can lose the last commits, and FULL would fsync each one.
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.create_function(
                    "harness_merge_bucket", 2, merge_bucket_sql, deterministic=True
                )
        except BaseException:
            if conn is not None:
                conn.close()
            os.close(self._lock_fd)
            raise
        self._conn = conn

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._finished is None:
                if exc is None:
                    self.finish(RunStatus.COMPLETED)
                else:
                    status = (
                        RunStatus.INTERRUPTED
                        if isinstance(exc, KeyboardInterrupt)
                        else RunStatus.CRASHED
                    )
                    try:
                        self.finish(status, detail={"error": f"{type(exc).__name__}: {exc}"})
                    except HarnessError as finish_error:
                        # The original error is the story; don't let a full disk replace it.
                        exc.add_note(f"recording the run as {status} failed too: {finish_error}")
        finally:
            self.close()

    def close(self) -> None:
        """Close the store and release the writer lock (idempotent)."""
        if self._lock_fd < 0:
            return
        try:
            self._conn.close()
        finally:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        if self._lock_fd < 0:
            raise InfrastructureError(f"run store {self.run.database}: {action}: writer is closed")
        conn = self._conn
        with wrapped(self.run.database, action):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT (disk full), which can leave the transaction open
                # and every later BEGIN failing.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def set_meta(self, key: str, value: object) -> None:
        """Set one meta value (any JSON value)."""
        encoded = encode(self.run.database, f"meta {key!r}", value)
        with self._transaction(f"cannot write meta {key!r}") as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, encoded),
            )

    def set_scenario(self, scenario: Mapping[str, Any]) -> None:
        """Store the resolved scenario (its JSON form) with the run."""
        self.set_meta("scenario", scenario)

    def event(
        self,
        kind: EventKind | str,
        name: str = "",
        detail: Mapping[str, Any] | None = None,
        *,
        t: float | None = None,
    ) -> int:
        """Append an event (``t`` defaults to now) and return its id."""
        kind = EventKind(kind)  # ValueError on a kind the verdict would not know
        encoded = encode(self.run.database, f"event {kind} {name!r}", dict(detail or {}))
        when = self._clock() if t is None else t
        with self._transaction(f"cannot write event {kind} {name!r}") as conn:
            cursor = conn.execute(
                "INSERT INTO events (t, kind, name, detail) VALUES (?, ?, ?, ?)",
                (when, kind.value, name, encoded),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def upsert_buckets(self, parts: Iterable[Mapping[str, object]]) -> int:
        """Add serialized bucket parts, merging each into the stored bucket of its index.

        Returns the number of distinct buckets touched. A part that is not a valid serialized
        bucket rejects the whole batch (InfrastructureError) before anything is written.
        """
        try:
            merged = merge_all(parts)
        except BucketFormatError as exc:
            raise InfrastructureError(
                f"run store {self.run.database}: refusing a bad bucket: {exc}"
            ) from None
        with self._transaction(f"cannot write {len(merged)} buckets") as conn:
            conn.executemany(UPSERT_BUCKET, [(b["idx"], dumps(b)) for b in merged])
        return len(merged)

    def add_attempts(self, rows: Iterable[AttemptRecord | Sequence[Any]]) -> int:
        """Append attempt records (tuples in AttemptRecord order, e.g. as shipped); returns how
        many."""
        batch = [tuple(row) for row in rows]
        for row in batch:
            if len(row) != len(AttemptRecord._fields):
                raise InfrastructureError(
                    f"run store {self.run.database}: refusing a bad attempt record {row!r}"
                )
        with self._transaction(f"cannot write {len(batch)} attempt records") as conn:
            conn.executemany(
                "INSERT INTO attempts (logical_id, attempt, t, status, latency, "
                "retry_after_followed) VALUES (?, ?, ?, ?, ?, ?)",
                batch,
            )
        return len(batch)

    def finish(
        self,
        status: RunStatus | str,
        *,
        detail: Mapping[str, Any] | None = None,
        t: float | None = None,
    ) -> None:
        """Record how the run ended: ``ended_at``, ``status`` and a ``run_end`` event, at once."""
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise ValueError("a run cannot finish as 'running'")
        if self._finished is not None:
            raise RuntimeError(f"run already finished as {self._finished}")
        when = self._clock() if t is None else t
        end_detail = encode(
            self.run.database, "run_end", {"status": status.value, **(detail or {})}
        )
        with self._transaction(f"cannot record the end of the run ({status})") as conn:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("ended_at", dumps(when)), ("status", dumps(status.value))],
            )
            conn.execute(
                "INSERT INTO events (t, kind, name, detail) VALUES (?, ?, ?, ?)",
                (when, EventKind.RUN_END.value, status.value, end_detail),
            )
        self._finished = status
