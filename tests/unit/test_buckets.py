"""The 100 ms bucket recorder: what verdicts are computed from must add up exactly."""

from __future__ import annotations

import gc
import json
import random
import tracemalloc
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.record.buckets import (
    AttemptRecord,
    Bucket,
    BucketFormatError,
    BucketRecorder,
    SerializedBucket,
    bucket_of,
    bucket_start,
    merge_all,
    merge_serialized,
)
from harness.record.histogram import Histogram

from .fuzz_budget import examples

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0  # on a bucket boundary


def ok(rec: BucketRecorder, t: float, latency: float = 0.02, status: int = 200, **kw: Any) -> None:
    """One single-attempt logical request."""
    args: dict[str, Any] = {
        "attempt": 1,
        "retry_after": None,
        "logical_id": 0,
        "final": True,
        "ok": status < 400,
    }
    args.update(kw)
    rec.record_attempt(t, latency, status, **args)


def test_bucket_index_is_the_tenth_of_a_second() -> None:
    assert bucket_of(T0) == 17_000_000_000
    assert bucket_of(T0 + 0.1) == 17_000_000_001
    assert bucket_of(T0 + 0.0999) == 17_000_000_000
    assert bucket_start(bucket_of(T0 + 0.35)) == pytest.approx(T0 + 0.3)


def test_a_3_second_outage_is_exactly_30_buckets_of_errors() -> None:
    # Attempts every 10 ms for 10 s; from T0+3.0 to T0+6.0 every attempt fails with no response
    # (a 1 s timeout, so each is recorded a second after it started: the start decides).
    rec = BucketRecorder()
    starts = [T0 + i / 100 for i in range(1000)]
    outage = [T0 + 3.0 <= t < T0 + 6.0 for t in starts]
    ends: list[tuple[float, float, bool]] = []
    for t, down in zip(starts, outage, strict=True):
        ends.append((t + (1.0 if down else 0.02), t, down))
    ends.sort()  # the order the recorder sees them in: by completion
    shipped: list[SerializedBucket] = []
    next_ship = T0 + 1
    for t_end, t, down in ends:
        if t_end >= next_ship:
            shipped += rec.drain(before=t_end)
            next_ship += 1
        if down:
            ok(rec, t, latency=1.0, status=0, ok=False)
        else:
            ok(rec, t)
    shipped += rec.drain(None)

    buckets = [Bucket.from_dict(b) for b in merge_all(shipped)]
    with_errors = [b.idx for b in buckets if b.count(0)]
    first = bucket_of(T0 + 3.0)
    assert with_errors == list(range(first, first + 30))
    assert all(b.count(0) == 10 and b.count(200) == 0 for b in buckets if b.idx in with_errors)
    assert sum(b.attempts for b in buckets) == 1000
    assert sum(b.failed for b in buckets) == 300


def test_an_outage_off_the_bucket_grid_spreads_over_31_buckets_with_the_same_total() -> None:
    rec = BucketRecorder()
    for i in range(1000):
        t = T0 + i / 100
        if T0 + 3.05 <= t < T0 + 6.05:
            ok(rec, t, latency=1.0, status=0)
        else:
            ok(rec, t)
    buckets = [Bucket.from_dict(b) for b in rec.drain(None)]
    errors = {b.idx: b.count(0) for b in buckets if b.count(0)}
    assert len(errors) == 31
    assert sum(errors.values()) == 300


