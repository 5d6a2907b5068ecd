"""The run directory and its store: named predictably, merged exactly, durable through a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BadInputError, InfrastructureError
from harness.record import EventKind, RunDir, RunStatus, RunWriter
from harness.record.buckets import AttemptRecord, Bucket, BucketRecorder, SerializedBucket

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def fixed_clock(t: float = T0) -> Any:
    return lambda: t


def bucket_part(idx: int, *, attempts: int = 1, status: int = 200) -> SerializedBucket:
    rec = BucketRecorder()
    for _ in range(attempts):
        rec.record_attempt(
            idx / 10, 0.05, status, attempt=1, retry_after=None, logical_id=0, final=True, ok=True
        )
    (part,) = rec.drain(None)
    return part


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return RunDir.create(tmp_path / "reports", "flash_sale", clock=fixed_clock())


# -- creating --------------------------------------------------------------------------------


def test_run_directory_is_named_after_the_scenario_and_the_utc_start(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "reports", "flash_sale", clock=fixed_clock())
    assert run.root == tmp_path / "reports" / "flash_sale-20231114T221320Z"
    assert run.database.is_file()


def test_two_runs_started_in_the_same_second_get_distinct_directories(tmp_path: Path) -> None:
    runs = [RunDir.create(tmp_path, "s", clock=fixed_clock()) for _ in range(3)]
    assert [r.root.name for r in runs] == [
        "s-20231114T221320Z",
        "s-20231114T221320Z-2",
        "s-20231114T221320Z-3",
    ]


def test_scenario_names_are_made_safe_for_a_path(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "../Flash sale/2", clock=fixed_clock())
    assert run.root.parent == tmp_path
    assert run.root.name == "Flash-sale-2-20231114T221320Z"


def test_a_scenario_name_with_nothing_usable_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="scenario name"):
        RunDir.create(tmp_path, "/// ..", clock=fixed_clock())


def test_a_file_where_the_reports_directory_should_be_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("")
    with pytest.raises(BadInputError, match=f"reports directory {blocker}: not a directory"):
        RunDir.create(blocker, "s")
    with pytest.raises(BadInputError, match="not a directory"):
        RunDir.create(blocker / "deeper", "s")


def test_a_reports_directory_that_cannot_be_created_is_an_infrastructure_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(InfrastructureError, match="cannot create it: Permission denied") as info:
        RunDir.create(tmp_path / "reports", "s")
    assert "\n" not in str(info.value)
    assert str(tmp_path / "reports") in str(info.value)


def test_the_store_is_in_wal_mode_and_starts_as_running(run: RunDir) -> None:
    conn = sqlite3.connect(run.database)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    meta = run.meta
    assert meta["status"] == "running"
    assert meta["started_at"] == T0
    assert meta["scenario_name"] == "flash_sale"
    assert meta["harness_version"]
    assert [e.kind for e in run.events()] == [EventKind.RUN_START]


def test_a_reader_never_sees_a_half_made_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader polling the run directory while the store is being made (a live view, a test
    waiting for the run) sees no store yet, never one that reads as format 0."""
    real_connect = sqlite3.connect
    seen: list[str] = []

    class Spy:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self._conn = conn

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "COMMIT":  # the store's one transaction is about to be committed
                (root,) = (tmp_path / "reports").iterdir()
                with pytest.raises(BadInputError) as info:
                    RunDir.open(root)
                seen.append(str(info.value))
            return self._conn.execute(sql, *args)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: Spy(real_connect(*a, **kw)))
    run = RunDir.create(tmp_path / "reports", "flash_sale", clock=fixed_clock())
    monkeypatch.undo()
    assert len(seen) == 1
    assert "has no run.sqlite, not a run directory" in seen[0]
    assert RunDir.open(run.root).meta["status"] == "running"
    assert sorted(p.name for p in run.root.iterdir()) == ["run.sqlite"]  # nothing half-made left


def test_a_store_that_fails_half_way_leaves_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.record.store.SCHEMA", "CREATE TABLE meta (key TEXT); NONSENSE")
    with pytest.raises(InfrastructureError, match="cannot initialize the store"):
        RunDir.create(tmp_path / "reports", "flash_sale", clock=fixed_clock())
    (root,) = (tmp_path / "reports").iterdir()
    with pytest.raises(BadInputError, match="not a run directory"):
        RunDir.open(root)


# -- opening ---------------------------------------------------------------------------------


def test_opening_a_missing_directory_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        RunDir.open(tmp_path / "nope")


def test_opening_a_directory_without_a_store_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_opening_a_directory_whose_store_is_not_sqlite_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "run.sqlite").write_bytes(b"definitely not a database" * 100)
    with pytest.raises(BadInputError, match="not readable"):
        RunDir.open(tmp_path)


def test_open_reads_what_create_wrote(run: RunDir) -> None:
    again = RunDir.open(run.root)
    assert again.meta == run.meta


# -- writing and reading ---------------------------------------------------------------------


