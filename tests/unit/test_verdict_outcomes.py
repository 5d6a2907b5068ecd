"""The four outcomes of an SLO (pass, fail, n/a, no data) and the ``no_data`` setting, on runs
built by hand whose true answer is known: a well-behaved client against a service that sends
Retry-After with every 503 passes its retry SLOs as n/a, a run without requests fails them."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from harness.errors import BadInputError
from harness.record.buckets import AttemptRecord, Bucket
from harness.scenario import Scenario, parse_scenario
from harness.verdict.evaluate import OUTCOMES, Verdict, evaluate
from harness.verdict.judge import judge_data
from harness.verdict.language import parse_slo
from harness.verdict.model import NoDataPolicy, SloExpr
from harness.verdict.rundata import RunData, Span

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000  # the bucket that starts at T0

RETRY_SLOS = {
    "growth": "backoff_growth >= 1.5",
    "jitter": "jitter_spread > 0.1",
    "compliance": "retry_after_compliance >= 99%",
    "share": "ratio(retry_after, where status == 503) >= 99%",
}


def bucket(at_s: float, statuses: dict[int, int], *, ra_503: int = 0, retries: int = 0) -> Bucket:
    b = Bucket(IDX0 + round(at_s * 10))
    b.statuses = dict(statuses)
    n = sum(statuses.values())
    b.latency.record(0.02, n)
    b.attempts = n
    b.done = n - retries
    b.retries = retries
    b.retry_after_503 = ra_503
    return b


def run(buckets: list[Bucket], attempts: list[AttemptRecord] | None = None) -> RunData:
    return RunData(
        start=T0,
        end=T0 + 30,
        buckets=tuple(sorted(buckets, key=lambda b: b.idx)),
        attempts=tuple(attempts or ()),
        phases=(("warmup", Span(T0, T0 + 10)), ("spike", Span(T0 + 10, T0 + 30))),
        max_attempts=4,
    )


def always_retry_after() -> RunData:
    """200s throughout; from 12 s to 15 s every answer is 503 with Retry-After: 1, and each of
    ten clients retries after waiting out exactly what it was told (1.05 s), then gets a 200."""
    buckets = [bucket(i / 10, {200: 10}) for i in range(300)]
    attempts = []
    for client in range(10):
        t = T0 + 12 + client * 0.1
        attempts.append(AttemptRecord(f"w0:{client}", 1, t, 503, 0.01, None))
        attempts.append(AttemptRecord(f"w0:{client}", 2, t + 1.06, 503, 0.01, 1.0))
        attempts.append(AttemptRecord(f"w0:{client}", 3, t + 2.12, 200, 0.01, 1.0))
        buckets.append(bucket(12 + client * 0.1, {503: 1}, ra_503=1))
        buckets.append(bucket(13.1 + client * 0.1, {503: 1}, ra_503=1, retries=1))
        buckets.append(bucket(14.2 + client * 0.1, {200: 1}, retries=1))
    return run(_merged(buckets), attempts)


def _merged(buckets: list[Bucket]) -> list[Bucket]:
    by_idx: dict[int, Bucket] = {}
    for b in buckets:
        if b.idx in by_idx:
            by_idx[b.idx].merge(b)
        else:
            by_idx[b.idx] = b
    return list(by_idx.values())


def check(text: str, data: RunData) -> Verdict:
    return evaluate(parse_slo(text), data)


# --- n/a -----------------------------------------------------------------------------------


def test_a_polite_client_against_retry_after_everywhere_gets_n_a_for_its_own_backoff() -> None:
    data = always_retry_after()
    for key in ("growth", "jitter"):
        verdict = check(RETRY_SLOS[key], data)
        assert verdict.outcome == "n/a", verdict
        assert verdict.passed
        assert verdict.observed is None
        assert "all 20 retries in the window followed a Retry-After" in verdict.detail
        assert verdict.observed_text == "n/a"
    compliance = check(RETRY_SLOS["compliance"], data)
    assert (compliance.outcome, compliance.observed) == ("pass", 1.0)
    share = check(RETRY_SLOS["share"], data)
    assert (share.outcome, share.observed) == ("pass", 1.0)


def test_a_run_without_a_single_retry_has_nothing_for_the_retry_slos_to_object_to() -> None:
    data = run([bucket(i / 10, {200: 10}) for i in range(300)])
    for text in RETRY_SLOS.values():
        verdict = check(text, data)
        assert verdict.outcome == "n/a", verdict
        assert verdict.passed
    assert "no request was retried" in check(RETRY_SLOS["growth"], data).detail
    assert "no 503 responses" in check(RETRY_SLOS["share"], data).detail


def test_a_share_of_responses_none_of_which_is_of_the_kind_asked_about_is_n_a() -> None:
    data = run([bucket(i / 10, {200: 10}) for i in range(300)])
    verdict = check("ratio(status == 503, where status >= 500) < 50%", data)
    assert verdict.outcome == "n/a"
    assert verdict.passed


def test_one_retry_of_its_own_per_request_is_no_backoff_to_grow() -> None:
    attempts = [
        AttemptRecord(i, n, T0 + 11 + i + (n - 1) * 0.3, 503 if n == 1 else 200, 0.05, None)
        for i in range(5)
        for n in (1, 2)
    ]
    verdict = check(RETRY_SLOS["growth"], run([], attempts))
    assert verdict.outcome == "n/a"
    assert "5 retries in the window, 0 of them after a Retry-After" in verdict.detail


# --- no data -------------------------------------------------------------------------------


def test_a_run_with_no_requests_at_all_has_no_data_and_fails_by_default() -> None:
    data = run([])
    for text in [*RETRY_SLOS.values(), "availability >= 99%", "p99(latency) < 1s"]:
        verdict = check(text, data)
        assert verdict.outcome == "no data", verdict
        assert not verdict.passed


def test_retries_the_attempt_log_does_not_hold_are_no_data_not_n_a() -> None:
    # A locustfile that retried (the buckets count retries) without the log holding them.
    data = run([bucket(12 + i / 10, {503: 5, 200: 5}, ra_503=5, retries=5) for i in range(10)])
    for key in ("growth", "jitter", "compliance"):
        verdict = check(RETRY_SLOS[key], data)
        assert verdict.outcome == "no data", verdict
        assert "50 retries in the window, none of them in the attempt log" in verdict.detail


def test_a_single_first_retry_is_too_little_for_a_spread() -> None:
    attempts = [
        AttemptRecord(1, 1, T0 + 11, 503, 0.05, None),
        AttemptRecord(1, 2, T0 + 11.3, 200, 0.05, None),
    ]
    verdict = check(RETRY_SLOS["jitter"], run([], attempts))
    assert verdict.outcome == "no data"
    assert not verdict.passed


# --- missing values that are failures ------------------------------------------------------


def test_immediate_retries_fail_backoff_growth_whatever_no_data_says() -> None:
    attempts = [AttemptRecord(1, n, T0 + 11 + n * 0.051, 503, 0.05, None) for n in range(1, 5)]
    slo = parse_slo(RETRY_SLOS["growth"])
    policies: tuple[NoDataPolicy, ...] = ("fail", "pass")
    for policy in policies:
        verdict = evaluate(_with_no_data(slo, policy), run([], attempts))
        assert verdict.outcome == "fail"
        assert not verdict.passed
        assert "no backoff to grow" in verdict.detail


def test_an_unknown_attempt_cap_fails_whatever_no_data_says() -> None:
    data = RunData(start=T0, end=T0 + 30, buckets=(bucket(1, {200: 5}),))
    slo = _with_no_data(parse_slo("attempt_cap_respected == 100%"), "pass")
    verdict = evaluate(slo, data)
    assert (verdict.outcome, verdict.passed) == ("fail", False)


def _with_no_data(slo: SloExpr, policy: NoDataPolicy) -> SloExpr:
    return dataclasses.replace(slo, no_data=policy)


# --- the no_data setting, from the scenario ------------------------------------------------

SCENARIO = """
name: outcomes
{top}
load:
  locustfile: users.py
  phases:
    - {{name: warmup, duration: 10s, users: 10, spawn_rate: 10}}
    - {{name: spike, duration: 20s, users: 50, spawn_rate: 50}}
