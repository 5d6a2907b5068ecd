"""The fault timeline as a scheduler, on an injectable clock: it says when its next step is due,
records the time each fault was due beside the time it was in force, keeps a slow step from
holding up the others, and retries a revert that failed. No real sleeps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.faults import FaultEvent, FaultTimeline, Journal
from harness.record import EventKind

pytestmark = pytest.mark.unit

T0 = 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        self.now = T0 + offset


@dataclass(eq=False)
class Fault:
    name: str
    clock: Clock
    log: list[str]
    inject_s: float = 0.0  # how long inject() takes on the clock
    revert_failures: int = 0
    kind: str = "fake"
    target: str | None = None
    self_healing: bool = False
    calls: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"fake {self.name}"

    def inject(self) -> None:
        self.log.append(f"inject {self.name} @{self.clock.now - T0:g}")
        self.clock.now += self.inject_s

    def revert(self) -> None:
        self.log.append(f"revert {self.name} @{self.clock.now - T0:g}")
        if self.revert_failures:
            self.revert_failures -= 1
            raise InfrastructureError(f"{self.name} will not go yet")

    def to_record(self) -> dict[str, Any]:
        return {"v": 1, "kind": self.kind, "name": self.name, "target": None}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def events() -> list[FaultEvent]:
    return []


@pytest.fixture
def journal(tmp_path: Path, clock: Clock, events: list[FaultEvent]) -> Any:
    # The journal stamps events on the same clock, so "in force" and "due" compare exactly.
    with Journal(tmp_path / "faults.jsonl", on_event=events.append, clock=clock) as opened:
        yield opened


def timeline(
    faults: list[tuple[Fault, float, float | None]],
    journal: Journal,
    clock: Clock,
    **options: Any,
) -> FaultTimeline:
    made = FaultTimeline(faults, journal, clock=clock, sleep=lambda _: None, **options)
    made.start()
    return made


def one(events: list[FaultEvent], kind: EventKind, name: str) -> FaultEvent:
    (event,) = [e for e in events if e.kind is kind and e.name == name]
    return event


def skew(event: FaultEvent) -> float:
    return round(event.t - event.detail["scheduled"], 6)


def test_tick_says_when_the_next_step_is_due(
    clock: Clock, log: list[str], journal: Journal
) -> None:
    a, b = Fault("a", clock, log), Fault("b", clock, log)
    plan = timeline([(a, 1.5, 4.0), (b, 2.0, None)], journal, clock)
    assert plan.tick() == 1.5
    clock.at(1.5)
    assert plan.tick() == 2.0
    clock.at(2.0)
    assert plan.tick() == 4.0  # a's revert; b has no end
    clock.at(4.0)
    assert plan.tick() is None
    assert log == ["inject a @1.5", "inject b @2", "revert a @4"]


def test_faults_due_at_the_same_instant_are_all_injected_by_one_tick(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    a, b, c = (Fault(name, clock, log) for name in "abc")
    plan = timeline([(a, 3.0, 5.0), (b, 3.0, 5.0), (c, 3.0, None)], journal, clock)
    clock.at(3.0)
    assert plan.tick() == 5.0
    assert log == ["inject a @3", "inject b @3", "inject c @3"]
    for name in "abc":
        injected = one(events, EventKind.FAULT_INJECTED, name)
        assert injected.detail["scheduled"] == T0 + 3.0
        assert skew(injected) == 0.0
    clock.at(5.0)
    plan.tick()
    assert [one(events, EventKind.FAULT_REVERTED, n).detail["scheduled"] for n in "ab"] == [
        T0 + 5.0,
        T0 + 5.0,
    ]


def test_a_fault_due_before_a_late_start_comes_at_once_and_shows_how_late(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    fault = Fault("early", clock, log)
    plan = FaultTimeline([(fault, 1.0, 2.0)], journal, clock=clock)
    clock.at(5.0)
    plan.start(T0)  # the run's clock started 5 s ago: both steps are overdue
    assert plan.tick() is None
    assert log == ["inject early @5", "revert early @5"]
    assert skew(one(events, EventKind.FAULT_INJECTED, "early")) == 4.0
    assert skew(one(events, EventKind.FAULT_REVERTED, "early")) == 3.0


def test_a_slow_inject_run_inside_the_tick_delays_the_next_fault_and_says_so(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    slow, next_ = Fault("slow", clock, log, inject_s=0.5), Fault("next", clock, log)
    plan = timeline([(slow, 1.0, None), (next_, 1.2, None)], journal, clock)
    clock.at(1.0)
    plan.tick()
    assert log == ["inject slow @1", "inject next @1.5"]
    injected = one(events, EventKind.FAULT_INJECTED, "next")
    assert skew(injected) == 0.3
    assert injected.detail["started_at"] == T0 + 1.5


def test_a_slow_inject_spawned_on_its_own_does_not_hold_up_the_next_fault(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    spawned: list[Callable[[], None]] = []
    woken: list[str] = []
    slow, next_ = Fault("slow", clock, log, inject_s=0.5), Fault("next", clock, log)
    plan = timeline([(slow, 1.0, 3.0), (next_, 1.2, 3.0)], journal, clock, spawn=spawned.append)
    plan.set_waker(lambda: woken.append("wake"))
    clock.at(1.0)
    assert plan.tick() == 1.2  # slow's inject is out: nothing of its own is due meanwhile
    (slow_step,) = spawned
    clock.at(1.2)
    plan.tick()  # slow has not returned yet
    next_step = spawned[1]
    next_step()
    slow_step()  # returns at 1.7
    assert log == ["inject next @1.2", "inject slow @1.2"]
    assert skew(one(events, EventKind.FAULT_INJECTED, "next")) == 0.0
    assert skew(one(events, EventKind.FAULT_INJECTED, "slow")) == 0.7
    assert woken == ["wake", "wake"]  # each step's end: its revert may be due now
    assert plan.next_due() == 3.0


def test_a_busy_fault_is_not_given_a_second_step(
    clock: Clock, log: list[str], journal: Journal
) -> None:
    spawned: list[Callable[[], None]] = []
    fault = Fault("a", clock, log)
    plan = timeline([(fault, 0.0, 0.5)], journal, clock, spawn=spawned.append)
    plan.tick()
    clock.at(1.0)
    plan.tick()  # its revert is due, but its inject has not ended
    assert len(spawned) == 1
    spawned[0]()
    assert plan.next_due() == 0.5  # overdue: the waker makes the caller tick now
    plan.tick()
    spawned[1]()
    assert log == ["inject a @1", "revert a @1"]


def test_a_revert_that_fails_is_retried_and_keeps_its_scheduled_time(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    fault = Fault("stuck", clock, log, revert_failures=2)
    plan = timeline([(fault, 0.0, 2.0)], journal, clock, retry_interval_s=0.25)
    plan.tick()
    clock.at(2.0)
    assert plan.tick() == 2.25
    assert plan.active() == ["stuck"]
    clock.at(2.25)
    assert plan.tick() == 2.5
    clock.at(2.5)
    assert plan.tick() is None
    assert log == ["inject stuck @0", "revert stuck @2", "revert stuck @2.25", "revert stuck @2.5"]
    errors = [e for e in events if e.kind is EventKind.FAULT_ERROR]
    assert len(errors) == 2
    reverted = one(events, EventKind.FAULT_REVERTED, "stuck")
    assert skew(reverted) == 0.5
    assert journal.pending() == []


def test_a_fault_is_journaled_ahead_and_injected_exactly_when_due(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    fault = Fault("a", clock, log)
    plan = timeline([(fault, 2.0, None)], journal, clock, journal_ahead_s=0.3)
    assert plan.tick() == pytest.approx(1.7)
    clock.at(1.7)
    assert plan.tick() == 2.0
    assert [p.name for p in journal.pending()] == ["a"]
    assert log == []
    assert plan.active() == []  # journaled, not in force yet
    clock.at(2.0)
    plan.tick()
    assert log == ["inject a @2"]
    assert skew(one(events, EventKind.FAULT_INJECTED, "a")) == 0.0


def test_a_fault_journaled_ahead_is_reverted_when_the_run_ends_before_it(
    clock: Clock, log: list[str], journal: Journal
) -> None:
    plan = timeline([(Fault("a", clock, log), 2.0, None)], journal, clock, journal_ahead_s=0.5)
    clock.at(1.6)
    plan.tick()
    assert plan.revert_all() == []
    assert log == ["revert a @1.6"]  # never injected; the revert is idempotent
    assert journal.pending() == []


def test_revert_all_waits_for_spawned_steps_and_a_step_not_begun_injects_nothing(
    clock: Clock, log: list[str], journal: Journal
) -> None:
    spawned: list[Callable[[], None]] = []
    seen_while_waiting: list[list[str]] = []

    def sleep(_: float) -> None:  # another greenlet runs meanwhile: the step ends
        seen_while_waiting.append(list(log))
        while spawned:
            spawned.pop(0)()

    fault = Fault("a", clock, log)
    plan = FaultTimeline([(fault, 0.0, None)], journal, clock=clock, sleep=sleep,
                         spawn=spawned.append)  # fmt: skip
    plan.start()
    plan.tick()
    assert plan.revert_all() == []
    assert seen_while_waiting == [[]]  # nothing reverted while the step was out
    assert log == ["revert a @0"]  # it began after the end: no inject, the sweep reverts
    assert journal.pending() == []


def test_a_fault_injected_by_hand_for_a_while_wakes_the_scheduler(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    woken: list[str] = []
    plan = timeline([], journal, clock)
    plan.set_waker(lambda: woken.append("wake"))
    plan.set_catalogue({"drill": lambda: Fault("drill", clock, log)})
    clock.at(3.0)
    plan.inject_now("drill", who="ops", for_s=2.0)
    assert woken
    assert plan.next_due() == 5.0
    assert "scheduled" not in one(events, EventKind.FAULT_INJECTED, "drill").detail
    clock.at(5.0)
    plan.tick()
    assert one(events, EventKind.FAULT_REVERTED, "drill").detail["scheduled"] == T0 + 5.0


def test_with_lead_calls_a_step_starts_early_by_what_such_calls_took(
    clock: Clock, log: list[str], journal: Journal, events: list[FaultEvent]
) -> None:
    first, second = Fault("first", clock, log, inject_s=0.02), Fault("second", clock, log)
    slow = Fault("slow", clock, log, inject_s=0.2, kind="restart")  # too slow to learn from
    plan = timeline(
        [(first, 1.0, None), (second, 2.0, None), (slow, 3.0, None)],
        journal,
        clock,
        lead_calls=True,
    )
    clock.at(1.0)
    assert plan.tick() == pytest.approx(1.98)  # the next "fake" inject starts 20 ms early
    clock.at(1.98)
    second.inject_s = 0.02
    plan.tick()
    assert skew(one(events, EventKind.FAULT_INJECTED, "second")) == 0.0  # in force when due
    assert plan.next_due() == 3.0  # nothing learned of "restart" yet
    clock.at(3.0)
    plan.tick()
    assert skew(one(events, EventKind.FAULT_INJECTED, "slow")) == pytest.approx(0.2)


def test_the_lead_is_capped(clock: Clock, log: list[str], journal: Journal) -> None:
    first = Fault("first", clock, log, inject_s=0.15)
    plan = timeline(
        [(first, 1.0, None), (Fault("second", clock, log), 2.0, None)],
        journal,
        clock,
        lead_calls=True,
    )
    clock.at(1.0)
    assert plan.tick() == pytest.approx(2.0 - 0.05)
