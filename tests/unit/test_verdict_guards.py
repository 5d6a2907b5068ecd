"""Abort guards: breached only once the condition has held for the whole duration, judged on
settled buckets only, each reported once, with bounded memory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import BadInputError
from harness.record.buckets import Bucket
from harness.scenario import parse_scenario
from harness.verdict.guards import GuardEvaluator
from harness.verdict.language import parse_guard

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000
SETTLE = 2.0  # the evaluator's default: steps are judged once they ended this long ago


def second(at_s: float, statuses: dict[int, int], latency_s: float = 0.05) -> list[Bucket]:
    """The ten buckets of the second starting ``at_s`` into the run, ``statuses`` in each."""
    out = []
    for i in range(10):
        b = Bucket(IDX0 + round(at_s * 10) + i)
        b.statuses = dict(statuses)
        n = sum(statuses.values())
        b.latency.record(latency_s, n)
        b.attempts = b.done = n
        out.append(b)
    return out


def feed(evaluator: GuardEvaluator, buckets: list[Bucket]) -> None:
    for b in buckets:
        evaluator.add(b)


STORM = "abort if ratio(status >= 500) > 50% for 15s"


def test_a_guard_breaches_only_after_the_condition_held_for_its_duration() -> None:
    guard = GuardEvaluator([parse_guard(STORM, name="storm")], clock=lambda: 0.0)
    for s in range(10):
        feed(guard, second(s, {200: 10}))
    # The storm begins at 10 s and never stops.
    for s in range(10, 40):
        feed(guard, second(s, {500: 8, 200: 2}))
    breaches_at = []
    for tenth in range(10 * 10, 40 * 10):  # checked ten times a second, from 10 s to 40 s
        now = T0 + tenth / 10
        if guard.check(now):
            breaches_at.append(now - T0)
    # 15 full seconds of storm (10..25 s) are settled at 25 + 2 s, not a moment before.
    assert breaches_at == [pytest.approx(25.0 + SETTLE)]
    (breach,) = guard.breached
    assert breach.name == "storm"
    assert breach.since == pytest.approx(T0 + 10.0)
    assert breach.held_s == pytest.approx(15.0)
    assert breach.observed == pytest.approx(0.8)
    assert breach.threshold == pytest.approx(0.5)
    assert "held for 15s, 80% in the last second" in breach.detail
    assert breach.event_detail()["expression"] == STORM


def test_a_condition_that_lets_up_for_a_second_starts_over() -> None:
    guard = GuardEvaluator([parse_guard(STORM)])
    for s in range(0, 40):
        # A storm from 10 s with one good second at 20 s: never 15 s in a row until 21..36 s.
        statuses = {200: 10} if s < 10 or s == 20 else {500: 10}
        feed(guard, second(s, statuses))
    found = [
        (tenth / 10, breach.since - T0)
        for tenth in range(400 + round(SETTLE * 10))
        for breach in guard.check(T0 + tenth / 10)
    ]
    assert len(found) == 1
    assert found[0] == pytest.approx((36 + SETTLE, 21.0))


def test_the_condition_not_holding_never_breaches() -> None:
    guard = GuardEvaluator([parse_guard(STORM)])
    for s in range(60):
        feed(guard, second(s, {500: 5, 200: 5}))  # exactly 50%: not > 50%
    assert all(guard.check(T0 + t) == [] for t in range(60))


def test_silence_does_not_breach() -> None:
    guard = GuardEvaluator([parse_guard("abort if availability < 50% for 5s")])
    assert guard.check(T0 + 100) == []


def test_unsettled_buckets_are_not_judged() -> None:
    guard = GuardEvaluator([parse_guard("abort if count(status == 500) > 0 for 1s")])
    feed(guard, second(10, {500: 1}))
    assert guard.check(T0 + 11.0) == []  # the second has just ended: workers may still ship
    assert guard.check(T0 + 12.9) == []
    assert len(guard.check(T0 + 13.0)) == 1


def test_late_parts_of_a_bucket_are_summed_before_judging() -> None:
    guard = GuardEvaluator([parse_guard("abort if ratio(status == 503) > 50% for 1s")])
    feed(guard, second(10, {200: 4}))
    feed(guard, second(10, {503: 3}))  # another worker's part of the same buckets
    assert guard.check(T0 + 13) == []
    feed(guard, second(10, {503: 2}))
    assert len(guard.check(T0 + 13.1)) == 1


def test_the_callers_bucket_is_not_modified() -> None:
    guard = GuardEvaluator([parse_guard(STORM)])
    part = second(10, {500: 1})[0]
    guard.add(part)
    guard.add(second(10, {500: 1})[0])
    assert part.statuses == {500: 1}


def test_each_guard_is_reported_once_and_others_still_breach() -> None:
    guard = GuardEvaluator(
        [
            parse_guard("abort if ratio(status >= 500) > 50% for 2s", name="fast"),
            parse_guard("abort if p99(latency) > 1s for 5s", name="slow"),
        ]
    )
    for s in range(20):
        feed(guard, second(s, {500: 10}, latency_s=2.0))
    assert [b.name for b in guard.check(T0 + 2 + SETTLE)] == ["fast"]
    assert guard.check(T0 + 3 + SETTLE) == []
    assert [b.name for b in guard.check(T0 + 5 + SETTLE)] == ["slow"]
    assert [b.name for b in guard.breached] == ["fast", "slow"]


def test_a_latency_guard_uses_the_merged_histogram_of_each_second() -> None:
    guard = GuardEvaluator([parse_guard("abort if p99(latency) > 500ms for 3s")])
    for s in range(10):
        feed(guard, second(s, {200: 10}, latency_s=0.6 if s >= 5 else 0.1))
    assert guard.check(T0 + 7 + SETTLE) == []
    (breach,) = guard.check(T0 + 8 + SETTLE)
    assert breach.observed == pytest.approx(0.6, rel=0.01)
    assert breach.detail.endswith("ms in the last second")


def test_old_buckets_are_forgotten() -> None:
    guard = GuardEvaluator([parse_guard("abort if ratio(status >= 500) > 50% for 5s")])
    for s in range(300):
        feed(guard, second(s, {200: 10}))
        guard.check(T0 + s + 1)
    kept = guard._buckets  # the memory bound is the point of this test
    assert len(kept) <= (5 + 1) * 10 + 3 * 10
    # A bucket older than what any guard looks at is dropped on arrival.
    guard.add(second(5, {500: 10})[0])
    assert min(kept) > IDX0 + 50


def test_the_clock_is_used_when_no_time_is_given() -> None:
    now = [T0]
    guard = GuardEvaluator(
        [parse_guard("abort if count(status == 500) > 0 for 1s")], clock=lambda: now[0]
    )
    feed(guard, second(0, {500: 1}))
    assert guard.check() == []
    now[0] = T0 + 1 + SETTLE
    assert len(guard.check()) == 1


def test_the_scenarios_own_guards_are_accepted_and_checked(tmp_path: Path) -> None:
    (tmp_path / "users.py").write_text("# users\n")
    text = textwrap.dedent(
        """
        load:
          locustfile: users.py
          phases: [{name: warmup, duration: 10s, users: 1, spawn_rate: 1}]
        guards:
          - {name: storm, expr: "abort if ratio(status >= 500) > 50% for 15s"}
          - "abort if availability < 10% for 5s"
        """
    )
    scenario = parse_scenario(text, tmp_path / "g.yaml")
    guard = GuardEvaluator(scenario.guards)
    assert [g.name for g in guard.guards] == ["storm", "abort if availability < 10% for 5s"]
    bad = scenario.model_copy(
        update={"guards": (scenario.guards[0].model_copy(update={"expr": "abort if x"}),)}
    )
    with pytest.raises(BadInputError, match=r"^guards\[0\]: "):
        GuardEvaluator(bad.guards)
