"""The run's live metrics as a real Prometheus sees them: a Prometheus server of the test's own
scrapes `harness run --metrics-port` every second through a short run with a maintenance window,
and the test asks it, through its HTTP API, what it stored.

Needs the Prometheus binary named by ``HARNESS_PROMETHEUS_BIN`` (``.ci/prometheus-setup`` builds
one with ``go install``); without it the test skips, unless ``HARNESS_REQUIRE_PROMETHEUS=1``.

Why the last point Prometheus holds is the run's total, with no timing in the test: after the
load, the endpoint says ``harness_load_finished 1`` and stays up until one scrape has read its
final values (``--metrics-linger``, 15 s at most by default). Prometheus is the only scraper
here, so that scrape is Prometheus's: the test waits until Prometheus has stored a sample with
``finished`` 1, and that sample's scrape carries the final counters. When the endpoint is gone,
Prometheus's next scrape fails and marks the series stale, so an instant query finds nothing;
``last_over_time`` over a range skips the stale markers and reads the last scraped value.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import pytest
import session_cleanup
from run_support import finish, harness_env, start_run, the_run
from stack_support import RunningStack, wait_until

from harness.record import Histogram
from harness.stack.ports import free_ports

pytestmark = pytest.mark.integration

BIN_ENV = "HARNESS_PROMETHEUS_BIN"
REQUIRE_ENV = "HARNESS_REQUIRE_PROMETHEUS"
SHOP_LOCUSTFILE = Path(__file__).parents[2] / "scenarios" / "shop_locustfile.py"

READY_TIMEOUT_S = 90.0  # a cold Prometheus on a busy 2-core machine replays an empty WAL
STORED_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
# The test's Prometheus stores nothing older than the test itself: one range covers the run.
EVER = "[15m]"

# The shop's maintenance answers 503 with Retry-After, so the counters by code have a 503 in them.
SCENARIO = """\
    name: prometheus-scrape
    load:
      locustfile: {locustfile}
      user_classes: [ShopUser]
      phases:
        - {{name: steady, duration: 12s, users: 5, spawn_rate: 10}}
    faults:
      - {{name: maintenance, action: maintenance, at: 4s, for: 4s}}
    """

PROMETHEUS_YML = """\
    global:
      scrape_interval: 1s
      scrape_timeout: 1s
    scrape_configs:
      - job_name: harness
        static_configs:
          - targets: ["127.0.0.1:{port}"]
    """


@pytest.fixture(scope="session")
def prometheus_bin(require_or_skip: Callable[[str, str], NoReturn]) -> Path:
    """The Prometheus binary, or a skip (a failure under HARNESS_REQUIRE_PROMETHEUS=1).
    Session-scoped, and asked for first, so a skip comes before the session stack is up."""
    named = os.environ.get(BIN_ENV, "").strip()
    if not named:
        require_or_skip(f"no Prometheus binary: {BIN_ENV} is not set", REQUIRE_ENV)
    path = Path(named)
    if not (path.is_file() and os.access(path, os.X_OK)):
        require_or_skip(f"{BIN_ENV}={named}: not an executable file", REQUIRE_ENV)
    return path


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus server, asked through its HTTP API."""

    url: str
    log: Path

    def query(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """``/api/v1/query`` at the server's now: each series' value by its sorted labels."""
        answer = httpx.get(
            f"{self.url}/api/v1/query", params={"query": promql}, timeout=10, trust_env=False
        )
        assert answer.status_code == 200, f"{promql}: {answer.status_code} {answer.text}"
        body = answer.json()
        assert body["status"] == "success", f"{promql}: {body}"
        assert body["data"]["resultType"] == "vector", f"{promql}: {body}"
        return {
            tuple(sorted(series["metric"].items())): float(series["value"][1])
            for series in body["data"]["result"]
        }

    def one(self, promql: str) -> float | None:
        """The value of a query that selects one series; None when it selects none."""
        found = self.query(promql)
        assert len(found) <= 1, f"{promql}: more than one series: {found}"
        return next(iter(found.values()), None)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False


@contextlib.contextmanager
def running_prometheus(binary: Path, workdir: Path, target_port: int) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port, scraping 127.0.0.1:``target_port`` every second
    (job ``harness``), with its own storage; ready when yielded, stopped by PID on every way
    out, and in the session's record meanwhile (swept should the session be killed)."""
    (port,) = free_ports(1)
    config = workdir / "prometheus.yml"
    config.write_text(textwrap.dedent(PROMETHEUS_YML.format(port=target_port)))
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        record = session_cleanup.current()
        if record is not None:
            record.add_pids([process.pid])
        server = Prometheus(f"http://127.0.0.1:{port}", log)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"Prometheus exited with {process.returncode}:\n{tail(log)}")
            return server.ready()

        wait_until(ready, READY_TIMEOUT_S, f"Prometheus to be ready ({server.url}/-/ready)")
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Prometheus closes its storage), SIGKILL if it does not end in time."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def test_prometheus_stores_the_run_and_its_last_scrape_holds_the_stores_exact_totals(
    prometheus_bin: Path, stack: RunningStack, tmp_path: Path
) -> None:
    scenario = tmp_path / "scrape.yaml"
    scenario.write_text(textwrap.dedent(SCENARIO.format(locustfile=SHOP_LOCUSTFILE)))
    (metrics_port,) = free_ports(1)
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    with running_prometheus(prometheus_bin, tmp_path, metrics_port) as prometheus:
        # The default linger (15 s at most) is what a user gets; Prometheus's own scrape, every
        # second, is the one that ends it.
        process = start_run(
            scenario, "--reports", str(reports), "--metrics-port", str(metrics_port), env=env
        )
        out, err = finish(process)
        assert process.returncode == 0, f"{out}\n{err[-3000:]}"
        assert f"live metrics: http://127.0.0.1:{metrics_port}/metrics" in err

        def stored_final() -> bool:
            return (
                prometheus.one(f'last_over_time(harness_load_finished{{job="harness"}}{EVER})')
                == 1.0
            )

        wait_until(
            stored_final,
            STORED_TIMEOUT_S,
            f"Prometheus to store a scrape with harness_load_finished 1 (log: {prometheus.log})",
        )

        def last(metric: str) -> float | None:
            return prometheus.one(f'last_over_time({metric}{{job="harness"}}{EVER})')

        run = the_run(reports)
        buckets = run.buckets()
        statuses: Counter[int] = Counter()
        for bucket in buckets:
            statuses.update(bucket.statuses)
        assert statuses[503] > 0, "the maintenance window answered no 503"

        # The last values Prometheus scraped are the store's totals, exactly.
        assert last("harness_attempts_total") == sum(b.attempts for b in buckets)
        assert last("harness_retries_total") == sum(b.retries for b in buckets)
        assert last("harness_requests_total") == sum(b.done for b in buckets)
        assert (
            last("harness_latency_seconds_count")
            == Histogram.merged(b.latency for b in buckets).count
        )
        by_code = prometheus.query(
            f'last_over_time(harness_responses_total{{job="harness"}}{EVER})'
        )
        assert {dict(labels)["code"]: value for labels, value in by_code.items()} == {
            str(code): float(n) for code, n in statuses.items()
        }

        # The fault gauge was 1 in some scrape (its window is 4 scrape intervals) and ended at 0.
        fault = 'harness_fault_active{job="harness",name="maintenance",source="scheduled"}'
        assert prometheus.one(f"max_over_time({fault}{EVER})") == 1.0
        assert prometheus.one(f"last_over_time({fault}{EVER})") == 0.0

        # Prometheus did scrape the target (up is 0 before the run listens and after it ends).
        assert prometheus.one(f'max_over_time(up{{job="harness"}}{EVER})') == 1.0
