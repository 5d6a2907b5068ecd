"""The load timeline: users per phase, and each phase mark handed out once, on time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.load.plan import PhaseMarks, PhasePlan
from harness.scenario import Phase

from .fuzz_budget import examples

pytestmark = pytest.mark.unit


def phases(*spec: tuple[str, float, int]) -> list[Phase]:
    # Seconds as the run directory's resolved scenario has them.
    return [
        Phase.model_validate(
            {"name": n, "duration": d, "users": u, "spawn_rate": 10.0}, context={"resolved": True}
        )
        for n, d, u in spec
    ]


PLAN = PhasePlan(phases(("warmup", 2.0, 5), ("spike", 3.0, 20), ("cooldown", 1.0, 5)))


def test_phases_run_back_to_back_from_zero() -> None:
    assert [(p.name, p.start, p.end) for p in PLAN.phases] == [
        ("warmup", 0.0, 2.0),
        ("spike", 2.0, 5.0),
        ("cooldown", 5.0, 6.0),
    ]
    assert PLAN.total == 6.0


@pytest.mark.parametrize(
    ("elapsed", "name"),
    [(0.0, "warmup"), (1.999, "warmup"), (2.0, "spike"), (4.9, "spike"), (5.0, "cooldown")],
)
def test_a_boundary_belongs_to_the_phase_it_starts(elapsed: float, name: str) -> None:
    phase = PLAN.at(elapsed)
    assert phase is not None
    assert phase.name == name


@pytest.mark.parametrize("elapsed", [-0.1, 6.0, 60.0])
def test_no_phase_runs_before_the_start_or_from_the_end_on(elapsed: float) -> None:
    assert PLAN.at(elapsed) is None


def test_the_target_is_the_phase_users_and_none_once_over() -> None:
    assert PLAN.target(0.5) == (5, 10.0)
    assert PLAN.target(2.5) == (20, 10.0)
    assert PLAN.target(6.0) is None
    assert PLAN.target(-1.0) == (5, 10.0)  # asked a hair early: the first phase


def test_the_next_boundary_is_the_next_start_or_the_end() -> None:
    assert PLAN.next_boundary(0.0) == 2.0
    assert PLAN.next_boundary(2.0) == 5.0
    assert PLAN.next_boundary(5.5) == 6.0
    assert PLAN.next_boundary(6.0) is None


SHORT_FIRST = PhasePlan(phases(("slow", 1.0, 2), ("fast", 1.5, 8), ("drain", 0.5, 1)))


def test_the_first_tick_asks_for_the_first_phase_at_once_even_just_before_a_boundary() -> None:
    # The first phase lasts one tick: waiting for its end first would skip its users (the open
    # model's drivers started a second late, their first second of arrivals sent in a burst).
    assert SHORT_FIRST.when_to_read_target(0.0003, None, lookahead=1.0) == 0.0003
    assert SHORT_FIRST.when_to_read_target(0.0, None, lookahead=1.0) == 0.0


def test_a_tick_running_what_it_asked_for_waits_for_a_boundary_within_the_lookahead() -> None:
    slow, fast = (2, 10.0), (8, 10.0)
    assert SHORT_FIRST.when_to_read_target(0.02, slow, lookahead=1.0) == 1.0
    assert SHORT_FIRST.when_to_read_target(1.0, fast, lookahead=1.0) == 1.0  # 2.5 is too far
    assert SHORT_FIRST.when_to_read_target(1.6, fast, lookahead=1.0) == 2.5
    assert SHORT_FIRST.when_to_read_target(2.6, (1, 10.0), lookahead=1.0) == 3.0  # the end


def test_a_tick_that_comes_late_asks_for_the_phase_running_now_at_once() -> None:
    # start() of the first phase blocked past the boundary: the second phase is due now.
    assert SHORT_FIRST.when_to_read_target(1.3, (2, 10.0), lookahead=1.0) == 1.3
    assert SHORT_FIRST.when_to_read_target(3.2, (1, 10.0), lookahead=1.0) == 3.2  # over: None


def locust_shape_loop(plan: PhasePlan, first_tick: float) -> list[tuple[float, object]]:
    """Locust's shape loop on ``plan``: tick (which may wait for a boundary), then sleep one
    second minus the time the tick took. When each target was asked for, and which."""
    now, asked, switches = first_tick, None, []
    while True:
        start = now
        now = plan.when_to_read_target(now, asked, lookahead=1.0)
        target = plan.target(now)
        if target != asked:
            switches.append((round(now, 4), target))
        asked = target
        if target is None:
            return switches
        now += max(1.0 - (now - start), 0.0)


def test_phases_of_a_second_or_more_are_each_asked_for_on_time() -> None:
    plan = PhasePlan(phases(("a", 1.0, 1), ("b", 1.5, 2), ("c", 2.5, 3), ("d", 1.0, 4)))
    assert locust_shape_loop(plan, first_tick=0.0004) == [
        (0.0004, (1, 10.0)),
        (1.0004, (2, 10.0)),  # the next tick, 0.4 ms after the boundary
        (2.5, (3, 10.0)),
        (5.0, (4, 10.0)),
        (6.0, None),
    ]


def test_a_phase_shorter_than_a_tick_gets_its_users_and_the_next_one_a_tick_later() -> None:
    plan = PhasePlan(phases(("a", 0.5, 1), ("b", 1.5, 2)))
    assert locust_shape_loop(plan, first_tick=0.0004) == [
        (0.0004, (1, 10.0)),
        (1.0004, (2, 10.0)),  # 0.5 s late: Locust ticks once a second
        (2.0004, None),
    ]


def test_an_empty_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one phase"):
        PhasePlan([])


def test_marks_come_in_timeline_order_as_time_passes() -> None:
    marks = PhaseMarks(PLAN)
    assert [(m.kind, m.phase.name) for m in marks.due(0.0)] == [("start", "warmup")]
    assert marks.due(1.0) == []
    next_mark = marks.next_planned
    assert next_mark == 2.0
    assert [(m.kind, m.phase.name, m.planned) for m in marks.due(2.01)] == [
        ("end", "warmup", 2.0),
        ("start", "spike", 2.0),
    ]
    current = marks.current
    assert current is not None
    assert current.name == "spike"
    assert [(m.kind, m.phase.name) for m in marks.due(100.0)] == [
        ("end", "spike"),
        ("start", "cooldown"),
        ("end", "cooldown"),
    ]
    assert marks.next_planned is None
    assert marks.current is None
    assert marks.due(200.0) == []


def test_closing_early_cuts_the_running_phase_short_and_skips_the_rest() -> None:
    marks = PhaseMarks(PLAN)
    marks.due(3.0)
    closing = marks.close(3.5)
    assert [(m.kind, m.phase.name, m.cut_short) for m in closing] == [("end", "spike", True)]
    assert marks.close(10.0) == []


def test_closing_at_the_end_hands_out_the_last_end_uncut() -> None:
    marks = PhaseMarks(PLAN)
    marks.due(5.5)
    assert [(m.kind, m.phase.name, m.cut_short) for m in marks.close(6.0)] == [
        ("end", "cooldown", False)
    ]


@settings(max_examples=examples(100))  # Hypothesis's default, a quarter outside CI
@given(
    durations=st.lists(st.floats(0.1, 50), min_size=1, max_size=8),
    steps=st.lists(st.floats(0, 20), min_size=1, max_size=30),
)
def test_every_phase_gets_exactly_one_start_and_one_end(
    durations: list[float], steps: list[float]
) -> None:
    plan = PhasePlan(phases(*[(f"p{i}", d, 1) for i, d in enumerate(durations)]))
    marks = PhaseMarks(plan)
    seen = []
    elapsed = 0.0
    for step in steps:
        elapsed += step
        seen += marks.due(elapsed)
    seen += marks.close(elapsed)
    started = [m.phase.index for m in seen if m.kind == "start"]
    ended = [m.phase.index for m in seen if m.kind == "end"]
    assert started == ended == sorted(started)
    assert started == list(range(len(started)))
    assert len(started) == len(durations) or seen[-1].cut_short or elapsed < plan.total
