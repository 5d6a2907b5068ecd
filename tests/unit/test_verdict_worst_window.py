"""``over any N``: the worst sliding window, against runs with a bad window planted at a known
place. The worst window is found exactly there with exactly its value; every window's
percentile is the one the merged histograms of its buckets give."""

from __future__ import annotations

import random

import pytest

from harness.errors import BadInputError
from harness.record.buckets import Bucket
from harness.record.histogram import Histogram
from harness.verdict.evaluate import Verdict, evaluate
from harness.verdict.language import parse_slo
from harness.verdict.metrics import measure_buckets
from harness.verdict.model import Percentile, Ratio, StatusTest
from harness.verdict.rundata import RunData, Span
from harness.verdict.worst import window_values, worst_window

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000  # the bucket that starts at T0


def bucket(at_s: float, statuses: dict[int, int], latency_s: float = 0.05) -> Bucket:
    b = Bucket(IDX0 + round(at_s * 10))
    b.statuses = {code: n for code, n in statuses.items() if n}
    n = sum(b.statuses.values())
    b.latency.record(latency_s, n)
    b.attempts = b.done = n
    return b


def run(buckets: list[Bucket]) -> RunData:
    """Phases warmup 0..10 s and spike 10..30 s."""
    return RunData(
        start=T0,
        end=T0 + 30,
        buckets=tuple(sorted(buckets, key=lambda b: b.idx)),
        phases=(("warmup", Span(T0, T0 + 10)), ("spike", Span(T0 + 10, T0 + 30))),
    )


def steady(
    bad: tuple[float, float] = (0.0, 0.0), bad_statuses: dict[int, int] | None = None
) -> list[Bucket]:
    """30 s of buckets with ten 200s each; in ``bad`` (seconds, [from, to)) ``bad_statuses``."""
    out = []
    for i in range(300):
        at = i / 10
        inside = bad[0] * 10 <= i < bad[1] * 10
        out.append(bucket(at, bad_statuses if inside and bad_statuses else {200: 10}))
    return out


def judge(text: str, data: RunData) -> Verdict:
    return evaluate(parse_slo(text), data)


def test_worst_window_is_the_planted_one_with_its_exact_value() -> None:
    # 12.0..22.0 s: half the answers are 503s; everywhere else none. Only the window that is
    # exactly the planted stretch holds 500 503s in 1000 answers.
    data = run(steady((12.0, 22.0), {200: 5, 503: 5}))
    verdict = judge("ratio(status == 503) < 5% over any 10s", data)
    assert verdict.outcome == "fail"
    assert verdict.worst is not None
    assert verdict.worst.start == pytest.approx(T0 + 12.0, abs=1e-6)
    assert verdict.worst.end == pytest.approx(T0 + 22.0, abs=1e-6)
    assert verdict.observed == 0.5
    assert verdict.worst.value == 0.5
    assert verdict.worst.windows == 300 - 100 + 1
    assert verdict.window_label == "any 10s"
    assert "500 of 1,000" in verdict.detail or "500 of 1000" in verdict.detail
    assert "+12s..+22s" in verdict.detail


def test_a_burst_shorter_than_the_window_sits_in_its_middle() -> None:
    # Two seconds of 503s at 13.0..15.0: every 10 s window holding them ties at 100/1000; the
    # first such starts at 5.0, the last at 13.0, the middle one at 9.0.
    data = run(steady((13.0, 15.0), {200: 5, 503: 5}))
    verdict = judge("ratio(status == 503) < 5% over any 10s", data)
    assert verdict.observed == pytest.approx(0.1)
    assert verdict.worst is not None
    assert verdict.worst.start == pytest.approx(T0 + 9.0, abs=1e-6)
    assert verdict.outcome == "fail"


def test_the_whole_run_hides_what_the_worst_window_shows() -> None:
    # The complaint of k6 issue 2379: 100% errors in the last 10 s of a long run.
    data = run(steady((20.0, 30.0), {503: 10}))
    whole = judge("ratio(status == 503) < 50%", data)
    worst = judge("ratio(status == 503) < 50% over any 10s", data)
    assert whole.outcome == "pass"
    assert worst.outcome == "fail"
    assert worst.observed == 1.0
    assert worst.worst is not None
    assert worst.worst.start == pytest.approx(T0 + 20.0, abs=1e-6)


def test_worst_window_stays_inside_its_phase() -> None:
    # A bad stretch in the warm-up is outside "during phase spike".
    data = run(steady((2.0, 8.0), {200: 5, 503: 5}))
    verdict = judge("ratio(status == 503) < 5% over any 10s during phase spike", data)
    assert verdict.outcome == "pass"
    assert verdict.observed == 0.0
    assert verdict.worst is not None
    assert verdict.worst.start >= T0 + 10.0 - 1e-6
    assert verdict.worst.end <= T0 + 30.0 + 1e-6
    assert verdict.window_label == "any 10s of phase spike"


