"""Recovery after a fault, against outages whose length is known: found within one bucket of
the truth, with and without noise; never recovering is a failure that says so."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from harness.record.buckets import Bucket
from harness.verdict.evaluate import evaluate
from harness.verdict.language import parse_slo
from harness.verdict.recovery import FaultRecovery, RecoveryPolicy, analyse_fault
from harness.verdict.rundata import FaultTimes, RunData, Span

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000
BUCKET = 0.1  # one bucket: the precision recovery is promised to

# What the service does at t seconds into the run: (share of good responses, latency in s);
# None for silence (no responses at all).
Profile = Callable[[float], tuple[float, float] | None]


def simulate(
    profile: Profile,
    *,
    until: float = 60.0,
    per_bucket: int = 20,
    rng: random.Random | None = None,
) -> list[Bucket]:
    """Buckets of a run that follows ``profile``. Without ``rng`` the good share is exact per
    bucket and every latency the profile's; with it, each response is drawn (noise)."""
    buckets = []
    for i in range(round(until * 10)):
        shape = profile(i / 10)
        if shape is None:
            continue
        good_share, latency = shape
        b = Bucket(IDX0 + i)
        good_exact = round(good_share * per_bucket)
        for k in range(per_bucket):
            good = rng.random() < good_share if rng else k < good_exact
            status = 200 if good else 502
            b.statuses[status] = b.statuses.get(status, 0) + 1
            b.latency.record(latency * rng.lognormvariate(0, 0.3) if rng else latency)
            b.attempts += 1
            b.done += 1
        buckets.append(b)
    return buckets


def outage(
    start: float, end: float, *, healthy: float = 1.0, during: float = 0.0, latency: float = 0.05
) -> Profile:
    def shape(t: float) -> tuple[float, float]:
        if start <= t < end:
            return (during, 0.005)  # a dead backend answers fast: 502 from the balancer
        return (healthy, latency)

    return shape


def run(buckets: list[Bucket], *faults: FaultTimes, end: float = 60.0) -> RunData:
    """Phases warmup 0..20 s and spike 20..60 s."""
    return RunData(
        start=T0,
        end=T0 + end,
        buckets=tuple(buckets),
        phases=(("warmup", Span(T0, T0 + 20)), ("spike", Span(T0 + 20, T0 + end))),
        faults=faults,
    )


def kill(
    injected: float | None = 25.0,
    reverted: float | None = 35.0,
    *,
    name: str = "kill-app-1",
    self_healing: bool = False,
) -> FaultTimes:
    return FaultTimes(
        name,
        "restart" if self_healing else "kill",
        Span(T0 + 25, T0 + 35),
        injected_at=None if injected is None else T0 + injected,
        reverted_at=None if reverted is None else T0 + reverted,
        self_healing=self_healing,
    )


def analyse(data: RunData, name: str = "kill-app-1", **kwargs: object) -> FaultRecovery:
    return analyse_fault(data, name, **kwargs)  # type: ignore[arg-type]


# --- recovery time -------------------------------------------------------------------------------


def test_an_outage_of_known_length_recovers_within_one_bucket_of_the_truth() -> None:
    # Reverted at 35 s; the backend keeps failing until 38 s: 3 s of recovery.
    data = run(simulate(outage(25.0, 38.0)), kill())
    recovery = analyse(data)
    assert recovery.recovery_time == pytest.approx(3.0, abs=BUCKET)
    assert recovery.recovered
    assert "recovered 3s after the revert" in recovery.detail

    passing = evaluate(parse_slo("recovery_time(kill-app-1) < 5s"), data)
    assert passing.passed
    assert passing.observed == pytest.approx(3.0, abs=BUCKET)
    assert passing.window_label == "after fault kill-app-1"
    failing = evaluate(parse_slo("recovery_time(kill-app-1) < 2s"), data)
    assert not failing.passed
    assert failing.observed_text == "3s"


@pytest.mark.parametrize("seed", range(8))
def test_a_noisy_outage_still_recovers_within_one_bucket_of_the_truth(seed: int) -> None:
    # 1% errors even when healthy, latencies spread lognormally; during the outage a fifth of
    # requests still get through (the other instances).
    rng = random.Random(seed)
    profile = outage(25.0, 38.0, healthy=0.99, during=0.2)
    data = run(simulate(profile, rng=rng), kill())
    assert analyse(data).recovery_time == pytest.approx(3.0, abs=BUCKET)


