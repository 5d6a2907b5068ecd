"""The fault timeline with a fake clock and fake faults: on time, every revert attempted, on
every way out, and journaled before anything is injected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BadInputError, InfrastructureError
from harness.faults import FaultEvent, FaultTimeline, Journal
from harness.record import EventKind

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        self.now = 1000.0 + offset


@dataclass(eq=False)
class FakeFault:
    """Records each call in a log shared by all faults; raises what it is told to."""

    name: str
    log: list[str]
    self_healing: bool = False
    inject_error: BaseException | None = None
    # Raised by successive reverts, one each, then reverts succeed; `always` never succeeds.
    revert_errors: list[BaseException] = field(default_factory=list)
    always_fails: bool = False
    in_force: bool = False
    on_inject: Any = None

    kind: str = "fake"
    target: str | None = None

    def describe(self) -> str:
        return f"fake fault {self.name}"

    def inject(self) -> None:
        self.log.append(f"inject {self.name}")
        if self.on_inject is not None:
            self.on_inject()
        self.in_force = True  # even when it raises below: a half-applied fault
        if self.inject_error is not None:
            raise self.inject_error

    def revert(self) -> None:
        self.log.append(f"revert {self.name}")
        if self.always_fails:
            raise InfrastructureError(f"{self.name} will not go")
        if self.revert_errors:
            raise self.revert_errors.pop(0)
        self.in_force = False

    def to_record(self) -> dict[str, Any]:
        return {"v": 1, "kind": self.kind, "name": self.name, "target": None}


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[FaultEvent]:
    return []


@pytest.fixture
def journal(tmp_path: Path, events: list[FaultEvent]) -> Any:
    with Journal(tmp_path / "faults.jsonl", on_event=events.append) as opened:
        yield opened


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(
    faults: list[tuple[FakeFault, float, float | None]],
    journal: Journal,
    clock: FakeClock,
    sleeps: list[float],
) -> FaultTimeline:
    timeline = FaultTimeline(faults, journal, clock=clock, sleep=sleeps.append)
    timeline.start()
    return timeline


def kinds(events: list[FaultEvent], name: str) -> list[EventKind]:
    return [e.kind for e in events if e.name == name]


# --- on time ----------------------------------------------------------------------------------


def test_faults_are_injected_and_reverted_at_their_offsets(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    a, b = FakeFault("a", log), FakeFault("b", log)
    timeline = make([(a, 1.0, 3.0), (b, 2.0, None)], journal, clock, sleeps)

    seen = []
    for offset in (0.0, 0.99, 1.0, 2.5, 3.0, 50.0):
        clock.at(offset)
        timeline.tick()
        seen.append((offset, list(log), timeline.active()))

    assert seen == [
        (0.0, [], []),
        (0.99, [], []),
        (1.0, ["inject a"], ["a"]),
        (2.5, ["inject a", "inject b"], ["a", "b"]),
        (3.0, ["inject a", "inject b", "revert a"], ["b"]),
        (50.0, ["inject a", "inject b", "revert a"], ["b"]),  # no end: until revert_all
    ]
    assert timeline.revert_all() == []
    assert log[-1] == "revert b"
    assert journal.pending() == []


def test_a_fault_due_and_expired_in_one_late_tick_is_injected_and_reverted(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    timeline = make([(FakeFault("brief", log), 1.0, 2.0)], journal, clock, sleeps)
    clock.at(5.0)
    timeline.tick()
    assert log == ["inject brief", "revert brief"]
    assert timeline.active() == []


def test_steps_are_mirrored_as_events_with_wall_clock_times(
    tmp_path: Path, log: list[str], clock: FakeClock
) -> None:
    events: list[FaultEvent] = []
    wall = iter(range(1_700_000_000, 1_700_000_100))
    with Journal(tmp_path / "j.jsonl", clock=lambda: float(next(wall))) as journal:
        timeline = FaultTimeline(
            [(FakeFault("a", log), 0.0, 1.0)], journal, clock=clock, on_event=events.append
        )
        timeline.start()
        timeline.tick()
        clock.at(1.0)
        timeline.tick()

    assert [e.kind for e in events] == [
        EventKind.FAULT_JOURNALED,
        EventKind.FAULT_INJECTED,
        EventKind.FAULT_REVERTED,
    ]
    assert [e.t for e in events] == sorted(e.t for e in events)
    assert all(e.t >= 1_700_000_000 for e in events)
    journaled = events[0].detail
    assert journaled["description"] == "fake fault a"
    assert (journaled["at"], journaled["until"]) == (0.0, 1.0)
    assert len({e.detail["id"] for e in events}) == 1


# --- journaled first ----------------------------------------------------------------------------


def test_a_fault_is_journaled_before_it_is_injected(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    pending_during_inject: list[list[str]] = []
    fault = FakeFault("a", log)
    fault.on_inject = lambda: pending_during_inject.append([p.name for p in journal.pending()])
    make([(fault, 0.0, None)], journal, clock, sleeps).tick()
    assert pending_during_inject == [["a"]]


def test_a_fault_whose_inject_raises_stays_pending_until_it_is_reverted(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    fault = FakeFault("a", log, inject_error=InfrastructureError("half done"), always_fails=True)
    timeline = make([(fault, 0.0, None)], journal, clock, sleeps)
    timeline.tick()
    timeline.revert_all()
    (pending,) = journal.pending()
    assert pending.name == "a"
    assert not pending.injected
    assert any("half done" in error for error in pending.errors)


def test_a_fault_that_cannot_be_journaled_is_never_injected(
    tmp_path: Path, log: list[str], clock: FakeClock, events: list[FaultEvent]
) -> None:
    closed = Journal(tmp_path / "j.jsonl", on_event=events.append)  # never opened: writes fail
    timeline = FaultTimeline([(FakeFault("a", log), 0.0, None)], closed, clock=clock)
    timeline.start()
    timeline.tick()
    assert log == []
    assert timeline.active() == []
    assert kinds(events, "a") == [EventKind.FAULT_ERROR]
    assert events[0].detail["step"] == "journal"
    assert timeline.revert_all() == []


# --- failures stay with their fault ------------------------------------------------------------


def test_revert_runs_when_inject_raises(
    log: list[str],
    journal: Journal,
    clock: FakeClock,
    sleeps: list[float],
    events: list[FaultEvent],
) -> None:
    fault = FakeFault("a", log, inject_error=InfrastructureError("refused halfway"))
    timeline = make([(fault, 0.0, 10.0)], journal, clock, sleeps)
    timeline.tick()  # does not raise
    assert log == ["inject a", "revert a"]  # at once, not at its end: it may have half-applied
    assert not fault.in_force
    assert kinds(events, "a") == [
        EventKind.FAULT_JOURNALED,
        EventKind.FAULT_ERROR,
        EventKind.FAULT_REVERTED,
    ]
    error = next(e for e in events if e.kind is EventKind.FAULT_ERROR)
    assert error.detail["step"] == "inject"
    assert "refused halfway" in error.detail["error"]
    assert journal.pending() == []


def test_a_failed_inject_does_not_stop_the_next_fault(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    bad = FakeFault("bad", log, inject_error=RuntimeError("bug"))
    good = FakeFault("good", log)
    timeline = make([(bad, 0.0, None), (good, 0.0, None)], journal, clock, sleeps)
    timeline.tick()
    assert good.in_force
    assert timeline.active() == ["good"]


def test_a_failing_revert_does_not_skip_the_others(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    faults = [FakeFault(n, log, always_fails=(n == "b")) for n in ("a", "b", "c")]
    timeline = make([(f, 0.0, None) for f in faults], journal, clock, sleeps)
    timeline.tick()

    failures = timeline.revert_all()

    assert [f.name for f in failures] == ["b"]
    assert "b will not go" in failures[0].error
    assert failures[0].description == "fake fault b"
    assert not faults[0].in_force
    assert not faults[2].in_force
    # Newest first; then the failure alone, twice more, after a growing backoff.
    assert log[3:] == ["revert c", "revert b", "revert a", "revert b", "revert b"]
    assert sleeps == [0.5, 1.0]
    assert [p.name for p in journal.pending()] == ["b"]
    assert timeline.unreverted == failures


def test_revert_all_retries_a_revert_that_fails_at_first(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    flaky = FakeFault("flaky", log, revert_errors=[InfrastructureError("not yet")])
    timeline = make([(flaky, 0.0, None)], journal, clock, sleeps)
    timeline.tick()
    assert timeline.revert_all() == []
    assert log.count("revert flaky") == 2
    assert sleeps == [0.5]


def test_a_revert_that_fails_in_a_tick_is_retried_by_a_later_tick(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    flaky = FakeFault("flaky", log, revert_errors=[InfrastructureError("busy")])
    timeline = make([(flaky, 0.0, 1.0)], journal, clock, sleeps)
    for offset in (0.0, 1.0, 1.5, 2.0):
        clock.at(offset)
        timeline.tick()
    # Failed at 1.0; not hammered at 1.5; retried once the retry interval (1 s) passed.
    assert log == ["inject flaky", "revert flaky", "revert flaky"]
    assert timeline.active() == []


# --- every way out --------------------------------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize("way_out", ["normal", "exception", "keyboard-interrupt-in-inject"])
def test_revert_all_runs_on_every_way_out_of_the_block(
    way_out: str, log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    first = FakeFault("first", log)
    second = FakeFault("second", log)
    if way_out == "keyboard-interrupt-in-inject":
        second.inject_error = KeyboardInterrupt()
    expected: type[BaseException] | None = {
        "normal": None,
        "exception": Boom,
        "keyboard-interrupt-in-inject": KeyboardInterrupt,
    }[way_out]

    def run() -> None:
        with FaultTimeline(
            [(first, 0.0, None), (second, 1.0, None)], journal, clock=clock, sleep=sleeps.append
        ) as timeline:
            timeline.start()
            timeline.tick()
            clock.at(1.0)
            timeline.tick()
            if way_out == "exception":
                raise Boom

    if expected is None:
        run()
    else:
        with pytest.raises(expected):
            run()
    assert not first.in_force
    assert not second.in_force  # even the one interrupted halfway through its inject
    assert journal.pending() == []


def test_an_interrupt_during_revert_all_still_attempts_every_revert(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    faults = [FakeFault(n, log) for n in ("a", "b", "c")]
    faults[1].revert_errors = [KeyboardInterrupt()]
    timeline = make([(f, 0.0, None) for f in faults], journal, clock, sleeps)
    timeline.tick()

    with pytest.raises(KeyboardInterrupt):
        timeline.revert_all()

    assert not faults[0].in_force
    assert not faults[2].in_force
    assert sleeps == []  # no retry pass after an interrupt: the user wants out
    assert [f.name for f in timeline.unreverted] == ["b"]
    assert [p.name for p in journal.pending()] == ["b"]


def run_stuck(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float], error: bool
) -> None:
    stuck = FakeFault("stuck", log, always_fails=True)
    with FaultTimeline([(stuck, 0.0, None)], journal, clock=clock, sleep=sleeps.append) as tl:
        tl.start()
        tl.tick()
        if error:
            raise Boom


def test_leaving_the_block_with_a_fault_unreverted_raises_naming_it(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    with pytest.raises(InfrastructureError, match=r"could not revert stuck .*harness rollback"):
        run_stuck(log, journal, clock, sleeps, error=False)


def test_an_error_leaving_the_block_keeps_its_story_and_notes_the_unreverted(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    with pytest.raises(Boom) as raised:
        run_stuck(log, journal, clock, sleeps, error=True)
    assert any("could not revert stuck" in note for note in raised.value.__notes__)


def test_revert_all_closes_the_timeline(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    timeline = make([(FakeFault("late", log), 5.0, None)], journal, clock, sleeps)
    timeline.revert_all()
    clock.at(6.0)
    timeline.tick()
    assert log == []


def test_revert_all_during_an_inject_reverts_that_fault_once_its_inject_returns(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    # A signal handler on the same thread runs revert_all while the inject is under way.
    fault = FakeFault("a", log)
    later = FakeFault("later", log)
    timeline = make([(fault, 0.0, None), (later, 0.0, None)], journal, clock, sleeps)
    fault.on_inject = timeline.revert_all
    timeline.tick()
    assert not fault.in_force
    assert log == ["inject a", "revert a", "revert a"]  # "later" is never injected
    assert journal.pending() == []


def test_revert_all_twice_is_harmless(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    timeline = make([(FakeFault("a", log), 0.0, None)], journal, clock, sleeps)
    timeline.tick()
    assert timeline.revert_all() == []
    assert timeline.revert_all() == []
    assert log == ["inject a", "revert a"]


# --- self-healing faults ------------------------------------------------------------------------


def test_a_self_healing_fault_counts_as_reverted_once_injected(
    log: list[str],
    journal: Journal,
    clock: FakeClock,
    sleeps: list[float],
    events: list[FaultEvent],
) -> None:
    restart = FakeFault("restart", log, self_healing=True)
    timeline = make([(restart, 0.0, None)], journal, clock, sleeps)
    timeline.tick()
    assert timeline.active() == []
    assert journal.pending() == []
    reverted = next(e for e in events if e.kind is EventKind.FAULT_REVERTED)
    assert reverted.detail["self_healing"] is True
    timeline.revert_all()
    assert log == ["inject restart"]  # nothing to revert


def test_a_self_healing_fault_whose_inject_raises_is_reverted(
    log: list[str], journal: Journal, clock: FakeClock, sleeps: list[float]
) -> None:
    restart = FakeFault("restart", log, self_healing=True, inject_error=InfrastructureError("x"))
    make([(restart, 0.0, None)], journal, clock, sleeps).tick()
    assert log == ["inject restart", "revert restart"]


# --- usage errors -------------------------------------------------------------------------------


def test_two_faults_with_one_name_are_refused(log: list[str], journal: Journal) -> None:
    with pytest.raises(BadInputError, match="two faults named 'a'"):
        FaultTimeline([(FakeFault("a", log), 0.0, None), (FakeFault("a", log), 1.0, None)], journal)


def test_a_window_that_ends_before_it_starts_is_refused(log: list[str], journal: Journal) -> None:
    with pytest.raises(BadInputError, match="bad window"):
        FaultTimeline([(FakeFault("a", log), 5.0, 1.0)], journal)


def test_tick_before_start_is_a_programming_error(log: list[str], journal: Journal) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        FaultTimeline([(FakeFault("a", log), 0.0, None)], journal).tick()
