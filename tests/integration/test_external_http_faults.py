"""HTTP faults at the edge of a service the harness did not start, through the front proxy, with
verdicts checked against what was injected: a 503 burst with Retry-After, the first three attempts
of every Idempotency-Key failing, and a 20% abort rate within its binomial bound."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from run_support import Target, run_harness, the_run, write_scenario

from harness.faults import Journal
from harness.record import EventKind, RunDir

pytestmark = pytest.mark.integration


def _run(tmp_path: Path, body: str, users: str) -> tuple[RunDir, dict[str, Any]]:
    scenario = write_scenario(tmp_path, users_py=users, body=body)
    state, reports = tmp_path / "state", tmp_path / "reports"
    code, out, err = run_harness(scenario, "--reports", str(reports), "--state-dir", str(state))
    assert code == 0, out + err
    assert not Journal.in_state_dir(state).pending()
    run = the_run(reports)
    return run, json.loads(run.summary_json.read_text())


def _slos(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {slo["name"]: slo for slo in summary["slos"]}


def _injected(run: RunDir) -> float:
    (event,) = [e for e in run.events() if e.kind is EventKind.FAULT_INJECTED]
    return event.t


def _statuses_between(run: RunDir, start: float, end: float) -> Counter[int]:
    total: Counter[int] = Counter()
    for bucket in run.buckets():
        if start <= bucket.idx / 10 < end:
            total.update(bucket.statuses)
    return total


RETRYING = """\
    import uuid

    from locust import constant, task

    from harness.load.users import RetryingHttpUser


    class Buyer(RetryingHttpUser):
        wait_time = constant(0.05)

        @task
        def checkout(self):
            self.logical_request("POST", "/checkout", headers={"Idempotency-Key": uuid.uuid4().hex})
    """


def test_a_503_burst_with_retry_after_is_what_the_verdicts_see(
    tmp_path: Path, target: Target
) -> None:
    run, summary = _run(
        tmp_path,
        f"""\
        stack: {{kind: external, entry_url: "{target.url}", front_proxy: true}}
        load:
          locustfile: users.py
          phases: [{{name: only, duration: 8s, users: 4, spawn_rate: 20}}]
        faults:
          - {{name: burst, action: http-abort, target: edge, at: 2s, for: 3s,
              params: {{status: 503, retry_after: 1s}}}}
        slos:
          # The window starts on the 100 ms bucket of the injection, which may hold answers from
          # just before it: the exact truth is checked on the buckets below.
          - {{name: burst-is-503, expr: "ratio(status == 503) during fault burst >= 50%"}}
          - {{name: retry-after-sent, expr: "ratio(retry_after, where status == 503) == 100%"}}
          - {{name: clients-comply, expr: "retry_after_compliance >= 99%"}}
        """,
        RETRYING,
    )
    slos = _slos(summary)
    assert all(slo["passed"] for slo in slos.values()), slos
    assert slos["retry-after-sent"]["observed"] == 1.0
    assert slos["clients-comply"]["observed"] == 1.0
    # The truth, bucket by bucket: 200 before the burst and after it, 503 with Retry-After in it.
    injected = _injected(run)
    (reverted,) = [e.t for e in run.events() if e.kind is EventKind.FAULT_REVERTED]
    before = _statuses_between(run, 0, injected - 0.1)
    during = _statuses_between(run, injected + 0.1, reverted - 0.1)
    after = _statuses_between(run, reverted + 0.1, math.inf)
    assert set(before) == {200}
    assert set(during) == {503}
    assert set(after) == {200}
    all_503 = _statuses_between(run, 0, math.inf)[503]
    assert slos["retry-after-sent"]["detail"].startswith(f"{all_503} of {all_503} 503")


def test_first_three_per_idempotency_key_fail_exactly_then_succeed(
    tmp_path: Path, target: Target
) -> None:
    run, summary = _run(
        tmp_path,
        f"""\
        stack: {{kind: external, entry_url: "{target.url}", front_proxy: true}}
        load:
          locustfile: users.py
          phases: [{{name: only, duration: 6s, users: 3, spawn_rate: 20}}]
        faults:
          - {{name: first-three, action: http-abort, target: edge, at: 1s,
              params: {{first: 3, client_key: Idempotency-Key, path_prefix: /checkout}}}}
        slos:
          - {{name: capped, expr: "attempt_cap_respected == 100%"}}
          - {{name: jittered, expr: "jitter_spread > 0.1"}}
          - {{name: backs-off, expr: "backoff_growth > 1"}}
        """,
        RETRYING,
    )
    slos = _slos(summary)
    assert all(slo["passed"] for slo in slos.values()), slos  # judged on these retries
    injected = _injected(run)
    sequences: dict[object, list[int]] = {}
    first_at: dict[object, float] = {}
    for record in sorted(run.attempts(), key=lambda r: (str(r.logical_id), r.attempt)):
        sequences.setdefault(record.logical_id, []).append(record.status)
        first_at.setdefault(record.logical_id, record.t)
    during = {key: seq for key, seq in sequences.items() if first_at[key] > injected + 0.1}
    complete = [seq for seq in during.values() if seq == [503, 503, 503, 200]]
    assert len(complete) >= 10
    for seq in during.values():  # the rest were cut by the end of the run, never let through
        assert seq == [503, 503, 503, 200][: len(seq)], seq


def test_a_20_percent_abort_lands_within_its_binomial_bound(tmp_path: Path, target: Target) -> None:
    run, _ = _run(
        tmp_path,
        f"""\
        stack: {{kind: external, entry_url: "{target.url}", front_proxy: true}}
        load:
          locustfile: users.py
          phases: [{{name: only, duration: 6s, users: 4, spawn_rate: 40}}]
        faults:
          - {{name: some, action: http-abort, target: edge, at: 1s, params: {{percent: 20}}}}
        """,
        """\
        from locust import FastHttpUser, constant, task


        class Caller(FastHttpUser):
            wait_time = constant(0.01)

            @task
            def index(self):
                self.client.get("/")
        """,
    )
    seen = _statuses_between(run, _injected(run) + 0.2, math.inf)
    assert set(seen) <= {200, 503}, seen
    n, k = seen[200] + seen[503], seen[503]
    assert n >= 500
    p = 0.2
    # 99.9% two-sided normal bound of the binomial: z = 3.29.
    assert abs(k - n * p) <= 3.29 * math.sqrt(n * p * (1 - p)), (k, n)