def random_attempts(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        status = rng.choice([200, 200, 200, 201, 404, 500, 503, 0])
        out.append(
            {
                "t_start": T0 + rng.uniform(0, 5),
                "latency_s": rng.lognormvariate(-4, 1.5),
                "status": status,
                "attempt": rng.choice([1, 1, 1, 2, 3]),
                "retry_after": rng.choice([None, 1.0]) if status == 503 else None,
                "logical_id": f"w{seed}-{i}",
                "final": rng.random() < 0.8,
                "ok": status < 400 and status != 0,
            }
        )
    return out


def record_all(attempts: list[dict[str, Any]]) -> BucketRecorder:
    rec = BucketRecorder()
    for a in attempts:
        rec.record_attempt(**a)
    return rec


def test_merging_two_workers_buckets_equals_recording_everything_in_one() -> None:
    one, two = random_attempts(1, 3000), random_attempts(2, 3000)
    w1, w2, both = record_all(one), record_all(two), record_all(one + two)
    parts = w1.drain(None) + w2.drain(None)
    merged = merge_all(parts)
    assert merged == both.drain(None)
    # The verdict-relevant totals are exactly the sums of the inputs.
    buckets = [Bucket.from_dict(b) for b in merged]
    everything = one + two
    assert sum(b.attempts for b in buckets) == len(everything)
    assert sum(b.retries for b in buckets) == sum(a["attempt"] > 1 for a in everything)
    assert sum(b.done for b in buckets) == sum(a["final"] for a in everything)
    assert sum(b.failed for b in buckets) == sum(a["final"] and not a["ok"] for a in everything)
    assert sum(b.retry_after_503 for b in buckets) == sum(
        a["status"] == 503 and a["retry_after"] is not None for a in everything
    )
    statuses: Counter[int] = Counter()
    for b in buckets:
        statuses.update(b.statuses)
    assert statuses == Counter(a["status"] for a in everything)
    assert sum(b.latency.count for b in buckets) == len(everything)


def test_merge_serialized_of_two_parts_is_their_sum() -> None:
    a = record_all(random_attempts(3, 200)).drain(None)
    b = record_all(random_attempts(4, 200)).drain(None)
    shared = {x["idx"] for x in a} & {x["idx"] for x in b}
    assert shared
    for idx in shared:
        pa = next(x for x in a if x["idx"] == idx)
        pb = next(x for x in b if x["idx"] == idx)
        m = merge_serialized(pa, pb)
        for field in ("attempts", "retries", "retry_after_503", "done", "failed"):
            assert m[field] == pa[field] + pb[field]
        assert sum(m["status"][1::2]) == sum(pa["status"][1::2]) + sum(pb["status"][1::2])
        assert sum(m["latency"][1::2]) == pa["attempts"] + pb["attempts"]


def test_merge_serialized_refuses_parts_of_different_buckets() -> None:
    rec = BucketRecorder()
    ok(rec, T0)
    ok(rec, T0 + 0.1)
    a, b = rec.drain(None)
    with pytest.raises(ValueError, match="cannot merge"):
        merge_serialized(a, b)


def test_a_late_attempt_into_a_shipped_bucket_ships_again_and_merges_to_the_sum() -> None:
    rec = BucketRecorder()
    ok(rec, T0 + 0.05)
    first = rec.drain(before=T0 + 1.0)
    ok(rec, T0 + 0.06, latency=5.0)  # started in the shipped bucket, ended 5 s later
    second = rec.drain(before=T0 + 6.0)
    assert [b["idx"] for b in first] == [b["idx"] for b in second]
    total = Bucket.from_dict(merge_serialized(first[0], second[0]))
    assert total.attempts == 2
    assert total.latency.max == pytest.approx(5.0, rel=0.01)


def test_drain_keeps_the_bucket_still_filling() -> None:
    rec = BucketRecorder()
    ok(rec, T0 + 0.05)
    ok(rec, T0 + 0.15)
    assert [b["idx"] for b in rec.drain(before=T0 + 0.17)] == [bucket_of(T0)]
    assert rec.live_buckets == 1
    assert [b["idx"] for b in rec.drain(None)] == [bucket_of(T0 + 0.1)]
    assert rec.live_buckets == 0


def test_a_shipped_bucket_is_never_written_after_it_left() -> None:
    # The recorder caches the current bucket; draining must drop that cache, or the next
    # attempt would mutate a bucket already handed to the master.
    rec = BucketRecorder()
    ok(rec, T0)
    (shipped,) = rec.drain(None)
    snapshot = json.dumps(shipped)
    ok(rec, T0)
    assert json.dumps(shipped) == snapshot
    assert rec.drain(None)[0]["attempts"] == 1


def test_live_buckets_and_memory_stay_flat_across_many_drains() -> None:
    rec = BucketRecorder()
    rng = random.Random(5)

    def one_second(second: int) -> None:
        for i in range(100):
            t = T0 + second + i / 100
            if i % 25 == 0:  # a retried request now and then, so the attempt log is exercised
                rec.record_attempt(
                    t, 0.01, 503, attempt=1, retry_after=0.5, logical_id=i, final=False, ok=False
                )
                rec.record_attempt(
                    t + 0.5,
                    0.01,
                    200,
                    attempt=2,
                    retry_after=None,
                    logical_id=i,
                    final=True,
                    ok=True,
                )
            else:
                ok(rec, t, latency=rng.lognormvariate(-4, 1))
        rec.drain(before=T0 + second + 1)
        rec.drain_attempts()

    tracemalloc.start()
    try:
        for s in range(20):
            one_second(s)
        gc.collect()
        warm, _ = tracemalloc.get_traced_memory()
        for s in range(20, 220):
            one_second(s)
            assert rec.live_buckets <= 6  # the retries may start the next second's buckets
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - warm < 16 * 1024, f"grew by {after - warm} bytes over 200 drains"


def test_retries_and_503s_with_retry_after_are_counted() -> None:
    rec = BucketRecorder()
    rec.record_attempt(
        T0, 0.01, 503, attempt=1, retry_after=2.0, logical_id="a", final=False, ok=False
    )
    rec.record_attempt(
        T0, 0.01, 503, attempt=1, retry_after=None, logical_id="b", final=True, ok=False
    )
    rec.record_attempt(
        T0, 0.01, 200, attempt=2, retry_after=None, logical_id="a", final=True, ok=True
    )
    (b,) = (Bucket.from_dict(x) for x in rec.drain(None))
    assert (b.attempts, b.retries, b.retry_after_503, b.done, b.failed) == (3, 1, 1, 2, 1)
    assert b.statuses == {503: 2, 200: 1}


def test_the_attempt_log_links_a_retry_to_the_retry_after_it_follows() -> None:
    rec = BucketRecorder()
    ok(rec, T0, logical_id="single")  # one attempt: described by the buckets alone
    rec.record_attempt(
        T0, 0.3, 503, attempt=1, retry_after=1.5, logical_id="r", final=False, ok=False
    )
    rec.record_attempt(
        T0 + 2.0, 0.01, 0, attempt=2, retry_after=None, logical_id="r", final=False, ok=False
    )
    rec.record_attempt(
        T0 + 3.0, 0.02, 200, attempt=3, retry_after=None, logical_id="r", final=True, ok=True
    )
    log, dropped = rec.drain_attempts()
    assert dropped == 0
    assert log == [
        AttemptRecord("r", 1, T0, 503, 0.3, None),
        AttemptRecord("r", 2, T0 + 2.0, 0, 0.01, 1.5),
        AttemptRecord("r", 3, T0 + 3.0, 200, 0.02, None),  # the attempt before had no Retry-After
    ]
    assert rec.drain_attempts() == ([], 0)


def test_log_all_attempts_logs_single_attempt_requests_too() -> None:
    rec = BucketRecorder(log_all_attempts=True)
    ok(rec, T0, logical_id=7)
    log, _ = rec.drain_attempts()
    assert log == [AttemptRecord(7, 1, T0, 200, 0.02, None)]


def test_the_attempt_log_is_bounded_and_counts_what_it_dropped() -> None:
    rec = BucketRecorder(attempt_log_limit=10)
    for i in range(25):
        rec.record_attempt(
            T0, 0.01, 0, attempt=1, retry_after=None, logical_id=i, final=False, ok=False
        )
    log, dropped = rec.drain_attempts()
    assert (len(log), dropped) == (10, 15)
    # Buckets are never dropped: the verdict counts must stay exact.
    assert rec.drain(None)[0]["attempts"] == 25


def test_remembered_retry_afters_are_bounded() -> None:
    rec = BucketRecorder(pending_limit=3)
    for i in range(10):
        rec.record_attempt(
            T0, 0.01, 503, attempt=1, retry_after=1.0, logical_id=i, final=False, ok=False
        )
    for i in range(10):
        rec.record_attempt(
            T0 + 1, 0.01, 200, attempt=2, retry_after=None, logical_id=i, final=True, ok=True
        )
    log, _ = rec.drain_attempts()
    followed = [r.retry_after_followed for r in log if r.attempt == 2]
    assert followed == [None] * 7 + [1.0] * 3  # only the 3 most recent were remembered


def test_a_serialized_bucket_is_json_and_round_trips() -> None:
    rec = record_all(random_attempts(6, 500))
    for part in rec.drain(None):
        back = json.loads(json.dumps(part))
        assert back == part
        assert Bucket.from_dict(back).to_dict() == part


def _valid() -> dict[str, Any]:
    rec = BucketRecorder()
    ok(rec, T0)
    return dict(rec.drain(None)[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": 2}, "version"),
        ({"attempts": -1}, "not a count"),
        ({"status": [200]}, "flat"),
        ({"status": [1000, 1]}, "invalid"),
        ({"status": [200, 1, 200, 1]}, "twice"),
        ({"latency": [1]}, "latency"),
        ({"latency": "x"}, "latency"),
    ],
)
def test_from_dict_rejects_a_bucket_it_could_not_have_written(
    change: dict[str, Any], message: str
) -> None:
    data = _valid() | change
    with pytest.raises(BucketFormatError, match=message):
        Bucket.from_dict(data)


def test_from_dict_names_a_missing_field() -> None:
    data = _valid()
    del data["done"]
    with pytest.raises(BucketFormatError, match="'done'"):
        Bucket.from_dict(data)
    with pytest.raises(BucketFormatError, match="mapping"):
        Bucket.from_dict([1, 2])  # type: ignore[arg-type]


# -- properties ------------------------------------------------------------------------------

attempt_strategy = st.fixed_dictionaries(
    {
        "t_start": st.floats(min_value=T0, max_value=T0 + 0.0999),
        "latency_s": st.floats(min_value=0.0, max_value=100.0),
        "status": st.sampled_from([0, 200, 429, 500, 503]),
        "attempt": st.integers(min_value=1, max_value=4),
        "retry_after": st.none() | st.floats(min_value=0, max_value=10),
        "logical_id": st.integers(0, 5),
        "final": st.booleans(),
        "ok": st.booleans(),
    }
)


@settings(max_examples=examples(100))
@given(st.lists(attempt_strategy, max_size=20), st.lists(attempt_strategy, min_size=1, max_size=20))
def test_merge_serialized_equals_recording_both_parts_in_one_recorder(
    xs: list[dict[str, Any]], ys: list[dict[str, Any]]
) -> None:
    a, b, both = record_all(xs).drain(None), record_all(ys).drain(None), record_all(xs + ys)
    expected = both.drain(None)
    merged = merge_serialized(a[0], b[0]) if a else b[0]
    assert [merged] == expected


@settings(max_examples=examples(200))
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_the_recorder_files_a_latency_where_the_histogram_does(value: float) -> None:
    # record_attempt() inlines Histogram.record(); they must never disagree.
    rec = BucketRecorder()
    ok(rec, T0, latency=value)
    (bucket,) = rec.drain(None)
    expected = Histogram()
    expected.record(value)
    assert bucket["latency"] == expected.to_list()
    assert Bucket.from_dict(bucket).latency.count == 1


@pytest.mark.parametrize("log_all", [False, True])
def test_single_attempts_filed_together_are_record_attempt_of_each(log_all: bool) -> None:
    """The worker's fast path files exactly what the general one does, bucket by bucket: rows
    mostly in time order (runs within a bucket), some out of it, in batches of any size."""
    fast, general = (
        BucketRecorder(log_all_attempts=log_all),
        BucketRecorder(log_all_attempts=log_all),
    )
    rng = random.Random(18)
    t = T0
    batch: list[tuple[float, float, int, bool, object]] = []
    for i in range(3000):
        t += rng.uniform(0, 0.002)
        start = t - rng.uniform(0, 0.5) if rng.random() < 0.1 else t  # a late report
        latency_ms = rng.choice([0.0, 1e-4, rng.uniform(0, 3000.0), 1e9])
        latency = latency_ms / 1000.0
        status = rng.choice([0, 200, 201, 404, 429, 503])
        success = rng.random() < 0.7
        batch.append((start, latency_ms, status, success, "/products"))
        general.record_attempt(start, latency, status, 1, None, "w0", True, success)
        if rng.random() < 0.02:
            fast.record_single_attempts(batch, "w0")
            batch = []
        if i % 700 == 0:  # a drain between records empties the one-bucket cache of both
            fast.record_single_attempts(batch, "w0")
            batch = []
            assert fast.drain(t - 0.3) == general.drain(t - 0.3)
    fast.record_single_attempts(batch, "w0")
    fast.record_single_attempts([], "w0")
    assert fast.drain() == general.drain()
    assert fast.drain_attempts() == general.drain_attempts()