def test_latency_counts_too_recovery_waits_for_p95_to_come_back() -> None:
    # Errors stop at 38 s, but answers take a second until 40 s (cold caches).
    def profile(t: float) -> tuple[float, float]:
        if 25.0 <= t < 38.0:
            return (0.0, 0.005)
        if 38.0 <= t < 40.0:
            return (1.0, 1.0)
        return (1.0, 0.05)

    recovery = analyse(run(simulate(profile), kill()))
    assert recovery.recovery_time == pytest.approx(5.0, abs=BUCKET)
    assert recovery.bounds is not None
    assert recovery.bounds.max_p95_s == pytest.approx(0.15, rel=0.02)  # 50 ms + 100 ms


def test_a_relapse_inside_the_stable_window_restarts_the_wait() -> None:
    def profile(t: float) -> tuple[float, float]:
        bad = 25.0 <= t < 38.0 or 41.0 <= t < 42.0
        return (0.0, 0.005) if bad else (1.0, 0.05)

    assert analyse(run(simulate(profile), kill())).recovery_time == pytest.approx(7.0, abs=BUCKET)


def test_silence_after_the_revert_is_not_recovery() -> None:
    def profile(t: float) -> tuple[float, float] | None:
        if 25.0 <= t < 35.0:
            return (0.0, 0.005)
        if 35.0 <= t < 44.0:
            return None  # every client is waiting on a long backoff
        return (1.0, 0.05)

    assert analyse(run(simulate(profile), kill())).recovery_time == pytest.approx(9.0, abs=BUCKET)


def test_a_service_that_never_recovers_fails_with_never_recovered() -> None:
    data = run(simulate(outage(25.0, 60.0)), kill())
    recovery = analyse(data)
    assert recovery.recovered_at is None
    assert recovery.recovery_time is None
    assert recovery.detail.startswith("never recovered: in the 25s from the revert")
    verdict = evaluate(parse_slo("recovery_time(kill-app-1) < 10s"), data)
    assert verdict.observed is None
    assert not verdict.passed
    assert verdict.detail.startswith("never recovered")


def test_recovering_too_late_to_show_a_stable_window_is_never_recovering() -> None:
    # Back at 57 s; 3 s of good data before the run ends is less than the 5 s stable window.
    assert analyse(run(simulate(outage(25.0, 57.0)), kill())).recovered_at is None


def test_a_self_healing_fault_is_measured_from_its_injection() -> None:
    restart = kill(25.0, 25.0, name="restart-app-1", self_healing=True)
    recovery = analyse(run(simulate(outage(25.0, 27.0)), restart), "restart-app-1")
    assert recovery.reference_at == T0 + 25.0
    assert recovery.recovery_time == pytest.approx(2.0, abs=BUCKET)
    assert "after the injection" in recovery.detail


def test_a_fault_never_reverted_never_recovers() -> None:
    recovery = analyse(run(simulate(outage(25.0, 30.0)), kill(25.0, None)))
    assert recovery.recovered_at is None
    assert "never reverted" in recovery.detail
    assert recovery.failed_requests == 50 * 20  # counted to the end of the run


def test_a_fault_never_injected_has_nothing_to_measure() -> None:
    data = run(simulate(outage(0, 0)), kill(None, None))
    recovery = analyse(data)
    assert recovery.detail == "kill-app-1 was never injected"
    assert recovery.recovery_time is None
    assert not evaluate(parse_slo("recovery_time(kill-app-1) < 10s"), data).passed


def test_no_fault_of_that_name_fails_rather_than_crashes() -> None:
    verdict = evaluate(parse_slo("recovery_time(nope) < 10s"), run(simulate(outage(0, 0))))
    assert not verdict.passed
    assert verdict.detail == 'no fault "nope" in this run'


# --- the baseline --------------------------------------------------------------------------------


def test_the_baseline_is_the_first_phase_without_the_time_a_fault_disturbed_it() -> None:
    # A fault in the warm-up (5..8 s, reverted at 8 s) must not poison the baseline.
    early = FaultTimes(
        "early", "kill", Span(T0 + 5, T0 + 8), injected_at=T0 + 5, reverted_at=T0 + 8
    )

    def profile(t: float) -> tuple[float, float]:
        return (0.0, 0.005) if 5.0 <= t < 9.0 or 25.0 <= t < 38.0 else (1.0, 0.05)

    recovery = analyse(run(simulate(profile), early, kill()))
    assert recovery.bounds is not None
    assert recovery.bounds.good_ratio == 1.0
    assert recovery.bounds.phase == "warmup"
    assert recovery.bounds.min_good_ratio == pytest.approx(0.95)  # the 5% relative margin
    assert recovery.recovery_time == pytest.approx(3.0, abs=BUCKET)


