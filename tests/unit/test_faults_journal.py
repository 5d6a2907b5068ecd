"""The fault journal: one fsync'd JSON line per step, one writer, readable after a SIGKILL, and
mirrored into the run store."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.faults import FaultEvent, Journal, run_store_listener
from harness.faults.toxic import AddToxics, ToxicSpec
from harness.record import EventKind, RunDir

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.

WALL = 1_700_000_000.0


def toxic(name: str = "slow-db") -> AddToxics:
    spec = ToxicSpec(f"harness-{name}", "latency", attributes=(("latency", 800), ("jitter", 0)))
    return AddToxics(name, "app-db", (spec,), "http://127.0.0.1:1")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "faults.jsonl"


def test_each_step_is_one_json_line_and_the_record_rides_on_the_first(path: Path) -> None:
    fault = toxic()
    with Journal(path, clock=lambda: WALL) as journal:
        entry = journal.journaled(fault, at=1.0)
        journal.injected(entry, fault)
        journal.failed(entry, fault.name, "revert", "toxiproxy said no", fault, attempt=1)
        journal.reverted(entry, fault)

    written = lines(path)
    assert [line["op"] for line in written] == ["journaled", "injected", "error", "reverted"]
    assert {line["id"] for line in written} == {entry}
    assert all(line["v"] == 1 and line["name"] == "slow-db" for line in written)
    assert written[0]["record"] == fault.to_record()
    assert written[0]["pid"] == os.getpid()
    assert (written[2]["step"], written[2]["error"]) == ("revert", "toxiproxy said no")


def test_pending_means_journaled_and_not_reverted(path: Path) -> None:
    a, b, c = toxic("a"), toxic("b"), toxic("c")
    with Journal(path) as journal:
        ids = {f.name: journal.journaled(f) for f in (a, b, c)}
        journal.injected(ids["a"], a)
        journal.injected(ids["b"], b)
        journal.reverted(ids["b"], b)
        journal.failed(ids["c"], "c", "inject", "refused", c)

    pending = Journal(path).pending()  # readable without being the writer
    assert [(p.name, p.injected, p.errors) for p in pending] == [
        ("a", True, ()),
        ("c", False, ("inject: refused",)),
    ]
    assert pending[0].record == a.to_record()
    assert pending[0].kind == "toxic"


def test_the_journal_is_readable_by_its_owner_only(path: Path) -> None:
    # Records may carry the shop's admin token.
    with Journal(path) as journal:
        journal.journaled(toxic())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_second_writer_is_refused_naming_the_first(path: Path) -> None:
    with (
        Journal(path),
        pytest.raises(InfrastructureError, match=f"in use by process {os.getpid()}"),
    ):
        Journal(path).open()
    Journal(path).open().close()  # free again once the first closed


def test_writing_without_being_the_writer_is_refused(path: Path) -> None:
    with pytest.raises(InfrastructureError, match="not open for writing"):
        Journal(path).journaled(toxic())


def test_failed_never_raises_and_the_event_still_goes_out(path: Path) -> None:
    events: list[FaultEvent] = []
    Journal(path, on_event=events.append).failed("x", "a", "inject", "boom")  # not open
    (event,) = events
    assert event.kind is EventKind.FAULT_ERROR
    assert "not open for writing" in event.detail["journal_error"]


# --- surviving crashes ----------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from harness.faults import Journal
    from harness.faults.toxic import AddToxics, ToxicSpec

    spec = ToxicSpec("harness-slow-db", "latency", attributes=(("latency", 800),))
    fault = AddToxics("slow-db", "app-db", (spec,), "http://127.0.0.1:1")
    journal = Journal(sys.argv[1]).open()
    journal.injected(journal.journaled(fault), fault)
    print("written", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.integration  # a process it kills
def test_the_journal_survives_a_sigkilled_writer_and_frees_its_lock(path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "written"
        with pytest.raises(InfrastructureError, match=f"in use by process {writer.pid}"):
            Journal(path).open()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        if writer.stdout is not None:
            writer.stdout.close()

    (pending,) = Journal(path).pending()
    assert (pending.name, pending.injected, pending.pid) == ("slow-db", True, writer.pid)
    assert pending.record["toxics"][0]["name"] == "harness-slow-db"
    Journal(path).open().close()  # the kernel released the dead writer's lock


def test_a_torn_last_line_is_dropped_and_the_next_line_starts_fresh(path: Path) -> None:
    with Journal(path) as journal:
        kept = journal.journaled(toxic("kept"))
    with open(path, "ab") as out:  # a crash in the middle of writing the next line
        out.write(b'{"v":1,"op":"journaled","id":"torn","na')

    contents = Journal(path).read()
    assert contents.torn_tail
    assert contents.problems == ()
    assert [p.id for p in contents.pending()] == [kept]

    with Journal(path) as journal:
        journal.journaled(toxic("next"))
    assert [line["name"] for line in lines(path)] == ["kept", "next"]


def test_an_unreadable_line_in_the_middle_is_reported_not_guessed(path: Path) -> None:
    with Journal(path) as journal:
        journal.journaled(toxic("a"))
    with open(path, "ab") as out:
        out.write(b"this is not json\n")
        out.write(b'{"v":99,"op":"journaled","id":"x","name":"future","t":1}\n')
    with Journal(path) as journal:
        journal.journaled(toxic("b"))

    contents = Journal(path).read()
    assert [p.name for p in contents.pending()] == ["a", "b"]
    assert len(contents.problems) == 2
    assert "line 2: not JSON" in contents.problems[0]
    assert "line 3: format 99" in contents.problems[1]


def test_clear_sets_the_journal_aside(path: Path) -> None:
    with Journal(path) as journal:
        fault = toxic()
        journal.reverted(journal.journaled(fault), fault)
        journal.clear()
        assert not path.exists()
        assert [line["op"] for line in lines(journal.previous_file)] == ["journaled", "reverted"]
        journal.journaled(toxic("after"))  # a fresh journal from here on
    assert [line["name"] for line in lines(path)] == ["after"]


# --- events -----------------------------------------------------------------------------------


def test_steps_land_in_the_run_store_as_fault_events(path: Path, tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "reports", "s", clock=lambda: WALL)
    fault = toxic()
    with run.writer() as writer, Journal(path, on_event=run_store_listener(writer)) as journal:
        entry = journal.journaled(fault)
        journal.injected(entry, fault)
        journal.failed(entry, fault.name, "revert", "no answer", fault)
        journal.reverted(entry, fault)

    events = [e for e in run.events() if e.kind.value.startswith("fault_")]
    assert [e.kind for e in events] == [
        EventKind.FAULT_JOURNALED,
        EventKind.FAULT_INJECTED,
        EventKind.FAULT_ERROR,
        EventKind.FAULT_REVERTED,
    ]
    assert all(e.name == "slow-db" and e.detail["id"] == entry for e in events)
    assert events[0].detail["kind"] == "toxic"
    assert events[0].detail["target"] == "app-db"
    assert events[2].detail["error"] == "no answer"
    assert "record" not in events[0].detail


def test_events_never_carry_the_admin_token(path: Path) -> None:
    from harness.faults.maintenance import MaintenanceMode

    events: list[FaultEvent] = []
    fault = MaintenanceMode("m", ("http://127.0.0.1:1/admin/maintenance",), "s3cret-token")
    with Journal(path, on_event=events.append) as journal:
        journal.journaled(fault)
    assert "s3cret-token" not in json.dumps([dict(e.detail) for e in events])
    assert "s3cret-token" in path.read_text()  # the journal needs it to revert


def test_a_failing_listener_is_logged_and_counted_and_the_step_still_lands(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: FaultEvent) -> None:
        raise InfrastructureError("run store full")

    heard: list[FaultEvent] = []
    with Journal(path, on_event=broken) as journal:
        journal.add_listener(heard.append)
        journal.journaled(toxic())
    assert len(heard) == 1  # the next listener still hears it
    assert journal.listener_errors == [
        "fault_journaled slow-db: InfrastructureError: run store full"
    ]
    assert "listener failed" in caplog.text
    assert len(Journal(path).pending()) == 1


def test_a_journal_that_is_a_symbolic_link_is_refused_and_its_target_left_whole(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("line one\nhalf a line")  # what a torn-tail cut would shorten
    state = tmp_path / "state"
    state.mkdir()
    (state / "faults.jsonl").symlink_to(victim)
    journal = Journal.in_state_dir(state)
    with pytest.raises(InfrastructureError, match=r"faults\.jsonl: cannot read it"):
        journal.pending()
    with pytest.raises(InfrastructureError), journal:
        journal.journaled(toxic())  # opening it to write is refused as well
    assert victim.read_text() == "line one\nhalf a line"


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o640])
def test_a_journal_others_could_use_is_refused(path: Path, mode: int) -> None:
    with Journal(path) as journal:
        journal.journaled(toxic())
    path.chmod(mode)
    with pytest.raises(InfrastructureError, match=rf"refused: mode {mode:o}, not 600"):
        Journal(path).pending()