def test_events_round_trip_in_write_order(run: RunDir) -> None:
    with run.writer(clock=fixed_clock(T0 + 5)) as w:
        w.event(EventKind.PHASE_START, "spike", {"users": 500})
        w.event("fault_injected", "kill app-1", t=T0 + 7)
    events = run.events()
    assert [(e.kind, e.name, e.t) for e in events] == [
        (EventKind.RUN_START, "flash_sale", T0),
        (EventKind.PHASE_START, "spike", T0 + 5),
        (EventKind.FAULT_INJECTED, "kill app-1", T0 + 7),
        (EventKind.RUN_END, "completed", T0 + 5),
    ]
    assert events[1].detail == {"users": 500}


def test_an_unknown_event_kind_is_refused(run: RunDir) -> None:
    with run.writer() as w, pytest.raises(ValueError, match="fault_imagined"):
        w.event("fault_imagined")


def test_bucket_parts_arriving_separately_are_merged_into_their_sum(run: RunDir) -> None:
    with run.writer() as w:
        w.upsert_buckets([bucket_part(100, attempts=3), bucket_part(101)])
        w.upsert_buckets([bucket_part(100, attempts=2, status=0)])  # the other worker, later
        w.upsert_buckets([bucket_part(100), bucket_part(100)])  # twice in one batch
    buckets = run.buckets()
    assert [b.idx for b in buckets] == [100, 101]
    assert buckets[0].statuses == {200: 5, 0: 2}
    assert buckets[0].attempts == 7
    assert buckets[0].latency.count == 7


def test_buckets_are_read_by_half_open_index_range(run: RunDir) -> None:
    with run.writer() as w:
        w.upsert_buckets([bucket_part(i) for i in (5, 3, 4, 6)])
    assert [b.idx for b in run.buckets()] == [3, 4, 5, 6]
    assert [b.idx for b in run.buckets(start_idx=4, end_idx=6)] == [4, 5]
    assert [b.idx for b in run.buckets(end_idx=4)] == [3]
    assert [b.idx for b in run.buckets(start_idx=6)] == [6]


def test_a_bad_bucket_rejects_its_whole_batch(run: RunDir) -> None:
    bad = dict(bucket_part(2)) | {"v": 99}
    with run.writer() as w:
        with pytest.raises(InfrastructureError, match="refusing a bad bucket"):
            w.upsert_buckets([bucket_part(1), bad])
        assert run.buckets() == []


def test_a_corrupt_stored_bucket_is_an_infrastructure_error(run: RunDir) -> None:
    conn = sqlite3.connect(run.database)
    with conn:
        conn.execute("INSERT INTO buckets (idx, data) VALUES (7, '{\"v\": 1}')")
    conn.close()
    with pytest.raises(InfrastructureError, match="corrupt bucket"):
        run.buckets()
    with run.writer() as w, pytest.raises(InfrastructureError, match="cannot write 1 buckets"):
        w.upsert_buckets([bucket_part(7)])


def test_attempts_round_trip_and_keep_int_and_str_ids(run: RunDir) -> None:
    rows = [
        AttemptRecord("w1-9", 1, T0 + 1, 503, 0.25, None),
        AttemptRecord(9, 2, T0 + 2, 200, 0.01, 1.5),
    ]
    with run.writer() as w:
        assert w.add_attempts(reversed(rows)) == 2
        # As shipped over the wire: plain lists.
        w.add_attempts([["w1-9", 2, T0 + 3, 200, 0.02, 1.0]])
    got = run.attempts()
    assert got == [*rows, AttemptRecord("w1-9", 2, T0 + 3, 200, 0.02, 1.0)]
    assert type(got[1].logical_id) is int


def test_a_malformed_attempt_record_is_refused(run: RunDir) -> None:
    with run.writer() as w, pytest.raises(InfrastructureError, match="bad attempt record"):
        w.add_attempts([("id", 1, T0)])


def test_meta_values_keep_their_json_types(run: RunDir) -> None:
    with run.writer() as w:
        w.set_scenario({"name": "flash_sale", "phases": [{"name": "warm", "for": 30}]})
        w.set_meta("workers", 4)
    assert run.meta["scenario"]["phases"][0]["for"] == 30
    assert run.meta["workers"] == 4


def test_a_value_that_is_not_json_is_refused_with_its_key(run: RunDir) -> None:
    with run.writer() as w, pytest.raises(InfrastructureError, match="meta 'x' is not JSON"):
        w.set_meta("x", object())


# -- the end of a run ------------------------------------------------------------------------


def test_finish_records_the_status_the_end_time_and_an_event(run: RunDir) -> None:
    with run.writer(clock=fixed_clock(T0 + 60)) as w:
        w.finish(RunStatus.ABORTED, detail={"guard": "error rate"})
    assert run.meta["status"] == "aborted"
    assert run.meta["ended_at"] == T0 + 60
    assert run.status is RunStatus.ABORTED
    end = run.events()[-1]
    assert (end.kind, end.detail) == (
        EventKind.RUN_END,
        {"status": "aborted", "guard": "error rate"},
    )