def test_p99_worst_window_during_a_phase() -> None:
    buckets = [bucket(i / 10, {200: 10}, latency_s=0.05) for i in range(300)]
    # 5 s of slow answers at 17..22 s, inside the spike.
    for b in buckets:
        if IDX0 + 170 <= b.idx < IDX0 + 220:
            b.latency = Histogram()
            b.latency.record(0.4, 10)
    verdict = judge("p99(latency) < 300ms over any 5s during phase spike", run(buckets))
    assert verdict.outcome == "fail"
    assert verdict.worst is not None
    assert verdict.worst.start == pytest.approx(T0 + 17.0, abs=1e-6)
    assert verdict.observed == pytest.approx(0.4, rel=0.01)
    # ... and the same p99 as a fixed window over exactly those buckets gives.
    fixed = Histogram.merged(b.latency for b in buckets if IDX0 + 170 <= b.idx < IDX0 + 220)
    assert verdict.observed == fixed.percentile(99)


def test_lower_limit_takes_the_lowest_window() -> None:
    data = run(steady((3.0, 5.0), {200: 8, 0: 2}))
    verdict = judge("availability >= 90% over any 2s", data)
    assert verdict.observed == pytest.approx(0.8)
    assert verdict.worst is not None
    assert verdict.worst.start == pytest.approx(T0 + 3.0, abs=1e-6)
    assert verdict.outcome == "fail"


def test_silent_windows_are_skipped_not_worst() -> None:
    # 2 s of silence in the middle: a window of it has no value, never a worst one.
    buckets = [b for b in steady() if not IDX0 + 100 <= b.idx < IDX0 + 120]
    verdict = judge("availability >= 99% over any 1s", run(buckets))
    assert verdict.outcome == "pass"
    assert verdict.observed == 1.0
    assert verdict.worst is not None
    assert verdict.worst.windows == 300 - 10 + 1 - 11  # the 11 windows wholly inside the hole


def test_no_responses_anywhere_is_no_data() -> None:
    verdict = judge("ratio(status == 503) < 5% over any 10s", run([]))
    assert verdict.outcome == "no data"
    assert not verdict.passed
    assert verdict.worst is None


def test_a_stretch_shorter_than_the_window_is_judged_whole() -> None:
    data = run(steady((0.0, 10.0), {200: 9, 503: 1}))
    verdict = judge("ratio(status == 503) < 5% over any 20s during warmup", data)
    assert verdict.observed == pytest.approx(0.1)
    assert "judged whole" in verdict.detail
    assert verdict.worst is not None
    assert verdict.worst.windows == 1


def test_every_window_equals_its_buckets_merged() -> None:
    rng = random.Random(7)
    buckets = []
    for i in range(0, 200):
        if rng.random() < 0.2:
            continue  # silent 100 ms are not stored
        b = Bucket(IDX0 + i)
        for _ in range(rng.randint(1, 30)):
            status = rng.choice((200, 200, 200, 503, 0, 500))
            b.statuses[status] = b.statuses.get(status, 0) + 1
            b.latency.record(rng.lognormvariate(-3, 1.2))
        b.attempts = b.done = sum(b.statuses.values())
        buckets.append(b)
    metrics = (Percentile(99), Percentile(50), Ratio(StatusTest("==", 503)))
    for metric in metrics:
        for length in (1, 7, 30):
            seen = 0
            for start, value in window_values(metric, buckets, IDX0, IDX0 + 200, length):
                inside = [b for b in buckets if start <= b.idx < start + length]
                expected = measure_buckets(metric, inside).value
                assert value == expected, (metric, length, start)
                seen += 1
            assert seen > 0


def test_worst_window_of_a_handmade_store_through_the_function() -> None:
    buckets = steady((1.0, 2.0), {503: 10})
    found, where = worst_window(Ratio(StatusTest("==", 503)), buckets, IDX0, IDX0 + 300, 10, "<")
    assert found.value == 1.0
    assert where is not None
    assert where.start == pytest.approx(T0 + 1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backoff_growth > 1.5 over any 5s", "cannot slide"),
        ("ratio(status == 503) == 5% over any 5s", "needs <, <=, > or >="),
        ("ratio(status == 503) < 5% over any 150ms", "whole number of 100ms"),
        ("ratio(status == 503) < 5% over any 5", "takes a duration"),
        ("ratio(status == 503) < 5% over any 1s over any 2s", 'a second "over any"'),
        ("recovery_time(kill) < 5s over any 5s", "cannot slide"),
    ],
)
def test_bad_sliding_windows_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(BadInputError, match="slos\\[0\\]") as caught:
        parse_slo(text, where="slos[0]")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_sliding_slo_prints_back_and_parses_again() -> None:
    slo = parse_slo("p99(latency) over any 5s during phase spike < 300ms")
    assert str(slo) == "p99(latency) < 300ms over any 5s during phase spike"
    assert parse_slo(str(slo)).over_s == slo.over_s == 5.0
