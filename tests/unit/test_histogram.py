"""The latency histogram: accuracy against exact percentiles, bounded memory, merge, round trip."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.record.histogram import (
    MAX_VALUE,
    MIN_VALUE,
    TOP_INDEX,
    Histogram,
    bucket_index,
    bucket_value,
)

from .fuzz_budget import examples

pytestmark = pytest.mark.unit

PERCENTILES = (0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)
TOLERANCE = 0.02  # the promise; the construction gives sqrt(1.02) - 1 = 0.995%


def exact_percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank, the definition the histogram answers to: the ceil(q% * n)-th smallest."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def histogram_of(values: list[float]) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def assert_percentiles_within(values: list[float], tolerance: float) -> None:
    h = histogram_of(values)
    ordered = sorted(values)
    for q in PERCENTILES:
        exact = exact_percentile(ordered, q)
        got = h.percentile(q)
        assert abs(got - exact) <= tolerance * exact, f"p{q}: {got} vs exact {exact}"


def test_percentiles_of_a_uniform_distribution_are_within_2_percent() -> None:
    rng = random.Random(1)
    assert_percentiles_within([rng.uniform(0.001, 2.0) for _ in range(50_000)], TOLERANCE)


def test_percentiles_of_a_lognormal_distribution_are_within_2_percent() -> None:
    rng = random.Random(2)
    values = [rng.lognormvariate(math.log(0.05), 1.0) for _ in range(50_000)]
    assert_percentiles_within([v for v in values if v >= MIN_VALUE], TOLERANCE)


def test_percentiles_with_a_2_second_stall_mode_are_within_2_percent() -> None:
    # 97% fast responses around 20 ms, 3% stuck behind a 2 s stall: p99 must land on the stall,
    # p95 on the fast mode, each within 2% of the truth.
    rng = random.Random(3)
    fast = [rng.lognormvariate(math.log(0.02), 0.3) for _ in range(48_500)]
    stalled = [2.0 + rng.uniform(0.0, 0.05) for _ in range(1_500)]
    values = fast + stalled
    rng.shuffle(values)
    assert_percentiles_within(values, TOLERANCE)
    h = histogram_of(values)
    assert h.percentile(95) < 0.1
    assert h.percentile(99) == pytest.approx(2.0, rel=0.03)


def test_values_below_a_tenth_of_a_millisecond_share_one_bucket() -> None:
    h = histogram_of([0.0, 1e-6, 5e-5, 9.99e-5])
    assert len(h) == 1
    assert h.percentile(100) == MIN_VALUE / 2


def test_nan_negative_and_infinite_latencies_are_recorded_not_raised() -> None:
    # The recorder runs in a request hook: a broken clock must not kill the user.
    h = histogram_of([math.nan, -1.0, math.inf, 1e9])
    assert h.count == 4
    assert h.max == MAX_VALUE
    assert h.min == MIN_VALUE / 2


def test_bucket_count_stays_bounded_over_the_whole_range() -> None:
    h = Histogram()
    # 0.1 ms .. 10 min, densely: every bucket of that range gets samples.
    lo, hi = math.log(MIN_VALUE), math.log(600.0)
    for i in range(200_001):
        h.record(math.exp(lo + (hi - lo) * i / 200_000))
    assert h.count == 200_001
    assert 700 < len(h) < 1000
    assert len(h) <= TOP_INDEX + 1


def test_memory_grows_with_distinct_buckets_not_with_samples() -> None:
    h = Histogram()
    for _ in range(100_000):
        h.record(0.05)
    h.record(0.0501)
    assert h.count == 100_001
    assert len(h) == 1


def test_min_and_max_are_within_one_percent() -> None:
    h = histogram_of([0.0123, 0.5, 7.5])
    assert h.min == pytest.approx(0.0123, rel=0.01)
    assert h.max == pytest.approx(7.5, rel=0.01)


def test_empty_histogram_refuses_percentiles() -> None:
    h = Histogram()
    with pytest.raises(ValueError, match="empty"):
        h.percentile(50)
    with pytest.raises(ValueError, match="empty"):
        _ = h.max


@pytest.mark.parametrize("q", [-1, 100.5, math.nan])
def test_percentile_outside_0_100_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="within"):
        histogram_of([0.1]).percentile(q)


def test_merge_adds_counts() -> None:
    a = histogram_of([0.01, 0.02, 0.02])
    b = histogram_of([0.02, 3.0])
    a.merge(b)
    assert a == histogram_of([0.01, 0.02, 0.02, 0.02, 3.0])
    assert a.count == 5


def test_count_above_counts_buckets_beyond_the_threshold() -> None:
    h = histogram_of([0.01] * 90 + [1.0] * 10)
    assert h.count_above(0.5) == 10
    assert h.count_above(2.0) == 0


def test_compact_form_is_a_flat_sorted_list_of_ints() -> None:
    h = histogram_of([0.5, 0.01, 0.01])
    flat = h.to_list()
    assert flat == [bucket_index(0.01), 2, bucket_index(0.5), 1]
    assert all(type(x) is int for x in flat)


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ([1], "odd length"),
        ([1, 0], "out of range"),
        ([-1, 2], "out of range"),
        ([TOP_INDEX + 1, 2], "out of range"),
        ([3, 1, 3, 1], "twice"),
        ([1.5, 1], "two ints"),
        ([True, 1], "two ints"),
    ],
)
def test_from_list_rejects_what_to_list_cannot_produce(flat: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Histogram.from_list(flat)


# -- properties ------------------------------------------------------------------------------

latencies = st.lists(
    st.floats(min_value=0.0, max_value=2 * MAX_VALUE, allow_nan=False), max_size=50
)


@settings(max_examples=examples(200))
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_record_files_a_value_where_bucket_index_says(value: float) -> None:
    # record() inlines bucket_index(); they must never disagree.
    h = Histogram()
    h.record(value)
    assert list(h.counts) == [bucket_index(value)]


@settings(max_examples=examples(200))
@given(st.floats(min_value=MIN_VALUE, max_value=MAX_VALUE, exclude_max=True))
def test_a_bucket_stands_for_its_values_within_one_percent(value: float) -> None:
    assert bucket_value(bucket_index(value)) == pytest.approx(value, rel=0.01)


@settings(max_examples=examples(100))
@given(latencies, latencies, latencies)
def test_merge_is_associative_and_commutative(
    xs: list[float], ys: list[float], zs: list[float]
) -> None:
    a, b, c = histogram_of(xs), histogram_of(ys), histogram_of(zs)
    left = Histogram.merged([Histogram.merged([a, b]), c])
    right = Histogram.merged([a, Histogram.merged([b, c])])
    assert left == right == Histogram.merged([c, b, a]) == histogram_of(xs + ys + zs)
    assert left.count == len(xs) + len(ys) + len(zs)


@settings(max_examples=examples(100))
@given(latencies)
def test_serialize_round_trips_through_json(xs: list[float]) -> None:
    h = histogram_of(xs)
    back = Histogram.from_list(json.loads(json.dumps(h.to_list())))
    assert back == h
    assert back.count == h.count
    if xs:
        assert back.percentile(99) == h.percentile(99)


@settings(max_examples=examples(200))
@given(
    st.lists(st.floats(min_value=0.0, max_value=2 * MAX_VALUE, allow_nan=False), min_size=1),
    st.lists(st.floats(min_value=0.0, max_value=100.0), max_size=6),
)
def test_percentiles_at_once_are_each_percentile(xs: list[float], qs: list[float]) -> None:
    h = histogram_of(xs)
    assert h.percentiles(qs) == tuple(h.percentile(q) for q in qs)


def test_percentiles_refuse_what_percentile_refuses() -> None:
    with pytest.raises(ValueError, match="empty"):
        Histogram().percentiles([50])
    with pytest.raises(ValueError, match=r"within \[0, 100\]"):
        histogram_of([0.1]).percentiles([50, 101])