def test_a_run_finishes_once(run: RunDir) -> None:
    with run.writer() as w:
        w.finish("completed")
        with pytest.raises(RuntimeError, match="already finished"):
            w.finish("aborted")


def test_leaving_the_writer_on_an_exception_records_a_crash(run: RunDir) -> None:
    with pytest.raises(ZeroDivisionError), run.writer():
        _ = 1 / 0
    assert run.status is RunStatus.CRASHED
    assert "ZeroDivisionError" in run.events()[-1].detail["error"]


def test_leaving_the_writer_on_ctrl_c_records_an_interruption(run: RunDir) -> None:
    with pytest.raises(KeyboardInterrupt), run.writer():
        raise KeyboardInterrupt
    assert run.status is RunStatus.INTERRUPTED


def test_a_running_run_without_a_live_writer_reads_as_crashed(run: RunDir) -> None:
    w = run.writer()
    try:
        while_writing = run.status
    finally:
        w.close()  # closed without finishing: what a killed master leaves behind
    after = run.status
    assert while_writing is RunStatus.RUNNING
    assert run.meta["status"] == "running"
    assert after is RunStatus.CRASHED


# -- one writer, many readers ----------------------------------------------------------------


def test_a_second_writer_is_refused(run: RunDir) -> None:
    with run.writer():
        with pytest.raises(InfrastructureError, match="another process is writing"):
            run.writer()
        # Refusing it must not have released the first writer's lock.
        assert run.status is RunStatus.RUNNING


def test_the_writer_refuses_another_thread(run: RunDir) -> None:
    errors: list[BaseException] = []
    with run.writer() as w:

        def write() -> None:
            try:
                w.event("note", "from a thread")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=write)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert isinstance(errors[0], InfrastructureError)


def test_a_closed_writer_refuses_to_write(run: RunDir) -> None:
    w = run.writer()
    w.close()
    w.close()
    with pytest.raises(InfrastructureError, match="writer is closed"):
        w.event("note")


def test_readers_see_each_write_as_soon_as_it_returns(run: RunDir) -> None:
    reader = RunDir.open(run.root)
    with run.writer() as w:
        for i in range(5):
            w.upsert_buckets([bucket_part(i)])
            assert len(reader.buckets()) == i + 1


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from harness.record.buckets import BucketRecorder
    from harness.record import RunDir

    run = RunDir.open(Path(sys.argv[1]))
    w = run.writer()
    w.set_scenario({"name": "killed"})
    for i in range(1_000_000):
        rec = BucketRecorder()
        rec.record_attempt(i / 10, 0.01, 200, attempt=2, retry_after=None,
                           logical_id=i, final=True, ok=True)
        w.upsert_buckets(rec.drain(None))
        w.add_attempts(rec.drain_attempts()[0])
        w.event("note", str(i))
        print(i, flush=True)  # only after the three commits above returned
    """
)


def test_a_writer_killed_mid_run_keeps_everything_it_committed(run: RunDir) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(run.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        last = -1
        deadline = time.monotonic() + 60
        while last < 200 and time.monotonic() < deadline:
            line = child.stdout.readline()
            assert line, "the writer exited before it was killed"
            last = int(line)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert last >= 200

    reread = RunDir.open(run.root)
    buckets = reread.buckets()
    # Everything reported committed is there, whole; at most the writes in flight are missing.
    assert len(buckets) >= last + 1
    assert [b.idx for b in buckets] == list(range(len(buckets)))
    assert all(b.attempts == 1 == b.retries for b in buckets)
    assert len(reread.attempts()) >= last + 1
    notes = [e.name for e in reread.events() if e.kind is EventKind.NOTE]
    assert notes[: last + 1] == [str(i) for i in range(last + 1)]
    assert reread.meta["scenario"] == {"name": "killed"}
    assert reread.status is RunStatus.CRASHED


def test_stored_buckets_read_back_as_buckets(run: RunDir) -> None:
    part = bucket_part(42, attempts=4)
    with run.writer() as w:
        w.upsert_buckets([part])
    (b,) = run.buckets()
    assert isinstance(b, Bucket)
    assert b.to_dict() == part


def test_a_finished_runs_buckets_are_read_once_and_a_new_write_is_seen(run: RunDir) -> None:
    with run.writer() as writer:
        writer.upsert_buckets([bucket_part(17_000_000_000, attempts=2)])
        live = run.buckets()
        writer.upsert_buckets([bucket_part(17_000_000_000)])
        # While a writer holds the store, every read is a fresh one.
        assert [b.attempts for b in run.buckets()] == [3]
        assert live[0].attempts == 2
    first = run.buckets()
    again = run.buckets()
    assert again == first
    assert again is not first  # a list of its own; the buckets are shared
    assert again[0] is first[0]
    assert run.buckets(17_000_000_001) == []  # another range: read for itself
    # A writer that came since: its files changed, so the next read sees what it wrote.
    with RunWriter(run) as writer:
        writer.upsert_buckets([bucket_part(17_000_000_001)])
    assert [(b.idx, b.attempts) for b in run.buckets()] == [
        (17_000_000_000, 3),
        (17_000_000_001, 1),
    ]
