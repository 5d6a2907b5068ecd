"""The worker's recorder: every request Locust reports lands in its bucket, retried ones in the
attempt log under a worker-unique id, and shipments add up to exactly what was recorded."""

from __future__ import annotations

import random
import weakref
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.load.recording import (
    CONTEXT_KEY,
    INTENDED_KEY,
    AttemptContext,
    RequestRecorder,
    Shipment,
)
from harness.record.buckets import Bucket, BucketRecorder

from .fuzz_budget import examples

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


@dataclass
class FakeResponse:
    status_code: int | None
    headers: dict[str, str] | None = field(default_factory=dict)


def request(
    rec: RequestRecorder,
    t: float,
    status: int | None = 200,
    *,
    ms: float = 20.0,
    info: AttemptContext | None = None,
    headers: dict[str, str] | None = None,
    exception: object = None,
    response: object = "default",
) -> None:
    if response == "default":
        response = FakeResponse(status, headers or {})
    rec.on_request(
        request_type="GET",
        name="/x",
        response_time=ms,
        response_length=2,
        response=response,
        context={CONTEXT_KEY: info} if info else {},
        exception=exception,
        start_time=t,
        url="http://127.0.0.1/x",
    )


def attempt(logical: int, n: int, *, final: bool, ok: bool) -> AttemptContext:
    info = AttemptContext(logical, n)
    info.final, info.ok = final, ok
    return info


def buckets_of(shipment: Shipment | None) -> list[Bucket]:
    assert shipment is not None
    return [Bucket.from_dict(b) for b in shipment["buckets"]]


def test_a_plain_request_is_one_final_attempt_in_the_bucket_of_its_start() -> None:
    rec = RequestRecorder(tag="w0", clock=lambda: T0 + 5)
    request(rec, T0 + 0.25, 200, ms=300)
    (bucket,) = buckets_of(rec.shipment())
    assert bucket.idx == int((T0 + 0.2) * 10)
    assert bucket.statuses == {200: 1}
    assert (bucket.attempts, bucket.retries, bucket.done, bucket.failed) == (1, 0, 1, 0)
    assert bucket.latency.max == pytest.approx(0.3, rel=0.01)


def test_no_response_is_status_zero_and_a_failed_request() -> None:
    rec = RequestRecorder(clock=lambda: T0 + 5)
    request(rec, T0, 0, exception=ConnectionRefusedError())
    request(rec, T0, None, exception=TimeoutError())
    request(rec, T0, response=None, exception=OSError())
    (bucket,) = buckets_of(rec.shipment())
    assert bucket.statuses == {0: 3}
    assert bucket.failed == 3


def test_a_request_without_a_start_time_is_filed_when_it_started() -> None:
    rec = RequestRecorder(clock=lambda: T0 + 1.0)
    rec.on_request(response_time=500.0, response=FakeResponse(200), context={})
    (bucket,) = buckets_of(rec.shipment(now=T0 + 2))
    assert bucket.idx == int((T0 + 0.5) * 10)


def test_an_open_model_arrival_counts_from_its_intended_time() -> None:
    """A request that went out late (its arrival waited for a free slot) is filed in the
    bucket of when it was due, its latency counted from then; one that went out on time, or
    a due time that is not a float, changes nothing."""
    rec = RequestRecorder(tag="w0", clock=lambda: T0 + 5)
    late = {INTENDED_KEY: T0 + 0.05}
    rec.on_request(
        response_time=20.0, response=FakeResponse(200), context=late, start_time=T0 + 0.55
    )
    on_time = {INTENDED_KEY: T0 + 1.25}
    rec.on_request(
        response_time=20.0, response=FakeResponse(200), context=on_time, start_time=T0 + 1.2
    )
    odd = {INTENDED_KEY: "T0"}
    rec.on_request(response_time=20.0, response=FakeResponse(200), context=odd, start_time=T0 + 2.2)
    first, second, third = buckets_of(rec.shipment(final=True))
    assert first.idx == int((T0 + 0.05) * 10)
    assert first.latency.max == pytest.approx(0.52, rel=0.01)
    assert second.idx == int((T0 + 1.2) * 10)
    assert third.idx == int((T0 + 2.2) * 10)
    for bucket in (second, third):
        assert bucket.latency.max == pytest.approx(0.02, rel=0.01)
    assert [b.done for b in (first, second, third)] == [1, 1, 1]


