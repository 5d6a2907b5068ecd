"""SLO evaluation against runs whose true answer is known: every metric with a passing and a
failing case, windows that keep out what is outside them, and no data failing, never passing."""

from __future__ import annotations

import math

import pytest

from harness.record.buckets import AttemptRecord, Bucket
from harness.verdict.evaluate import Verdict, evaluate, resolve_window
from harness.verdict.language import parse_slo
from harness.verdict.model import Window, compare
from harness.verdict.rundata import FaultTimes, RunData, Span

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000  # the bucket that starts at T0


def bucket(
    at_s: float,
    statuses: dict[int, int],
    *,
    latency_s: float = 0.05,
    retry_after_503: int = 0,
    done: int | None = None,
) -> Bucket:
    """The bucket ``at_s`` seconds into the run, every attempt taking ``latency_s``."""
    b = Bucket(IDX0 + round(at_s * 10))
    b.statuses = {code: n for code, n in statuses.items() if n}
    n = sum(b.statuses.values())
    b.latency.record(latency_s, n)
    b.attempts = n
    b.done = n if done is None else done
    b.retry_after_503 = retry_after_503
    return b


def run(
    buckets: list[Bucket],
    *,
    attempts: tuple[AttemptRecord, ...] = (),
    faults: tuple[FaultTimes, ...] = (),
    max_attempts: int | None = None,
) -> RunData:
    """Phases warmup 0..10 s and spike 10..30 s; the run ends at 30 s. Buckets of the same
    100 ms are summed, as the run store does."""
    merged: dict[int, Bucket] = {}
    for b in buckets:
        if b.idx in merged:
            merged[b.idx].merge(b)
        else:
            merged[b.idx] = b
    return RunData(
        start=T0,
        end=T0 + 30,
        buckets=tuple(merged[idx] for idx in sorted(merged)),
        attempts=attempts,
        phases=(("warmup", Span(T0, T0 + 10)), ("spike", Span(T0 + 10, T0 + 30))),
        faults=faults,
        max_attempts=max_attempts,
    )


def check(text: str, data: RunData) -> Verdict:
    return evaluate(parse_slo(text), data)


