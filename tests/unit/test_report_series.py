"""The series and stats a report draws: equal to what the synthetic run is known to hold."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.errors import BadInputError
from harness.record import RunDir, RunStatus
from harness.report.data import collect
from harness.report.model import recovery_of
from harness.report.series import STATUS_CLASSES, Series, build_series, check_step, status_class
from harness.report.stats import window_stats

from .test_report_synthetic import (
    CREATED,
    ENDED,
    KILL_RECOVERY,
    SLOW_DB_RECOVERY,
    T0,
    build_run,
    judgement,
    per_second_truth,
)

pytestmark = pytest.mark.unit


def series_of(run: RunDir, step: float = 1.0) -> Series:
    meta = run.meta
    return build_series(
        run.buckets(),
        run.events(),
        started_at=meta["started_at"],
        ended_at=meta.get("ended_at"),
        recoveries=(recovery_of(KILL_RECOVERY), recovery_of(SLOW_DB_RECOVERY)),
        step=step,
    )


@pytest.fixture
def series(tmp_path: Path) -> Series:
    return series_of(build_run(tmp_path))


def test_x_counts_from_the_planned_start_of_the_first_phase(series: Series) -> None:
    assert series.origin == T0
    assert series.x[:3] == (0.0, 1.0, 2.0)
    assert series.end == pytest.approx(40.5)
    assert len(series.x) == 41  # 0..40, the last bin holding the half second after the load


def test_requests_per_second_equal_the_known_truth(series: Series) -> None:
    truth = per_second_truth()
    for second, expected in truth.rps.items():
        assert series.rps[second] == pytest.approx(expected), second


def test_stacked_status_classes_add_up_to_the_total(series: Series) -> None:
    for i, total in enumerate(series.rps):
        stacked = sum(series.rps_by_class[c][i] for c in STATUS_CLASSES)
        assert stacked == pytest.approx(total)
    second_20 = {c: series.rps_by_class[c][20] for c in STATUS_CLASSES}
    assert second_20 == {"2xx": 50, "3xx": 1, "4xx": 1, "503": 0, "5xx": 1, "error": 0}
    assert series.rps_by_class["error"][12] == 30
    assert series.rps_by_class["503"][12] == 20


def test_503_ratio_equals_the_known_truth(series: Series) -> None:
    truth = per_second_truth()
    for second, expected in truth.ratio_503.items():
        if math.isnan(expected):
            assert math.isnan(series.ratio_503[second]), second
        else:
            assert series.ratio_503[second] == pytest.approx(expected), second


def test_a_silent_second_is_zero_requests_and_no_ratio_or_latency(series: Series) -> None:
    assert series.rps[14] == 0
    assert math.isnan(series.ratio_503[14])
    assert math.isnan(series.p99_ms[14])
    assert math.isnan(series.retry_amplification[14])


def test_latency_percentiles_merge_the_buckets_of_each_second(series: Series) -> None:
    # Histogram buckets are about 1% wide.
    assert series.p50_ms[5] == pytest.approx(20, rel=0.01)
    assert series.p99_ms[26] == pytest.approx(800, rel=0.01)
    # The outage second: 30 timeouts at 1 s and 20 fast 503s: the median is a timeout.
    assert series.p50_ms[12] == pytest.approx(1000, rel=0.01)
    assert series.p50_ms[13] == pytest.approx(1000, rel=0.01)


def test_retry_amplification_is_attempts_per_logical_request(series: Series) -> None:
    assert series.retry_amplification[16] == pytest.approx(50 / 40)
    assert series.retry_amplification[5] == pytest.approx(1.0)


def test_phases_faults_and_recoveries_are_placed_on_the_run_clock(series: Series) -> None:
    assert [(p.name, p.users) for p in series.phases] == [
        ("warmup", 10),
        ("spike", 50),
        ("cooldown", 10),
    ]
    assert series.phases[0].start == 0.0
    # The synthetic master notices on time; test_phase_boundaries_are_when_the_master_switched
    # covers a late one.
    assert series.phases[1].start == 10.0
    assert series.phases[2].end == 40.0
    assert all(p.ended for p in series.phases)
    assert [(f.name, f.reverted) for f in series.faults] == [
        ("kill-app-1", True),
        ("slow-db", True),
    ]
    assert [x for f in series.faults for x in (f.start, f.end)] == pytest.approx([12, 18, 25, 28])
    kill, slow = series.recoveries
    assert kill.recovered
    assert kill.x == pytest.approx(22.2)
    assert kill.label == "kill-app-1 recovered +4.2s"
    assert not slow.recovered
    assert slow.label == "slow-db never recovered"
    assert slow.x == pytest.approx(40.5)  # drawn at the end of the run


def test_a_fault_never_reverted_lasts_to_the_end_of_the_run(tmp_path: Path) -> None:
    series = series_of(build_run(tmp_path, revert=False))
    assert [(f.name, f.reverted) for f in series.faults] == [
        ("kill-app-1", False),
        ("slow-db", False),
    ]
    assert series.faults[0].end == pytest.approx(ENDED - T0)


def test_a_coarser_step_sums_whole_seconds(tmp_path: Path) -> None:
    series = series_of(build_run(tmp_path), step=2.0)
    truth = per_second_truth()
    assert series.x[:2] == (0.0, 2.0)
    # rates stay per second: the mean of the two seconds in the bin
    assert series.rps[7] == pytest.approx((truth.rps[14] + truth.rps[15]) / 2)


def test_a_step_that_splits_buckets_is_refused() -> None:
    assert check_step(0.5) == 0.5
    for bad in (0.25, 0.0, -1.0, math.nan, math.inf):
        with pytest.raises(BadInputError, match=r"multiple of 0\.1 s"):
            check_step(bad)


def test_a_run_with_no_buckets_and_no_events_gives_an_empty_series(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "empty", clock=lambda: CREATED)
    series = build_series([], run.events(), started_at=CREATED, ended_at=None)
    assert series.empty
    assert series.origin == CREATED  # no phase: the run directory's start
    assert series.phases == ()
    assert series.faults == ()
    assert series.x == ()  # run_start at CREATED is both the start and the end


def test_a_crashed_run_ends_where_its_data_ends(tmp_path: Path) -> None:
    run = build_run(tmp_path, upto=20.0, finish=None)
    series = series_of(run)
    assert series.end == pytest.approx(20.0)
    assert not series.phases[-1].ended
    assert series.phases[-1].name == "spike"
    assert series.faults[0].reverted  # kill-app-1 was reverted at 18, before the crash


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (200, "2xx"),
        (204, "2xx"),
        (301, "3xx"),
        (404, "4xx"),
        (503, "503"),
        (500, "5xx"),
        (599, "5xx"),
        (0, "error"),
        (101, "error"),
        (999, "error"),
    ],
)
def test_every_status_code_falls_in_exactly_one_class(code: int, cls: str) -> None:
    assert status_class(code) == cls


def test_phase_stats_and_totals(tmp_path: Path) -> None:
    report = collect(build_run(tmp_path), judgement())
    warmup, spike, cooldown = report.phases
    assert (warmup.users, warmup.attempts) == (10, 200)
    assert warmup.rps == pytest.approx(20.0)
    assert warmup.ratio_503 == 0
    assert warmup.p99_ms == pytest.approx(20, rel=0.01)
    # spike: 20 s less the silent second, at 50/s, plus the three odd codes of second 20
    assert spike.attempts == 19 * 50 + 3
    assert spike.status_503 == 20 * 2 + 30 * 1
    assert spike.errors == 20 * 3
    assert spike.status_5xx == spike.status_503 + 1
    assert spike.retries == 30
    assert cooldown.attempts == 200
    assert report.totals.attempts == 200 + spike.attempts + 200
    assert report.status is RunStatus.COMPLETED


def test_an_empty_window_has_no_ratio_or_latency() -> None:
    stats = window_stats([], "nothing", 0.0, 10.0, origin=T0)
    assert stats.attempts == 0
    assert stats.rps == 0.0
    assert stats.ratio_503 is None
    assert stats.p99_ms is None
    assert stats.retry_amplification is None


def test_phase_boundaries_are_when_the_master_switched_not_the_plan(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "late", clock=lambda: CREATED)
    writer = run.writer(clock=lambda: T0 + 20)
    # The master noticed each boundary half a second late.
    writer.event("phase_start", "a", {"planned": T0, "users": 1}, t=T0 + 0.5)
    writer.event("phase_end", "a", {"planned": T0 + 10}, t=T0 + 10.5)
    writer.event("phase_start", "b", {"planned": T0 + 10, "users": 2}, t=T0 + 10.5)
    writer.event("phase_end", "b", {"planned": T0 + 20, "cut_short": True}, t=T0 + 15.0)
    writer.finish(RunStatus.INTERRUPTED, t=T0 + 15.2)
    writer.close()
    series = build_series([], run.events(), started_at=CREATED, ended_at=T0 + 15.2)
    assert series.origin == T0  # x = 0 is the plan's start: the scenario's `at:` clock
    a, b = series.phases
    assert (a.start, a.end, b.start, b.end) == (0.5, 10.5, 10.5, 15.0)
    assert b.cut_short
    assert not a.cut_short


def test_stats_count_a_bucket_in_the_phase_its_start_falls_in(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    buckets = run.buckets()
    # [10, 11): the ten buckets of the first spike second, 50 attempts; not the one at 11.0
    stats = window_stats(buckets, "s", 10.0, 11.0, origin=T0)
    assert stats.attempts == 50
