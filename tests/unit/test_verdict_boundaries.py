"""Which phase a bucket at a phase boundary belongs to: the one it was recorded in, also when the
master observed the boundary a little late.

Found on a real flash-sale run: the spike's 100 new users sent their first requests in the 60 ms
after the boundary, all slow (the spawn burst), and they were filed in the bucket that started
40 ms *before* it, so they counted in the warm-up: its p99 read 439 ms while no warm-up request
took more than 60 ms. The master now starts the load on a bucket boundary (so phase boundaries
are bucket boundaries) and the windows' edges are rounded to the nearest bucket boundary (so an
event written 1 ms after the boundary still splits there).
"""

from __future__ import annotations

import pytest

from harness.record.buckets import Bucket
from harness.report.stats import window_stats
from harness.verdict.evaluate import evaluate
from harness.verdict.language import parse_slo
from harness.verdict.rundata import RunData, Span, first_bucket

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0  # a bucket boundary: the master starts the load on one
IDX0 = 17_000_000_000


def bucket(at_s: float, n: int, latency_s: float) -> Bucket:
    b = Bucket(IDX0 + round(at_s * 10))
    b.statuses = {200: n}
    b.latency.record(latency_s, n)
    b.attempts = b.done = n
    return b


def flash_sale_start(late_s: float) -> RunData:
    """Warm-up 0..30 s (5 fast responses a bucket), then the spike's burst of 60 slow requests in
    its first bucket and fast traffic after; the boundary observed ``late_s`` after 30 s."""
    buckets = [bucket(i / 10, 5, 0.005) for i in range(300)]
    buckets.append(bucket(30.0, 60, 0.4))
    buckets += [bucket(30.0 + i / 10, 25, 0.01) for i in range(1, 100)]
    boundary = T0 + 30.0 + late_s
    return RunData(
        start=T0,
        end=T0 + 40.0,
        buckets=tuple(buckets),
        phases=(("warmup", Span(T0, boundary)), ("spike", Span(boundary, T0 + 40.0))),
    )


@pytest.mark.parametrize("late_s", [0.0, 0.001, 0.012, 0.049])
def test_the_first_requests_of_a_phase_count_in_it_even_when_its_start_was_seen_late(
    late_s: float,
) -> None:
    data = flash_sale_start(late_s)
    warmup = evaluate(parse_slo("p99(latency) < 100ms during phase warmup"), data)
    assert warmup.passed, warmup
    assert warmup.observed == pytest.approx(0.005, rel=0.02)
    assert "over 1,500 attempts" in warmup.detail
    spike = evaluate(parse_slo("p99(latency) < 100ms during phase spike"), data)
    assert not spike.passed  # the burst is the spike's, and its own p99 shows it
    assert "over 2,535 attempts" in spike.detail

    # The report's phase table counts the same buckets as the SLO.
    buckets = list(data.buckets)
    table = window_stats(buckets, "warmup", 0.0, 30.0 + late_s, origin=T0)
    assert table.attempts == 1500
    assert table.p99_ms == pytest.approx(warmup.observed * 1000)
    spike_table = window_stats(buckets, "spike", 30.0 + late_s, 40.0, origin=T0)
    assert spike_table.attempts == 2535


def test_an_edge_goes_to_the_nearest_bucket_boundary() -> None:
    assert first_bucket(T0 + 30.0) == IDX0 + 300
    assert first_bucket(T0 + 30.001) == IDX0 + 300  # observed a hair late: still on it
    assert first_bucket(T0 + 30.049) == IDX0 + 300
    assert first_bucket(T0 + 30.051) == IDX0 + 301  # most of that bucket is on the far side
    assert first_bucket(T0 + 29.999) == IDX0 + 300
    # Float noise around a boundary never moves an edge off it.
    for k in range(1000):
        t = T0 + k / 10
        assert first_bucket(t) == IDX0 + k