def spread(total: dict[int, int], start_s: float, seconds: float) -> list[Bucket]:
    """``total`` responses per status spread evenly over the buckets of a stretch (exactly)."""
    count = round(seconds * 10)
    out = []
    for i in range(count):
        share = {code: n // count + (1 if i < n % count else 0) for code, n in total.items()}
        out.append(bucket(start_s + i / 10, share))
    return out


# --- ratio, count --------------------------------------------------------------------------------


def test_a_503_ratio_of_exactly_7_5_percent_in_the_phase_is_observed_as_such() -> None:
    # Warm-up is full of 503s: the spike's window must keep them out.
    data = run(spread({200: 50, 503: 50}, 0, 10) + spread({200: 925, 503: 75}, 10, 20))
    passing = check("ratio(status == 503) < 10% during phase spike", data)
    failing = check("ratio(status == 503) < 5% during phase spike", data)
    for verdict in (passing, failing):
        assert verdict.observed == pytest.approx(0.075, rel=1e-12)
        assert verdict.observed_text == "7.5%"
        assert verdict.window_label == "phase spike"
        assert "75 of 1,000 responses match status == 503" in verdict.detail
    assert passing.passed
    assert not failing.passed
    assert failing.threshold_text == "5%"
    assert check("ratio(status == 503) == 7.5% during phase spike", data).passed


def test_a_ratio_over_the_whole_run_takes_every_phase() -> None:
    data = run(spread({200: 50, 503: 50}, 0, 10) + spread({200: 925, 503: 75}, 10, 20))
    verdict = check("ratio(status == 503) < 12% ", data)
    assert verdict.observed == pytest.approx(125 / 1100)
    assert verdict.passed
    assert verdict.window_label == "whole run"


def test_no_response_counts_as_a_response_in_a_ratio() -> None:
    data = run(spread({200: 90, 0: 10}, 10, 1))
    verdict = check("ratio(status == 0) <= 10% during phase spike", data)
    assert verdict.observed == pytest.approx(0.10)
    assert verdict.passed
    assert not check("ratio(status == 0) < 10% during phase spike", data).passed


def test_a_ratio_with_where_divides_by_the_responses_matching_where() -> None:
    data = run(spread({200: 900, 500: 25, 502: 25, 503: 50}, 10, 10))
    verdict = check("ratio(status == 503, where status >= 500) >= 50%", data)
    assert verdict.observed == pytest.approx(0.5)
    assert verdict.passed
    assert not check("ratio(status == 503, where status >= 500) > 50%", data).passed


def test_a_class_predicate_counts_the_whole_hundred() -> None:
    data = run(spread({200: 980, 500: 5, 502: 5, 503: 10}, 10, 10))
    assert check("ratio(status == 5xx and status != 503) <= 1%", data).passed
    assert not check("ratio(status == 5xx) <= 1%", data).passed


def test_count_of_500s_passes_at_zero_and_fails_at_one() -> None:
    clean = run(spread({200: 500}, 0, 30))
    dirty = run([*spread({200: 500}, 0, 30), bucket(12.3, {500: 1})])
    assert check("count(status == 500) == 0", clean).passed
    verdict = check("count(status == 500) == 0", dirty)
    assert not verdict.passed
    assert verdict.observed == 1
    assert verdict.observed_text == "1"


def test_count_in_a_window_ignores_what_is_outside_it() -> None:
    data = run([*spread({200: 100}, 0, 10), bucket(15, {0: 4})])
    assert check("count(status == 0) == 0 during phase warmup", data).passed
    assert not check("count(status == 0) == 0 during phase spike", data).passed


# --- latency, availability, Retry-After, amplification -------------------------------------------


def test_p99_of_a_known_latency_distribution() -> None:
    # 1000 attempts taking 1 ms, 2 ms, ..., 1000 ms: the nearest-rank p99 is 990 ms.
    buckets = []
    for i in range(100):
        b = Bucket(IDX0 + 100 + i)
        for k in range(10):
            b.latency.record((i * 10 + k + 1) / 1000)
        b.statuses = {200: 10}
        b.attempts = b.done = 10
        buckets.append(b)
    data = run(buckets)
    passing = check("p99(latency) < 1s during phase spike", data)
    assert passing.observed == pytest.approx(0.990, rel=0.01)  # the histogram's 1%
    assert passing.passed
    assert passing.unit == "s"
    failing = check("p99(latency) < 900ms during phase spike", data)
    assert not failing.passed
    assert failing.unit == "ms"
    assert failing.observed_text == f"{passing.observed * 1000:.4g}ms"  # type: ignore[operator]
    assert check("p50(latency) < 510ms", data).passed
    assert not check("p50(latency) < 490ms", data).passed


def test_availability_counts_no_response_and_5xx_as_unavailable() -> None:
    data = run(spread({200: 985, 404: 10, 0: 3, 500: 2}, 10, 10))
    verdict = check("availability >= 99.5% during phase spike", data)
    assert verdict.observed == pytest.approx(0.995)
    assert verdict.passed
    assert not check("availability >= 99.9% during phase spike", data).passed


def test_retry_after_share_is_503s_with_retry_after_over_503s() -> None:
    buckets = [bucket(10 + i / 10, {503: 2, 200: 8}, retry_after_503=2) for i in range(100)]
    buckets[0] = bucket(10, {503: 2, 200: 8}, retry_after_503=0)  # 198 of 200
    data = run(buckets)
    verdict = check("ratio(retry_after, where status == 503) >= 99%", data)
    assert verdict.observed == pytest.approx(0.99)
    assert verdict.passed
    assert not check("ratio(retry_after, where status == 503) == 100%", data).passed


def test_retry_amplification_is_attempts_over_logical_requests() -> None:
    data = run([bucket(10 + i / 10, {200: 10, 503: 3}, done=10) for i in range(100)])
    verdict = check("retry_amplification < 1.5 during phase spike", data)
    assert verdict.observed == pytest.approx(1.3)
    assert verdict.passed
    assert not check("retry_amplification < 1.2 during phase spike", data).passed


# --- windows -------------------------------------------------------------------------------------


def test_a_fault_window_runs_from_injection_to_revert_plus_what_is_asked() -> None:
    fault = FaultTimes(
        "slow-db", "toxic", Span(T0 + 12, T0 + 17), injected_at=T0 + 12.0, reverted_at=T0 + 17.0
    )
    # 503s during the fault (12..17 s), 502s in the 5 s after, 500s after that.
    data = run(
        spread({200: 500}, 0, 12)
        + spread({503: 50}, 12, 5)
        + spread({502: 50}, 17, 5)
        + spread({500: 80}, 22, 8),
        faults=(fault,),
    )
    during = check("ratio(status == 503) == 100% during fault slow-db", data)
    assert during.passed
    assert during.window_label == "fault slow-db"
    after = check("count(status == 502) == 50 during fault slow-db + 5s", data)
    assert after.passed
    assert after.window_label == "fault slow-db + 5s"
    assert check("count(status == 500) == 0 during fault slow-db + 5s", data).passed
    assert check("count(status == 502) == 50 during slow-db + 10s", data).passed
    assert not check("count(status == 500) == 0 during slow-db + 10s", data).passed


def test_a_self_healing_fault_window_lasts_its_planned_length() -> None:
    fault = FaultTimes(
        "restart-app-1",
        "restart",
        Span(T0 + 12, T0 + 15),
        injected_at=T0 + 12.2,
        reverted_at=T0 + 12.3,
        self_healing=True,
    )
    span = resolve_window(Window("fault", "restart-app-1"), run([], faults=(fault,)))
    assert span == Span(T0 + 12.2, T0 + 15.2)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ratio(status == 503) < 5% during phase spike", "no responses in the window"),
        ("p99(latency) < 1s during phase spike", "no attempts, so no latency"),
        ("availability >= 99% during phase spike", "no responses in the window"),
        ("ratio(retry_after, where status == 503) >= 99%", "no responses in the window"),
        ("retry_amplification < 1.5 during phase spike", "no logical request finished"),
        ("count(status == 500) == 0 during phase spike", "no responses in the window"),
    ],
)
def test_a_window_without_data_fails_and_says_why(text: str, why: str) -> None:
    data = run(spread({200: 100}, 0, 10) if "503" not in text else [])
    verdict = check(text, data)
    assert verdict.observed is None
    assert not verdict.passed
    assert why in verdict.detail
    assert verdict.observed_text == "none"