slos:
  - {{name: growth, expr: "backoff_growth >= 1.5"}}
  - {{name: jitter, expr: "jitter_spread > 0.1"{jitter}}}
  - {{name: compliance, expr: "retry_after_compliance >= 99%"}}
  - {{name: share, expr: "ratio(retry_after, where status == 503) >= 99%"}}
"""


def scenario(tmp_path: Path, *, top: str = "", jitter: str = "") -> Scenario:
    (tmp_path / "users.py").write_text("# users\n")
    text = textwrap.dedent(SCENARIO.format(top=top, jitter=jitter))
    return parse_scenario(text, tmp_path / "outcomes.yaml")


def test_the_polite_client_passes_and_an_empty_run_fails_with_the_defaults(
    tmp_path: Path,
) -> None:
    sc = scenario(tmp_path)
    polite = judge_data(always_retry_after(), sc)
    assert polite.passed
    assert [v.outcome for v in polite.verdicts] == ["n/a", "n/a", "pass", "pass"]
    empty = judge_data(run([]), sc)
    assert not empty.passed
    assert {v.outcome for v in empty.verdicts} == {"no data"}


def test_no_data_pass_for_the_scenario_lets_an_empty_window_through_as_no_data(
    tmp_path: Path,
) -> None:
    judged = judge_data(run([]), scenario(tmp_path, top="no_data: pass"))
    assert judged.passed
    assert all(v.outcome == "no data" and v.passed for v in judged.verdicts)


def test_an_slo_of_its_own_overrides_the_scenarios_no_data(tmp_path: Path) -> None:
    sc = scenario(tmp_path, top="no_data: pass", jitter=", no_data: fail")
    judged = judge_data(run([]), sc)
    assert not judged.passed
    by_name = {v.name: v for v in judged.verdicts}
    assert not by_name["jitter"].passed
    assert by_name["growth"].passed


@pytest.mark.parametrize(
    ("top", "jitter", "where"),
    [("no_data: maybe", "", "no_data"), ("", ", no_data: skip", "slos[1].no_data")],
)
def test_a_no_data_other_than_pass_or_fail_is_one_line_naming_the_field(
    tmp_path: Path, top: str, jitter: str, where: str
) -> None:
    with pytest.raises(BadInputError) as caught:
        scenario(tmp_path, top=top, jitter=jitter)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{where}: input should be 'pass' or 'fail'" in message


def test_every_outcome_is_one_of_the_four() -> None:
    assert OUTCOMES == ("pass", "fail", "n/a", "no data")
    data = always_retry_after()
    for text in RETRY_SLOS.values():
        assert check(text, data).outcome in OUTCOMES