def test_a_named_baseline_phase_sets_the_bounds() -> None:
    # The spike runs at 90% good (shedding load): against the spike, 90% is recovered.
    def profile(t: float) -> tuple[float, float]:
        if 25.0 <= t < 38.0:
            return (0.0, 0.005)
        return (0.9, 0.05) if t >= 20.0 else (1.0, 0.05)

    data = run(simulate(profile), kill())
    against_warmup = analyse(data)
    against_spike = analyse(data, baseline="spike")
    assert against_warmup.recovered_at is None
    assert against_spike.bounds is not None
    assert against_spike.bounds.good_ratio == pytest.approx(0.9)
    assert against_spike.recovery_time == pytest.approx(3.0, abs=BUCKET)
    assert evaluate(parse_slo("recovery_time(kill-app-1, baseline spike) < 5s"), data).passed
    assert not evaluate(parse_slo("recovery_time(kill-app-1) < 5s"), data).passed


def test_a_baseline_without_responses_is_explained() -> None:
    data = run(simulate(lambda t: None if t < 20 else (1.0, 0.05)), kill())
    recovery = analyse(data)
    assert recovery.bounds is None
    assert "baseline phase warmup has no responses" in recovery.detail


def test_the_policy_is_adjustable() -> None:
    data = run(simulate(outage(25.0, 38.0)), kill())
    longer = analyse(data, policy=RecoveryPolicy(stable_s=10.0))
    assert longer.recovery_time == pytest.approx(3.0, abs=BUCKET)
    with pytest.raises(ValueError, match="step_s"):
        RecoveryPolicy(step_s=2.0, stable_s=1.0)


# --- impact and cost -----------------------------------------------------------------------------


def test_time_to_first_impact_of_a_delayed_outage() -> None:
    # Injected at 25 s; the balancer notices nothing until 25.5 s.
    data = run(simulate(outage(25.5, 38.0)), kill())
    assert analyse(data).time_to_first_impact == pytest.approx(0.5, abs=BUCKET)
    assert evaluate(parse_slo("time_to_first_impact(kill-app-1) > 0.2s"), data).passed
    failing = evaluate(parse_slo("time_to_first_impact(kill-app-1) > 1s"), data)
    assert not failing.passed
    assert failing.observed == pytest.approx(0.5, abs=BUCKET)


def test_a_fault_without_impact_has_no_time_to_first_impact() -> None:
    data = run(simulate(outage(0, 0)), kill())
    recovery = analyse(data)
    assert recovery.impact_at is None
    assert recovery.recovery_time == pytest.approx(0.0, abs=BUCKET)
    verdict = evaluate(parse_slo("time_to_first_impact(kill-app-1) > 0s"), data)
    assert not verdict.passed
    assert verdict.detail.startswith("no impact seen")


def test_the_next_faults_impact_is_not_this_ones() -> None:
    # The kill (25..35 s) is absorbed by the balancer; an outage from 45 s (another fault) must
    # not show as the kill's first impact 20 s late.
    data = run(simulate(outage(45.0, 48.0)), kill())
    recovery = analyse(data)
    assert recovery.recovery_time == pytest.approx(0.0, abs=BUCKET)
    assert recovery.impact_at is None
    assert recovery.failed_requests == 0
    verdict = evaluate(parse_slo("time_to_first_impact(kill-app-1) > 0s"), data)
    assert verdict.detail.startswith("no impact seen")


def test_failed_requests_from_injection_to_recovery_are_counted_exactly() -> None:
    # 25..38 s of 502s at 20 responses per bucket: 130 buckets, 2600 failures.
    data = run(simulate(outage(25.0, 38.0)), kill())
    assert analyse(data).failed_requests == 2600
    passing = evaluate(parse_slo("failed_requests(kill-app-1) < 3000"), data)
    assert passing.passed
    assert passing.observed == 2600
    assert "to the recovery" in passing.detail
    assert not evaluate(parse_slo("failed_requests(kill-app-1) < 2000"), data).passed


def test_an_impact_by_silence_is_dated_from_the_first_silent_bucket() -> None:
    # Paused at 25.5 s: no attempt starts, so nothing is recorded, until 38 s.
    def profile(t: float) -> tuple[float, float] | None:
        return None if 25.5 <= t < 38.0 else (1.0, 0.05)

    recovery = analyse(run(simulate(profile), kill()))
    assert recovery.time_to_first_impact == pytest.approx(0.5, abs=BUCKET)
    assert recovery.recovery_time == pytest.approx(3.0, abs=BUCKET)


def test_a_trickle_of_traffic_is_enough_to_date_the_recovery() -> None:
    # One response per 100 ms.
    data = run(simulate(outage(25.0, 38.0), per_bucket=1), kill())
    assert analyse(data).recovery_time == pytest.approx(3.0, abs=BUCKET)