def test_a_phase_that_never_ran_fails_the_slo() -> None:
    data = RunData(
        start=T0,
        end=T0 + 10,
        buckets=tuple(spread({200: 100}, 0, 10)),
        phases=(("warmup", Span(T0, T0 + 10)), ("spike", None)),
    )
    verdict = check("ratio(status == 503) < 5% during phase spike", data)
    assert not verdict.passed
    assert verdict.detail == "phase spike never ran"


def test_a_fault_that_was_never_injected_fails_an_slo_over_its_window() -> None:
    fault = FaultTimes("kill-app-1", "kill", Span(T0 + 12, T0 + 17))
    verdict = check("availability >= 99% during fault kill-app-1", run([], faults=(fault,)))
    assert not verdict.passed
    assert verdict.detail == "fault kill-app-1 was never injected"


# --- the attempt log -----------------------------------------------------------------------------


def retried(
    logical_id: int,
    at_s: float,
    waits: list[float],
    *,
    latency_s: float = 0.1,
    retry_after: float | None = None,
) -> list[AttemptRecord]:
    """One logical request: attempt 1 at ``at_s``, then a retry ``wait`` after each response
    arrived; each retried response carried ``retry_after`` (None: no Retry-After)."""
    records = []
    t = T0 + at_s
    for attempt in range(1, len(waits) + 2):
        followed = retry_after if attempt > 1 else None
        status = 200 if attempt == len(waits) + 1 else 503
        records.append(AttemptRecord(logical_id, attempt, t, status, latency_s, followed))
        if attempt <= len(waits):
            t += latency_s + waits[attempt - 1]
    return records


