"""Recovery time against runs whose truth is known to the millisecond: every request is placed at
an exact time with an exact status, filed into 100 ms buckets as the recorder files them, and the
measured recovery must land within one bucket of the instant the service really came back.

The runs are those that fooled the earlier definition: a lone 503 then silence while clients
wait out Retry-After, 503-and-silence cycles, a trickle of answers, flapping."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterable

import pytest

from harness.record.buckets import Bucket
from harness.verdict.evaluate import evaluate
from harness.verdict.language import parse_slo
from harness.verdict.recovery import FaultRecovery, RecoveryPolicy, analyse_fault, min_answers
from harness.verdict.rundata import FaultTimes, RunData, Span

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
BUCKET = 0.1
CLIENTS = 20
EVERY = 0.05  # each client's pace when answered well: 20 clients x 20/s = 400 answers/s

Request = tuple[float, int]  # (seconds into the run, status); 0 = no response


def buckets_of(requests: Iterable[Request], latency: float = 0.005) -> tuple[Bucket, ...]:
    """File requests by their start time, as the recorder does."""
    # Counted first, then filed n at a time: a run here is tens of thousands of requests, and
    # filing each on its own made these the slowest of the unit tests for the same buckets.
    counted = Counter((math.floor((T0 + t) * 10), status) for t, status in requests)
    found: dict[int, Bucket] = {}
    for (idx, status), n in counted.items():
        bucket = found.setdefault(idx, Bucket(idx))
        bucket.statuses[status] = bucket.statuses.get(status, 0) + n
        bucket.latency.record(latency, n)
        bucket.attempts += n
        bucket.done += n
    return tuple(found[idx] for idx in sorted(found))


def steady(start: float, end: float, status: int = 200) -> list[Request]:
    """Every client at its pace, offset from each other, from ``start`` to ``end``."""
    return [
        (start + (i / CLIENTS + k) * EVERY, status)
        for i in range(CLIENTS)
        for k in range(math.ceil((end - start) / EVERY))
        if start + (i / CLIENTS + k) * EVERY < end
    ]


def retry_after_clients(start: float, back: float, end: float, phase: Callable[[int], float]):
    """Each client gets a 503 + Retry-After: 1 at ``start + phase(i)`` and every second after
    while the service is still refusing (before ``back``), then 200s at its pace until ``end``."""
    requests: list[Request] = []
    for i in range(CLIENTS):
        t = start + phase(i)
        while t < back:
            requests.append((t, 503))
            t += 1.0
        while t < end:
            requests.append((t, 200))
            t += EVERY
    return requests


def run(
    requests: Iterable[Request],
    *,
    injected: float = 25.0,
    reverted: float | None = 35.0,
    end: float = 60.0,
    failed_statuses: frozenset[int] = frozenset(),
) -> RunData:
    """Warm-up 0..20 s (the baseline), then the fault from ``injected`` to ``reverted``."""
    cut = FaultTimes(
        "cut",
        "down",
        Span(T0 + injected, T0 + (reverted if reverted is not None else end)),
        injected_at=T0 + injected,
        reverted_at=None if reverted is None else T0 + reverted,
    )
    return RunData(
        start=T0,
        end=T0 + end,
        buckets=buckets_of(requests),
        phases=(("warmup", Span(T0, T0 + 20)), ("main", Span(T0 + 20, T0 + end))),
        faults=(cut,),
        failed_statuses=failed_statuses,
    )


def recovery(data: RunData) -> FaultRecovery:
    return analyse_fault(data, "cut")


def healthy_then_cut(reverted: float = 35.0) -> list[Request]:
    """200s until the injection at 25 s, then no response (the link is down) until the revert."""
    return steady(0, 25.0) + steady(25.0, reverted, status=0)


# --- the definition's pieces ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "needed"),
    [(400.0, 100), (40.0, 10), (10.0, 3), (4.0, 3), (2.0, 2), (0.5, 1), (0.0, 1)],
)
def test_a_window_needs_a_quarter_of_the_baseline_answers_and_a_floor_of_three(
    rate: float, needed: int
) -> None:
    assert min_answers(rate) == needed


def test_the_baseline_rate_counts_silent_buckets() -> None:
    # One answer per second in the warm-up: 1/s, not 10/s (the one stored bucket per second).
    requests = [(float(t), 200) for t in range(20)] + [(t, 200) for t in range(25, 60)]
    bounds = recovery(run(requests)).bounds
    assert bounds is not None
    assert bounds.rate == pytest.approx(1.0)
    assert bounds.min_answers == 1


# --- known truths ---------------------------------------------------------------------------------


def test_a_clean_edge_on_a_bucket_boundary_is_exact() -> None:
    # Link back at 35 s; the service answers 503 to everything until exactly 43.0 s.
    data = run(healthy_then_cut() + steady(35.0, 43.0, 503) + steady(43.0, 60.0))
    assert recovery(data).recovery_time == pytest.approx(8.0, abs=1e-9)


@pytest.mark.parametrize("offset", [0.001, 0.013, 0.037, 0.05, 0.071, 0.099])
def test_a_clean_edge_inside_a_bucket_is_found_within_half_a_bucket(offset: float) -> None:
    # The revert is an instant, not a bucket edge: 35.0 + offset; the service is back 8.0 s
    # after it, inside a bucket too.
    reverted = 35.0 + offset
    back = reverted + 8.0
    requests = healthy_then_cut(reverted) + steady(reverted, back, 503) + steady(back, 60.0)
    found = recovery(run(requests, reverted=reverted)).recovery_time
    assert found == pytest.approx(8.0, abs=BUCKET / 2 + 1e-9)


def test_the_error_is_centred_on_zero_over_edges_anywhere_in_a_bucket() -> None:
    rng = random.Random(14)
    errors = []
    for _ in range(40):
        reverted = 35.0 + rng.random() * BUCKET
        back = reverted + 8.0 + rng.random() * BUCKET
        requests = healthy_then_cut(reverted) + steady(reverted, back, 503) + steady(back, 60.0)
        found = recovery(run(requests, reverted=reverted)).recovery_time
        assert found is not None
        errors.append(found - (back - reverted))
    assert max(abs(e) for e in errors) <= BUCKET
    assert abs(statistics.mean(errors)) < 0.015  # unbiased: not always late by half a bucket


def test_a_lone_503_then_silence_is_not_where_recovery_starts() -> None:
    # Every client is sleeping out a long backoff; one lone 503 each second (the one client still
    # trying), the last at 42.4 s; at 43.0 s the service is back and the clients too.
    lone = [(35.4 + k, 503) for k in range(8)]
    data = run(healthy_then_cut() + lone + steady(43.0, 60.0))
    assert recovery(data).recovery_time == pytest.approx(8.0, abs=BUCKET)


def test_retry_after_pauses_of_synchronised_clients_end_on_the_first_good_bucket() -> None:
    # All clients got their 503 + Retry-After: 1 in the same bucket, so 9 of 10 buckets are
    # silent; in the last cycle only one client is left asking (at 42.4 s). Back at 43.0 s.
    cycles = retry_after_clients(35.0, 42.4, 43.0, lambda i: 0.001 * i)
    data = run(healthy_then_cut() + cycles + [(42.4, 503)] + steady(43.0, 60.0))
    assert recovery(data).recovery_time == pytest.approx(8.0, abs=BUCKET)


def test_retry_after_pauses_of_spread_clients_come_back_over_a_second_and_still_count() -> None:
    # Clients spread over the second: two 503s a bucket for 8.0 s, then each client comes back
    # at its own Retry-After expiry (43.0..44.0 s): the first second after the truth holds about
    # half the baseline's answers, which must not delay the recovery.
    cycles = retry_after_clients(35.0, 43.0, 60.0, lambda i: i / CLIENTS)
    data = run(healthy_then_cut() + cycles)
    assert recovery(data).recovery_time == pytest.approx(8.0, abs=BUCKET)
    assert evaluate(parse_slo("recovery_time(cut) < 8.1s"), data).passed
    assert not evaluate(parse_slo("recovery_time(cut) < 7.8s"), data).passed


def test_a_trickle_of_good_answers_in_silence_is_not_recovery() -> None:
    # After the revert only one request a second gets through (the others wait a long backoff),
    # all 200: ratio and latency are fine, the count is not. Everyone is back at 47.0 s.
    trickle = [(35.0 + k, 200) for k in range(12)]
    data = run(healthy_then_cut() + trickle + steady(47.0, 60.0))
    assert recovery(data).recovery_time == pytest.approx(12.0, abs=BUCKET)


def test_flapping_recovers_when_it_stops_flapping() -> None:
    # Back 1 s, down 1 s, ... from the revert; steady from 41.0 s.
    flaps = []
    for k in range(6):
        flaps += steady(35.0 + k, 36.0 + k, 200 if k % 2 == 0 else 503)
    data = run(healthy_then_cut() + flaps + steady(41.0, 60.0))
    assert recovery(data).recovery_time == pytest.approx(6.0, abs=BUCKET)


def test_a_service_that_never_recovers_says_so_and_fails() -> None:
    data = run(healthy_then_cut() + steady(35.0, 60.0, 503))
    found = recovery(data)
    assert found.recovered_at is None
    assert found.detail.startswith("never recovered: in the 25s from the revert")
    verdict = evaluate(parse_slo("recovery_time(cut) < 30s"), data)
    assert not verdict.passed
    assert verdict.observed is None


def test_a_fault_at_the_very_end_of_the_run_never_recovers() -> None:
    # Reverted 2 s before the end: no room for a 5 s stable stretch, healthy or not.
    data = run(
        steady(0, 55.0) + steady(55.0, 58.0, 0) + steady(58.0, 60.0), injected=55.0, reverted=58.0
    )
    found = recovery(data)
    assert found.recovered_at is None
    assert found.detail.startswith("never recovered: in the 2s from the revert")
    # Reverted at the last instant, and never: the same answer, no crash.
    assert recovery(run(steady(0, 60.0), injected=55.0, reverted=60.0)).recovered_at is None
    assert recovery(run(steady(0, 60.0), injected=55.0, reverted=None)).recovered_at is None


# --- what counts as failed ------------------------------------------------------------------------


def test_an_honest_409_is_a_good_answer_unless_the_scenario_declares_it_failed() -> None:
    # After the revert the shop is sold out for 3 s (409), then sells again.
    requests = healthy_then_cut() + steady(35.0, 38.0, 409) + steady(38.0, 60.0)
    honest = recovery(run(requests))
    assert honest.recovery_time == pytest.approx(0.0, abs=BUCKET)
    assert honest.failed_requests == len(steady(25.0, 35.0, 0))  # the outage only
    declared = recovery(run(requests, failed_statuses=frozenset({409})))
    assert declared.recovery_time == pytest.approx(3.0, abs=BUCKET)
    assert declared.failed_requests == len(steady(25.0, 38.0, 0))


def test_the_answer_count_is_a_policy_constant() -> None:
    trickle = [(35.0 + k, 200) for k in range(12)]
    data = run(healthy_then_cut() + trickle + steady(47.0, 60.0))
    lenient = analyse_fault(data, "cut", policy=RecoveryPolicy(answered_share=0, min_answers=1))
    assert lenient.recovery_time == pytest.approx(0.0, abs=BUCKET)
