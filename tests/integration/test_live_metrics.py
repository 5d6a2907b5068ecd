"""The run's live metrics endpoint for real: `harness run --metrics-port` on the session stack,
scraped all through a short run with a maintenance window, parsed with prometheus_client's own
parser.

The last scrape is made deterministic by the endpoint itself, not by timing: once the load is
over and every final shipment is in, it says ``harness_load_finished 1`` and, because it was
scraped during the run, stays up until one scrape has read those final values
(``--metrics-linger``, generous here, bounds the wait). So the test scrapes until it reads
``finished``, and that scrape holds the final counters, which must equal the run store's totals
exactly.
"""

from __future__ import annotations

import socket
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from run_support import finish, harness_env, start_run, the_run
from stack_support import RunningStack

from harness.load.live_metrics import LATENCY_BOUNDS
from harness.record import EventKind, Histogram
from harness.record.histogram import bucket_index

pytestmark = pytest.mark.integration

SHOP_LOCUSTFILE = Path(__file__).parents[2] / "scenarios" / "shop_locustfile.py"

# Maintenance answers 503 with Retry-After: the shop's well-behaved users retry, so every
# counter (retries, 503s with Retry-After) has something in it.
SCENARIO = """\
    name: live-metrics
    load:
      locustfile: {locustfile}
      user_classes: [ShopUser]
      phases:
        - {{name: warmup, duration: 4s, users: 5, spawn_rate: 10}}
        - {{name: storm, duration: 12s, users: 10, spawn_rate: 10}}
    faults:
      - {{name: maintenance, action: maintenance, at: 6s, for: 4s}}
    slos:
      - {{name: no-500s, expr: "count(status == 500) == 0"}}
      - {{name: storm-503s, expr: "ratio(status == 503) < 90% during phase storm"}}
    guards:
      - "abort if ratio(status >= 500) > 90% for 10s"
    """


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample by (name, sorted labels)."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def value(self, metric: str, /, **labels: str) -> float | None:
        return self.samples.get((metric, tuple(sorted(labels.items()))))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        return {dict(key)[label]: value for (n, key), value in self.samples.items() if n == name}


def parse(text: str) -> Scrape:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return Scrape(samples)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_endpoint_serves_the_run_as_it_plays_and_ends_on_the_stores_exact_totals(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario = tmp_path / "live.yaml"
    scenario.write_text(textwrap.dedent(SCENARIO.format(locustfile=SHOP_LOCUSTFILE)))
    port = free_port()
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    process = start_run(
        scenario,
        "--reports",
        str(reports),
        "--metrics-port",
        str(port),
        "--metrics-linger",
        "120s",
        env=env,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    scrapes: list[Scrape] = []
    with httpx.Client(trust_env=False, timeout=5) as client:
        while process.poll() is None:
            try:
                answer = client.get(url)
            except httpx.TransportError:  # not listening yet (or any more)
                time.sleep(0.1)
                continue
            assert answer.status_code == 200
            scrapes.append(parse(answer.text))
            if scrapes[-1].value("harness_load_finished") == 1.0:
                break
            time.sleep(0.2)
    out, err = finish(process)
    assert process.returncode == 0, f"{out}\n{err[-3000:]}"
    assert f"live metrics: {url}" in err
    assert scrapes, f"the endpoint was never scraped:\n{err[-3000:]}"
    last = scrapes[-1]
    assert last.value("harness_load_finished") == 1.0, "no scrape read the final values"

    # The final counters are the store's totals, exactly.
    run = the_run(reports)
    buckets = run.buckets()
    statuses: Counter[int] = Counter()
    for bucket in buckets:
        statuses.update(bucket.statuses)
    assert last.by_label("harness_responses_total", "code") == {
        str(code): float(n) for code, n in statuses.items()
    }
    assert statuses[503] > 0, "the maintenance window answered no 503"
    assert last.value("harness_attempts_total") == sum(b.attempts for b in buckets)
    assert last.value("harness_retries_total") == sum(b.retries for b in buckets)
    assert last.value("harness_requests_total") == sum(b.done for b in buckets)
    assert last.value("harness_requests_failed_total") == sum(b.failed for b in buckets)
    assert last.value("harness_responses_503_retry_after_total") == sum(
        b.retry_after_503 for b in buckets
    )
    latency = Histogram.merged(b.latency for b in buckets)
    assert last.value("harness_latency_seconds_count") == latency.count
    # Each bound's cumulative count, from the store's own histogram: the recorder's buckets
    # whose index is at most the bound's.
    for bound in LATENCY_BOUNDS:
        edge = bucket_index(bound * (1 - 1e-9))
        below = sum(n for index, n in latency.counts.items() if index <= edge)
        assert last.value("harness_latency_seconds_bucket", le=f"{bound:.6g}") == below

    # Counters never go down from one scrape to the next.
    attempts = [s.value("harness_attempts_total") or 0.0 for s in scrapes]
    assert attempts == sorted(attempts)

    # The fault gauge: 1 during its window, 0 before and after, on the run's own clock (each
    # scrape's elapsed time and fault state come from the same refresh).
    t0 = float(run.meta["load_started_at"])
    (journaled,) = [e.t for e in run.events() if e.kind is EventKind.FAULT_JOURNALED]
    (reverted,) = [e.t for e in run.events() if e.kind is EventKind.FAULT_REVERTED]
    labels = {"name": "maintenance", "action": "maintenance", "source": "scheduled"}
    during = []
    for scrape in scrapes:
        active = scrape.value("harness_fault_active", **labels)
        elapsed = scrape.value("harness_load_elapsed_seconds")
        if active is None or elapsed is None:
            continue
        if active == 1.0:
            during.append(elapsed)
            # Slack for what a refresh does between reading its clock and the timeline.
            assert journaled - t0 - 1.0 <= elapsed <= reverted - t0 + 1.0
        elif journaled - t0 + 1.0 <= elapsed <= reverted - t0 - 1.0:
            pytest.fail(f"the fault gauge read 0 at {elapsed:.1f}s, inside its window")
    assert during, "no scrape saw the maintenance window"
    assert last.value("harness_fault_active", **labels) == 0.0
    assert last.by_label("harness_phase", "phase") == {"warmup": 0.0, "storm": 0.0}
    assert any(s.value("harness_phase", phase="storm") == 1.0 for s in scrapes)