def test_retry_after_compliance_of_retries_violating_by_a_known_share() -> None:
    attempts = []
    for i in range(10):
        # Retry-After: 1 s. Eight wait 1.2 s; two come back after 0.5 s.
        attempts += retried(i, 11 + i, [1.2 if i < 8 else 0.5], retry_after=1.0)
    data = run([], attempts=tuple(attempts))
    verdict = check("retry_after_compliance >= 80%", data)
    assert verdict.observed == pytest.approx(0.8)
    assert verdict.passed
    assert "8 of 10 retries" in verdict.detail
    assert "earliest came 0.5s early" in verdict.detail
    assert not check("retry_after_compliance >= 99%", data).passed


def test_retry_after_counts_from_when_the_503_arrived_not_when_it_was_sent() -> None:
    # The 503 took 0.3 s; the retry starts 1.1 s after the 503 was *sent*: 0.8 s after it came.
    early = retried(1, 11, [0.8], latency_s=0.3, retry_after=1.0)
    assert early[1].t - early[0].t == pytest.approx(1.1)
    # And one that waited 1.0 s exactly, from arrival: compliant.
    exact = retried(2, 12, [1.0], latency_s=0.3, retry_after=1.0)
    data = run([], attempts=(*early, *exact))
    verdict = check("retry_after_compliance == 50%", data)
    assert verdict.passed, verdict


def test_retry_after_compliance_without_such_retries_is_not_applicable() -> None:
    data = run([], attempts=tuple(retried(1, 11, [0.2, 0.4])))
    verdict = check("retry_after_compliance >= 99%", data)
    assert verdict.observed is None
    assert verdict.outcome == "n/a"
    assert verdict.passed
    assert "no retry followed a response with Retry-After" in verdict.detail


def test_backoff_growth_of_a_geometric_series_is_its_ratio() -> None:
    attempts = []
    for i in range(5):
        attempts += retried(i, 10 + i, [0.1, 0.2, 0.4, 0.8])
    data = run([], attempts=tuple(attempts))
    verdict = check("backoff_growth >= 1.5", data)
    assert verdict.observed == pytest.approx(2.0)
    assert verdict.passed
    assert not check("backoff_growth >= 2.5", data).passed


def test_constant_waits_do_not_grow() -> None:
    data = run([], attempts=tuple(retried(1, 10, [0.3, 0.3, 0.3])))
    verdict = check("backoff_growth >= 1.5", data)
    assert verdict.observed == pytest.approx(1.0)
    assert not verdict.passed


def test_waits_dictated_by_retry_after_are_not_counted_as_backoff() -> None:
    data = run([], attempts=tuple(retried(1, 10, [1.0, 1.0, 1.0], retry_after=1.0)))
    verdict = check("backoff_growth >= 1.5", data)
    assert verdict.observed is None
    assert verdict.outcome == "n/a"  # the server chose every wait: no backoff to judge
    assert verdict.passed
    assert "two successive waits of its own" in verdict.detail


def test_immediate_retries_have_no_backoff_growth() -> None:
    data = run([], attempts=tuple(retried(1, 10, [0.001, 0.005, 0.009])))
    verdict = check("backoff_growth >= 1.5", data)
    assert verdict.observed is None
    assert verdict.outcome == "fail"  # retrying at once is the failure, whatever no_data says


def test_jitter_spread_is_the_coefficient_of_variation_of_first_waits() -> None:
    attempts = []
    for i, wait in enumerate([0.1, 0.3, 0.1, 0.3]):
        attempts += retried(i, 10 + i, [wait])
    data = run([], attempts=tuple(attempts))
    verdict = check("jitter_spread > 0.1", data)
    assert verdict.observed == pytest.approx(0.5)  # mean 0.2, population stdev 0.1
    assert verdict.passed
    assert not check("jitter_spread > 0.6", data).passed


def test_no_jitter_spreads_nothing() -> None:
    attempts = []
    for i in range(4):
        attempts += retried(i, 10 + i, [0.2, 0.4])
    verdict = check("jitter_spread > 0.1", run([], attempts=tuple(attempts)))
    assert verdict.observed == pytest.approx(0.0, abs=1e-9)
    assert not verdict.passed


