"""Faults by hand on the fault timeline (a game day): journaled before they are injected, with
who did it; reverted by hand, by their duration, or with everything else on the way out."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.faults import FaultEvent, FaultTimeline, Journal
from harness.faults.timeline import FaultConflict, UnknownFault
from harness.record import EventKind

from .test_faults_timeline import FakeClock, FakeFault

pytestmark = pytest.mark.unit


def timeline_with(
    tmp_path: Path, log: list[str], events: list[FaultEvent], clock: FakeClock
) -> tuple[FaultTimeline, Journal]:
    journal = Journal(tmp_path / "faults.jsonl", on_event=events.append).open()
    drill = FakeFault("drill", log)
    timeline = FaultTimeline([(drill, 5.0, 8.0)], journal, clock=clock, sleep=lambda _: None)
    timeline.set_catalogue(
        {"drill": lambda: FakeFault("drill", log), "slow": lambda: FakeFault("slow", log)}
    )
    timeline.start()
    return timeline, journal


def test_a_fault_by_hand_is_journaled_with_who_before_it_is_injected(tmp_path: Path) -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    clock = FakeClock()
    timeline, journal = timeline_with(tmp_path, log, events, clock)

    def pending_at_inject() -> None:
        log.append(f"pending: {[p.name for p in journal.pending()]}")

    timeline.set_catalogue({"slow": lambda: FakeFault("slow", log, on_inject=pending_at_inject)})
    clock.at(1.5)
    view = timeline.inject_now("slow", who="ana@box", for_s=2.0)

    assert log == ["inject slow", "pending: ['slow']"]  # on disk before inject() ran
    assert (view.state, view.manual, view.who, view.start, view.end) == (
        "active",
        True,
        "ana@box",
        1.5,
        3.5,
    )
    journaled, injected = (e for e in events if e.name == "slow")
    assert journaled.kind is EventKind.FAULT_JOURNALED
    assert injected.kind is EventKind.FAULT_INJECTED
    assert injected.detail["manual"] is True
    assert injected.detail["who"] == "ana@box"
    # A kill -9 now leaves it in the journal, where `harness rollback` finds it.
    (pending,) = journal.pending()
    assert (pending.name, pending.injected) == ("slow", True)


def test_a_fault_by_hand_is_reverted_when_its_duration_is_up(tmp_path: Path) -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    clock = FakeClock()
    timeline, journal = timeline_with(tmp_path, log, events, clock)
    clock.at(1.0)
    timeline.inject_now("slow", who="ana", for_s=2.0)
    clock.at(2.9)
    timeline.tick()
    assert timeline.active() == ["slow"]
    clock.at(3.0)
    timeline.tick()
    assert timeline.active() == []
    assert log == ["inject slow", "revert slow"]
    reverted = [e for e in events if e.kind is EventKind.FAULT_REVERTED]
    assert [(e.name, e.detail.get("reverted_by")) for e in reverted] == [("slow", None)]
    assert journal.pending() == []


def test_revert_by_hand_names_who_and_leaves_the_schedule_running(tmp_path: Path) -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    clock = FakeClock()
    timeline, journal = timeline_with(tmp_path, log, events, clock)
    timeline.inject_now("slow", who="ana")
    (view,) = timeline.revert_now("slow", who="bo")
    assert (view.state, view.reverted_by) == ("reverted", "bo")
    (reverted,) = [e for e in events if e.kind is EventKind.FAULT_REVERTED]
    assert reverted.detail["reverted_by"] == "bo"
    assert reverted.detail["who"] == "ana"

    clock.at(5.0)
    timeline.tick()  # the scheduled drill still comes: reverting by hand closes nothing
    assert timeline.active() == ["drill"]
    assert [v.state for v in timeline.revert_now(None, who="bo")] == ["reverted"]
    assert journal.pending() == []


def test_a_fault_in_force_cannot_be_injected_twice_and_its_schedule_is_skipped(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    clock = FakeClock()
    timeline, _ = timeline_with(tmp_path, log, events, clock)
    timeline.inject_now("drill", who="ana")
    with pytest.raises(FaultConflict, match="already in force"):
        timeline.inject_now("drill", who="bo")
    clock.at(5.0)
    timeline.tick()
    assert log == ["inject drill"]  # once: the schedule's turn was skipped
    (skipped,) = [e for e in events if e.kind is EventKind.FAULT_ERROR]
    assert skipped.detail["step"] == "schedule"
    assert [v.state for v in timeline.views()] == ["active", "skipped"]


def test_unknown_names_and_faults_not_in_force_are_refused(tmp_path: Path) -> None:
    timeline, _ = timeline_with(tmp_path, [], [], FakeClock())
    with pytest.raises(UnknownFault, match=r"no fault 'nope' .*drill, slow"):
        timeline.inject_now("nope", who="ana")
    with pytest.raises(UnknownFault):
        timeline.revert_now("nope", who="ana")
    with pytest.raises(FaultConflict, match="not in force"):
        timeline.revert_now("slow", who="ana")


def test_faults_by_hand_are_reverted_on_the_way_out_and_none_after_it(tmp_path: Path) -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    timeline, journal = timeline_with(tmp_path, log, events, FakeClock())
    timeline.inject_now("slow", who="ana")
    assert timeline.revert_all() == []
    assert log == ["inject slow", "revert slow"]
    assert journal.pending() == []
    with pytest.raises(FaultConflict, match="not going"):
        timeline.inject_now("slow", who="ana")
    assert log == ["inject slow", "revert slow"]


def test_a_failed_inject_by_hand_is_reverted_and_reported(tmp_path: Path) -> None:
    log: list[str] = []
    events: list[FaultEvent] = []
    timeline, journal = timeline_with(tmp_path, log, events, FakeClock())
    timeline.set_catalogue(
        {"bad": lambda: FakeFault("bad", log, inject_error=RuntimeError("half done"))}
    )
    view = timeline.inject_now("bad", who="ana")
    assert view.error == "RuntimeError: half done"
    timeline.tick()  # due for revert at once: it may have half-applied
    assert log == ["inject bad", "revert bad"]
    assert journal.pending() == []