def test_retry_after_is_read_from_503_and_429_only() -> None:
    rec = RequestRecorder(clock=lambda: T0 + 5)
    request(rec, T0, 503, headers={"Retry-After": "2"})
    request(rec, T0, 503)
    request(rec, T0, 200, headers={"Retry-After": "2"})
    (bucket,) = buckets_of(rec.shipment())
    assert bucket.retry_after_503 == 1


def test_a_retried_request_is_logged_under_the_worker_tag_with_the_retry_after_it_followed() -> (
    None
):
    rec = RequestRecorder(tag="w3", clock=lambda: T0 + 10)
    request(
        rec,
        T0,
        503,
        headers={"Retry-After": "1"},
        info=attempt(7, 1, final=False, ok=False),
        exception=Exception("503"),
    )
    request(rec, T0 + 1.2, 200, info=attempt(7, 2, final=True, ok=True))
    shipment = rec.shipment()
    assert shipment is not None
    assert [row[:4] for row in shipment["attempts"]] == [
        ["w3:7", 1, T0, 503],
        ["w3:7", 2, T0 + 1.2, 200],
    ]
    assert [row[5] for row in shipment["attempts"]] == [None, 1.0]
    buckets = {b.idx: b for b in buckets_of(shipment)}
    assert buckets[int(T0 * 10)].done == 0
    last = buckets[int((T0 + 1.2) * 10)]
    assert (last.retries, last.done, last.failed) == (1, 1, 0)


def test_a_logical_request_that_gives_up_counts_as_failed() -> None:
    rec = RequestRecorder(clock=lambda: T0 + 10)
    request(rec, T0, 503, info=attempt(1, 1, final=False, ok=False))
    request(rec, T0 + 0.5, 503, info=attempt(1, 2, final=True, ok=False))
    total = Bucket(0)
    for bucket in buckets_of(rec.shipment()):
        bucket.idx = 0
        total.merge(bucket)
    assert (total.attempts, total.retries, total.done, total.failed) == (2, 1, 1, 1)


def test_a_shipment_holds_only_buckets_that_are_over_and_nothing_twice() -> None:
    now = T0 + 1.05
    rec = RequestRecorder(clock=lambda: now)
    request(rec, T0 + 0.95)  # bucket T0+0.9: over at T0+1.0
    request(rec, T0 + 1.01)  # bucket T0+1.0: still filling
    assert [b.idx for b in buckets_of(rec.shipment())] == [int((T0 + 0.9) * 10)]
    assert rec.shipment() is None
    (final,) = buckets_of(rec.shipment(final=True))
    assert final.idx == int((T0 + 1.0) * 10)


def test_the_final_shipment_comes_once_even_when_empty_and_carries_the_totals() -> None:
    rec = RequestRecorder(clock=lambda: T0 + 100)
    request(rec, T0, 200)
    request(rec, T0 + 1, 503)
    request(rec, T0 + 2, 0)
    first = rec.shipment()
    final = rec.shipment(final=True)
    assert first is not None
    assert final is not None
    assert final["final"] is True
    assert final["buckets"] == []
    assert final["totals"] == {"requests": 3, "statuses": {"0": 1, "200": 1, "503": 1}}
    with pytest.raises(RuntimeError, match="final"):
        rec.shipment()