def test_immediate_first_retries_have_zero_spread_not_noise() -> None:
    attempts = []
    for i, wait in enumerate([0.0001, 0.003, 0.0005, 0.002]):
        attempts += retried(i, 10 + i, [wait])
    verdict = check("jitter_spread > 0.1", run([], attempts=tuple(attempts)))
    assert verdict.observed == 0.0
    assert "immediate" in verdict.detail


def test_attempt_cap_share_of_logical_requests_within_the_cap() -> None:
    # 100 logical requests done in the spike; three of them took five attempts.
    buckets = [bucket(10 + i / 10, {200: 1}) for i in range(100)]
    attempts = []
    for i in range(3):
        attempts += retried(i, 10 + i, [0.1, 0.2, 0.4, 0.8])
    attempts += retried(9, 15, [0.1, 0.2, 0.4])  # four: within a cap of 4
    data = run(buckets, attempts=tuple(attempts))
    failing = check("attempt_cap_respected(4) == 100% during phase spike", data)
    assert failing.observed == pytest.approx(0.97)
    assert not failing.passed
    assert "(the most: 5)" in failing.detail
    assert check("attempt_cap_respected(5) == 100% during phase spike", data).passed
    assert check("attempt_cap_respected(4) >= 97%", data).passed


def test_attempt_cap_comes_from_the_run_when_not_written() -> None:
    buckets = [bucket(10 + i / 10, {200: 1}) for i in range(100)]
    attempts = tuple(retried(1, 10, [0.1, 0.2, 0.4, 0.8]))
    assert check(
        "attempt_cap_respected == 100%", run(buckets, attempts=attempts, max_attempts=5)
    ).passed
    assert not check(
        "attempt_cap_respected == 100%", run(buckets, attempts=attempts, max_attempts=4)
    ).passed
    unknown = check("attempt_cap_respected == 100%", run(buckets, attempts=attempts))
    assert unknown.observed is None
    assert not unknown.passed
    assert "cap is unknown" in unknown.detail


def test_a_retry_counts_in_the_window_it_was_sent_in() -> None:
    # Attempt 1 in warm-up (9.5 s), its early retry in the spike.
    attempts = tuple(retried(1, 9.5, [0.5], retry_after=1.0))
    data = run([], attempts=attempts)
    assert check("retry_after_compliance == 0% during phase spike", data).passed
    assert check("retry_after_compliance == 0% during phase warmup", data).observed is None


def test_displayed_values_use_the_unit_the_threshold_was_written_in() -> None:
    data = run([bucket(10 + i / 10, {200: 10}, latency_s=0.25) for i in range(10)])
    in_ms = check("p95(latency) < 300ms", data)
    in_s = check("p95(latency) < 0.3s", data)
    assert in_ms.observed_text.endswith("ms")
    assert in_s.observed_text.endswith("s")
    assert not in_s.observed_text.endswith("ms")
    assert math.isclose(
        float(in_ms.observed_text[:-2]) / 1000, float(in_s.observed_text[:-1]), rel_tol=1e-3
    )
    assert "PASS" in str(in_ms)


@pytest.mark.parametrize(
    ("comparator", "passed"),
    [("==", True), ("!=", False), ("<=", True), ("<", False), (">=", True), (">", False)],
)
def test_every_comparator_at_the_boundary(comparator: str, passed: bool) -> None:
    # 75 of 1000 is 7.5% exactly, whichever way the float arithmetic rounds it.
    data = run(spread({200: 925, 503: 75}, 10, 20))
    verdict = check(f"ratio(status == 503) {comparator} 7.5% during phase spike", data)
    assert verdict.passed is passed


def test_equality_tolerates_float_rounding_and_nothing_more() -> None:
    assert compare(0.1 + 0.2, "==", 0.3)
    assert compare(0.1 + 0.2, "<=", 0.3)
    assert not compare(0.1 + 0.2, ">", 0.3)
    assert not compare(0.3001, "==", 0.3)
    assert compare(0.3001, ">", 0.3)
