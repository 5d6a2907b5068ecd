"""The abort guards on the master: what the store took reaches the guards, a breach is recorded as
a ``guard_breach`` event before anyone acts on it, and the run's clients are described for the
report (their largest attempt cap too, for ``attempt_cap_respected``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from harness.load.guarding import GuardWatch
from harness.load.retry import NAIVE, RetryPolicy, clients_of, max_attempts_of
from harness.record import EventKind, RunDir, RunWriter
from harness.record.buckets import Bucket
from harness.scenario import parse_scenario
from harness.verdict import GuardEvaluator, judge
from harness.verdict.language import parse_guard

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000


def shipped(at_s: float, statuses: dict[int, int]) -> list[dict[str, object]]:
    """The ten buckets of the second ``at_s`` into the run, serialized as workers ship them."""
    out: list[dict[str, object]] = []
    for i in range(10):
        bucket = Bucket(IDX0 + round(at_s * 10) + i)
        bucket.statuses = dict(statuses)
        n = sum(statuses.values())
        bucket.latency.record(0.01, n)
        bucket.attempts = bucket.done = n
        out.append(dict(bucket.to_dict()))
    return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[RunDir, RunWriter]]:
    run = RunDir.create(tmp_path, "s")
    with run.writer() as writer:
        yield run, writer


def watch_on(store: tuple[RunDir, RunWriter], guard: str) -> tuple[GuardWatch, RunDir]:
    run, writer = store
    evaluator = GuardEvaluator([parse_guard(guard, name="maintenance-storm")], clock=lambda: T0)
    return GuardWatch(evaluator, writer), run


def test_a_breach_is_recorded_as_a_guard_breach_event_the_verdict_reads(
    store: tuple[RunDir, RunWriter],
) -> None:
    watch, run = watch_on(store, "abort if ratio(status == 503) > 10% for 3s")
    for s in range(3):
        watch.feed(shipped(s, {200: 10}))
    for s in range(3, 10):
        watch.feed(shipped(s, {503: 9, 200: 1}))
    assert watch.check(T0 + 5.0) == []  # 503s from 3 s, settled to 3 s only
    (breach,) = watch.check(T0 + 8.0)  # 3..6 s held, settled at 6 + 2 s
    assert watch.check(T0 + 9.0) == []  # reported once

    (event,) = [e for e in run.events() if e.kind is EventKind.GUARD_BREACH]
    assert event.name == "maintenance-storm"
    assert event.t == T0 + 8.0
    assert event.detail == breach.event_detail()
    assert event.detail["observed"] == pytest.approx(0.9)
    assert "held for 3s" in event.detail["detail"]


def test_a_run_with_a_breach_is_judged_aborted_whatever_its_slos_say(
    tmp_path: Path, store: tuple[RunDir, RunWriter]
) -> None:
    (tmp_path / "lf.py").write_text("# users\n")
    scenario = parse_scenario(
        "load:\n  locustfile: lf.py\n"
        "  phases: [{name: a, duration: 10s, users: 1, spawn_rate: 1}]\n"
        'guards: ["abort if ratio(status == 503) > 10% for 3s"]\n',
        tmp_path / "s.yaml",
    )
    watch, run = watch_on(store, scenario.guards[0].expr)
    for s in range(10):
        watch.feed(shipped(s, {503: 10}))
    assert watch.check(T0 + 6.0)
    judgement = judge(run, scenario)
    assert judgement.aborted
    assert not judgement.passed
    (reason,) = judgement.abort_reasons
    assert "held for 3s" in reason


def test_without_guards_nothing_is_watched(store: tuple[RunDir, RunWriter]) -> None:
    watch = GuardWatch(GuardEvaluator(()), store[1])
    assert not watch.armed
    watch.feed(shipped(0, {503: 10}))
    assert watch.check(T0 + 100.0) == []


def test_a_malformed_bucket_is_skipped_not_fatal(store: tuple[RunDir, RunWriter]) -> None:
    watch, _ = watch_on(store, "abort if ratio(status == 503) > 10% for 1s")
    watch.feed([{"v": 999, "idx": 1}, *shipped(0, {503: 10})])
    assert watch.check(T0 + 3.0)


# --- the clients of a run ----------------------------------------------------------------------


class Polite:
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=4, base_s=0.2, cap_s=4.0)


class Naive:
    retry_policy: ClassVar[RetryPolicy] = NAIVE


class Plain:
    pass


def test_the_largest_attempt_cap_of_the_user_classes_is_the_runs() -> None:
    assert max_attempts_of([Polite]) == 4
    assert max_attempts_of([Polite, Naive, Plain]) == 10
    assert max_attempts_of([Plain]) is None


def test_each_client_is_described_by_its_class_and_how_it_retries() -> None:
    assert clients_of([Polite, Naive, Plain]) == [
        {
            "user_class": "Polite",
            "retries": "up to 4 attempts, backoff 0.2s..4s with full jitter, Retry-After honoured",
        },
        {
            "user_class": "Naive",
            "retries": "up to 10 attempts, immediate retries, Retry-After ignored",
        },
        {"user_class": "Plain", "retries": "its own code"},
    ]
    assert RetryPolicy(max_attempts=1).describe() == "never retries"
    assert "without jitter" in RetryPolicy(jitter=False).describe()