def test_a_shipment_survives_msgpack_as_locust_sends_it() -> None:
    rec = RequestRecorder(tag="w1", clock=lambda: T0 + 10)
    request(rec, T0, 503, info=attempt(1, 1, final=False, ok=False))
    request(rec, T0 + 1, 200, info=attempt(1, 2, final=True, ok=True))
    shipment = rec.shipment(final=True)
    wire: Any = msgpack.loads(msgpack.dumps(shipment), raw=False, strict_map_key=False)
    assert wire == shipment


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["/a", "/b", None]),
            st.sampled_from([0, 200, 409, 503]),
            st.sampled_from(["plain", "final", "retried"]),
        ),
        max_size=40,
    )
)
def test_per_name_totals_are_the_attempts_counted_by_hand(
    attempts: list[tuple[str | None, int, str]],
) -> None:
    # The hook counts every attempt and only the non-final ones apart (final = the difference);
    # a plain request (no context) is counted when its note is filed. The shipment must say
    # what counting each attempt in its two tallies would, whichever way each one took.
    rec = RequestRecorder(clock=lambda: T0)
    every: dict[str, dict[str, int]] = {}
    last: dict[str, dict[str, int]] = {}
    for logical, (name, status, kind) in enumerate(attempts):
        info = AttemptContext(logical, 1)
        info.final = final = kind != "retried"
        rec.on_request(
            response_time=5.0,
            response=FakeResponse(status),
            context=None if kind == "plain" else {CONTEXT_KEY: info},
            start_time=T0,
            name=name,
        )
        key = name if name is not None else "(other)"
        every.setdefault(key, {})
        every[key][str(status)] = every[key].get(str(status), 0) + 1
        last.setdefault(key, {})
        if final:
            last[key][str(status)] = last[key].get(str(status), 0) + 1
    shipment = rec.shipment(final=True)
    assert shipment is not None
    assert shipment["names"] == {key: {"all": every[key], "final": last[key]} for key in every}


def test_the_hook_files_every_kind_of_request_as_the_general_recorder_does() -> None:
    """The hook's fast path (one attempt, no Retry-After) and its other paths, against the same
    stream fed to the bucket recorder's general method by hand."""
    rec = RequestRecorder(tag="w1", clock=lambda: T0 + 10)
    by_hand = BucketRecorder()
    rng = random.Random(18)
    for i in range(2000):
        t = T0 + rng.uniform(0, 3.0)
        status = rng.choice([0, 200, 200, 200, 429, 503])
        headers = {"Retry-After": "2"} if rng.random() < 0.5 else {}
        retry_after = 2.0 if headers and status in (429, 503) else None
        kind = rng.choice(["plain", "first", "retry", "last"])
        info = None
        if kind != "plain":
            n, final = {"first": (1, True), "retry": (1, False), "last": (3, True)}[kind]
            info = attempt(i, n, final=final, ok=status == 200)
        exception = None if status == 200 else Exception(str(status))
        request(rec, t, status, ms=20.0, info=info, headers=headers, exception=exception)
        if info is None:
            args: tuple[Any, ...] = (1, retry_after, "w1", True, exception is None)
        else:
            logical = "w1" if info.attempt == 1 and info.final else f"w1:{i}"
            args = (info.attempt, retry_after, logical, info.final, info.ok)
        by_hand.record_attempt(t, 0.02, status, *args)
    assert rec.requests == 2000
    shipment = rec.shipment(final=True)
    assert shipment is not None
    assert shipment["totals"]["requests"] == 2000
    assert shipment["buckets"] == by_hand.drain()
    log, dropped = by_hand.drain_attempts()
    assert shipment["attempts"] == [list(record) for record in log]
    assert dropped == shipment["dropped"] == 0


def test_plain_requests_noted_by_the_hook_are_filed_at_the_bound_and_keep_no_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hook only notes a plain request and files the notes before a shipment; past the
    bound it files them at once, so a stalled shipper cannot grow the notes without end. A
    note holds what the response said, never the response (a body may be large)."""
    monkeypatch.setattr("harness.load.recording.PENDING_LIMIT", 5)
    rec = RequestRecorder(tag="w0", clock=lambda: T0 + 10)
    response = FakeResponse(200)
    alive = weakref.ref(response)
    request(rec, T0, response=response)
    del response
    assert alive() is None
    for i in range(1, 12):
        # Plain requests, and attempts of a retry-aware user that end their request at once.
        info = attempt(i, 1, final=True, ok=True) if i % 2 else None
        request(rec, T0 + i / 1000, info=info)
        assert len(rec._pending) < 5  # the notes themselves: nothing else shows the bound
    assert rec.requests == 12
    shipment = rec.shipment(final=True)
    assert shipment is not None
    assert shipment["names"] == {"/x": {"all": {"200": 12}, "final": {"200": 12}}}
    (bucket,) = buckets_of(shipment)
    assert bucket.statuses == {200: 12}
    assert bucket.done == bucket.attempts == 12
