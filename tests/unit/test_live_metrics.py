"""The live metrics' collector against buckets of known content, read back the way Prometheus
would (prometheus_client's exposition, then its parser), and the flags that turn it on."""

from __future__ import annotations

import importlib.util
import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.parser import text_string_to_metric_families

from harness.cli.entry import main
from harness.load.launch import MasterArgs
from harness.load.live_metrics import (
    GUARD_STATES,
    LATENCY_BOUNDS,
    CheckGauge,
    FaultGauge,
    LiveState,
    LiveTotals,
    RunMetrics,
    exported_names,
)
from harness.record.buckets import BucketRecorder
from harness.record.histogram import bucket_index
from harness.run.pipeline import LIVE_METRICS_EXTENSION, _extensions
from harness.run.request import RunRequest

T = 1_800_000_000.0  # a bucket boundary: the run's clock in these tests

# (start offset s, latency s, status, attempt, retry_after, logical id, final, ok)
ATTEMPTS: list[tuple[float, float, int, int, float | None, str, bool, bool]] = [
    (0.00, 0.012, 200, 1, None, "a", True, True),
    (0.05, 0.250, 503, 1, 2.0, "b", False, False),
    (0.31, 0.020, 200, 2, None, "b", True, True),
    (1.02, 0.004, 201, 1, None, "c", True, True),
    (1.50, 1.900, 0, 1, None, "d", True, False),
    (2.20, 0.090, 503, 1, None, "e", True, False),
    (2.21, 0.00005, 500, 1, None, "f", True, False),
    (2.40, 7200.0, 0, 1, None, "g", True, False),
]


def recorded(attempts: list[tuple[Any, ...]] = ATTEMPTS) -> LiveTotals:
    recorder = BucketRecorder()
    for offset, latency, status, attempt, retry_after, logical, final, ok in attempts:
        recorder.record_attempt(
            T + offset, latency, status, attempt, retry_after, logical, final, ok
        )
    totals = LiveTotals()
    # Shipped in two parts, the second with a late part of a bucket already shipped: the
    # totals are the sum of every part, as the store's upsert makes them.
    shipped = recorder.drain(before=T + 1.0)
    recorder.record_attempt(T + 0.5, 0.030, 200, 1, None, "late", True, True)
    totals.add(shipped)
    totals.add(recorder.drain())
    return totals


def scrape(
    totals: LiveTotals, state: LiveState | None = None, now: float = T + 4.0
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunMetrics(totals, lambda: state or LiveState(), clock=lambda: now))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_counters_are_the_sums_of_every_stored_part() -> None:
    samples = scrape(recorded())
    responses = {
        dict(labels)["code"]: (dict(labels)["class"], value)
        for (name, labels), value in samples.items()
        if name == "harness_responses_total"
    }
    assert responses == {
        "0": ("none", 2.0),
        "200": ("2xx", 3.0),  # the late part included
        "201": ("2xx", 1.0),
        "500": ("5xx", 1.0),
        "503": ("5xx", 2.0),
    }
    assert samples[("harness_attempts_total", ())] == 9
    assert samples[("harness_retries_total", ())] == 1
    assert samples[("harness_requests_total", ())] == 8  # b's first attempt was not its last
    assert samples[("harness_requests_failed_total", ())] == 4
    assert samples[("harness_responses_503_retry_after_total", ())] == 1


def test_the_latency_buckets_count_exactly_the_samples_below_each_bound() -> None:
    samples = scrape(recorded())
    latencies = [a[1] for a in ATTEMPTS] + [0.030]
    for bound in LATENCY_BOUNDS:
        # The recorder's truth: a sample is below the bound when its bucket ends at or before
        # the bound's edge.
        edge = bucket_index(bound * (1 - 1e-9))
        expected = sum(1 for v in latencies if bucket_index(v) <= edge)
        assert samples[("harness_latency_seconds_bucket", (("le", f"{bound:.6g}"),))] == expected
        assert expected == sum(1 for v in latencies if v < bound)  # no sample sits on an edge
    assert samples[("harness_latency_seconds_bucket", (("le", "+Inf"),))] == 9
    assert samples[("harness_latency_seconds_count", ())] == 9
    # The recorder keeps no exact sum: its estimate is within a bucket's width of the truth.
    assert samples[("harness_latency_seconds_sum", ())] == pytest.approx(
        sum(v for v in latencies if v < 3600) + 3600, rel=0.01
    )


def test_the_bounds_are_edges_of_the_recorders_buckets_from_a_tenth_of_a_ms_to_a_minute() -> None:
    assert tuple(sorted(LATENCY_BOUNDS)) == LATENCY_BOUNDS
    assert LATENCY_BOUNDS[0] < 0.0002
    assert 60 < LATENCY_BOUNDS[-1] < 61
    for bound in LATENCY_BOUNDS:
        # Just under the bound and just over it fall in two different recorder buckets.
        assert bucket_index(bound * (1 - 1e-9)) + 1 == bucket_index(bound * (1 + 1e-9))
    ratios = {round(b / a, 9) for a, b in itertools.pairwise(LATENCY_BOUNDS)}
    assert ratios == {round(1.02**12, 9)}


def test_the_shares_are_over_the_settled_window_and_absent_without_anything_to_share() -> None:
    totals = recorded()
    # At T + 4 s the settled window is T - 7 .. T + 3: every attempt.
    samples = scrape(totals, now=T + 4.0)
    assert samples[("harness_503_ratio", ())] == pytest.approx(2 / 9)
    assert samples[("harness_retry_after_ratio", ())] == pytest.approx(1 / 2)
    assert samples[("harness_retry_amplification_ratio", ())] == pytest.approx(9 / 8)
    # The last settled second, T + 2 .. T + 3, started three attempts.
    assert samples[("harness_offered_requests_per_second", ())] == 3
    later = scrape(totals, now=T + 60.0)
    for name in ("harness_503_ratio", "harness_retry_after_ratio"):
        assert (name, ()) not in later
    assert later[("harness_offered_requests_per_second", ())] == 0
    assert later[("harness_attempts_total", ())] == 9  # the counters do not forget


def test_the_state_shows_one_phase_each_fault_and_every_check_as_one_hot_states() -> None:
    state = LiveState(
        phases=("warmup", "spike"),
        phase="spike",
        elapsed_s=12.5,
        users=40,
        users_target=60,
        faults=(
            FaultGauge("slow-db", "toxic", "scheduled", True),
            FaultGauge("kill-app-1", "kill", "manual", False),
        ),
        guards=(CheckGauge("g", "ratio", "abort if ...", None, 0.9, "no_data"),),
        slos=(CheckGauge("p99", "percentile", "p99(latency) < 250ms", 0.3, 0.25, "fail"),),
    )
    samples = scrape(LiveTotals(), state)
    assert samples[("harness_phase", (("phase", "spike"),))] == 1
    assert samples[("harness_phase", (("phase", "warmup"),))] == 0
    assert samples[("harness_load_elapsed_seconds", ())] == 12.5
    assert samples[("harness_users", ())] == 40
    assert samples[("harness_users_target", ())] == 60
    assert ("harness_planned_requests_per_second", ()) not in samples  # a closed model
    assert samples[("harness_load_finished", ())] == 0
    fault = (("action", "toxic"), ("name", "slow-db"), ("source", "scheduled"))
    assert samples[("harness_fault_active", fault)] == 1
    manual = (("action", "kill"), ("name", "kill-app-1"), ("source", "manual"))
    assert samples[("harness_fault_active", manual)] == 0
    guard_states = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "harness_guard_state"
    }
    assert guard_states == {s: float(s == "no_data") for s in GUARD_STATES}
    assert not [key for key in samples if key[0] == "harness_guard_value"]  # nothing measured
    guard = (("expr", "abort if ..."), ("guard", "g"), ("metric", "ratio"))
    assert samples[("harness_guard_threshold", guard)] == 0.9
    slo = (("expr", "p99(latency) < 250ms"), ("metric", "percentile"), ("slo", "p99"))
    assert samples[("harness_slo_value", slo)] == 0.3
    assert samples[("harness_slo_threshold", slo)] == 0.25
    assert samples[("harness_slo_state", (("slo", "p99"), ("state", "fail")))] == 1


def test_every_served_name_is_in_the_exported_list_and_carries_the_harness_prefix() -> None:
    state = LiveState(
        phases=("a",),
        phase="a",
        elapsed_s=1.0,
        users_target=1,
        planned_rate=5.0,
        faults=(FaultGauge("f", "kill", "scheduled", True),),
        guards=(CheckGauge("g", "ratio", "x", 0.1, 0.9, "ok"),),
        slos=(CheckGauge("s", "ratio", "x", 0.1, 0.2, "pass"),),
    )
    served = {name for name, _ in scrape(recorded(), state)}
    assert served == exported_names()
    assert all(name.startswith("harness_") for name in served)


def test_the_endpoint_speaks_openmetrics_to_a_scraper_that_asks_for_it() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunMetrics(recorded(), LiveState, clock=lambda: T + 4.0))
    app = make_wsgi_app(registry)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "QUERY_STRING": "",
        "HTTP_ACCEPT": "application/openmetrics-text; version=1.0.0",
    }
    body = b"".join(app(environ, start_response)).decode()
    assert seen["status"].startswith("200")
    assert seen["headers"]["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")
    assert "harness_responses_total{" in body


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("HARNESS_RUN_METRICS_HOST", "HARNESS_RUN_METRICS_PORT", "HARNESS_RUN_OTEL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--metrics-host", "metrics.example.com"], "--metrics-host: expected an address"),
        (["--metrics-host", "http://0.0.0.0"], "--metrics-host: expected a host name"),
        (["--metrics-port", "70000"], "--metrics-port: expected a port"),
        (["--metrics-port", "soon"], "--metrics-port: expected a port"),
        (["--metrics-linger", "later"], "--metrics-linger:"),
    ],
)
def test_a_bad_metrics_flag_is_bad_input_in_one_line_naming_it(
    cwd: Path, capsys: pytest.CaptureFixture[str], flags: list[str], said: str
) -> None:
    assert main(["run", "missing.yaml", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err
    assert "\n" not in err


def test_the_metrics_flags_reach_the_master_and_load_the_extension() -> None:
    asked = RunRequest(metrics_host="::1", metrics_port=0, metrics_linger_s=3.0, otel=True)
    assert _extensions(asked) == (LIVE_METRICS_EXTENSION,)
    assert _extensions(RunRequest()) == ()
    args = MasterArgs(
        run_dir=Path("/tmp/run"),
        host="http://127.0.0.1:1",
        metrics_host="::1",
        metrics_port=0,
        metrics_linger_s=3.0,
        otel=True,
    )
    again = MasterArgs.parse(args.argv()[3:])
    assert again == args
    off = MasterArgs(run_dir=Path("/tmp/run"), host="http://127.0.0.1:1")
    assert "--metrics-port" not in off.argv()
    assert MasterArgs.parse(off.argv()[3:]) == off


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry") is not None
    and importlib.util.find_spec("opentelemetry.sdk") is not None,
    reason="the OpenTelemetry SDK is installed here",
)
def test_otel_without_the_sdk_is_bad_input_naming_what_to_install(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "missing.yaml", "--otel"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--otel needs Locust's OpenTelemetry support: pip install 'locust[otel]'" in err
    assert "\n" not in err


def test_a_nan_free_exposition_even_before_any_bucket() -> None:
    samples = scrape(LiveTotals())
    assert not [key for key, value in samples.items() if math.isnan(value)]
    assert samples[("harness_latency_seconds_count", ())] == 0


ENDPOINT_SCRIPT = """
import locust  # first, as in the master: gevent's monkey-patching
import socket
import urllib.request

import gevent
from prometheus_client import CollectorRegistry

from harness.errors import InfrastructureError
from harness.load.live_metrics import LiveState, LiveTotals, RunMetrics
from harness.run.live_metrics import MetricsEndpoint

registry = CollectorRegistry(auto_describe=False)
registry.register(RunMetrics(LiveTotals(), LiveState))
final = [False]
taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen()
try:
    MetricsEndpoint(registry, "127.0.0.1", taken.getsockname()[1], lambda: False).start()
    print("bound a taken port")
except InfrastructureError as exc:
    print("refused:", exc)

said = []
def scrape(endpoint):
    with urllib.request.urlopen(endpoint.url, timeout=10) as answer:
        said.append(("scraped", answer.status))

quiet = MetricsEndpoint(registry, "127.0.0.1", 0, lambda: final[-1])
quiet.start()
quiet.serve_final(600, cut=lambda: False)  # never scraped: nobody waits for the end
said.append("unscraped: no wait")
quiet.stop()

watched = MetricsEndpoint(registry, "127.0.0.1", 0, lambda: final[-1])
watched.start()
scrape(watched)
final.append(True)  # the final refresh: from now on a scrape reads the final values
late = gevent.spawn_later(0.5, scrape, watched)
watched.serve_final(600, cut=lambda: False)
said.append(("final values served", watched.scrapes))
late.join()
cut = MetricsEndpoint(registry, "127.0.0.1", 0, lambda: False)  # final values unread
cut.start()
scrape(cut)
cut.serve_final(600, cut=lambda: True)
said.append("interrupted: no wait")
for endpoint in (watched, cut):
    endpoint.stop()
print(said)

from harness.run.hooks import load_extensions
from harness.run.pipeline import LIVE_METRICS_EXTENSION

print(load_extensions([LIVE_METRICS_EXTENSION]).master_ready)
"""


@pytest.mark.integration  # a Python process: Locust's gevent must not patch this one
def test_the_endpoint_waits_at_the_end_only_for_a_scrape_of_the_final_values() -> None:
    result = subprocess.run(
        [sys.executable, "-c", ENDPOINT_SCRIPT],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    first, steps, hooks = result.stdout.strip().splitlines()
    assert hooks == "<Hook master_ready: 1 listener(s)>"  # the pipeline's name is the module
    assert first.startswith("refused: live metrics cannot listen on 127.0.0.1:")
    assert first.endswith("choose another with --metrics-port")
    assert steps == str(
        [
            "unscraped: no wait",
            ("scraped", 200),
            ("final values served", 2),  # the end waited for the second scrape ...
            ("scraped", 200),  # ... whose answer the scraper gets
            ("scraped", 200),
            "interrupted: no wait",
        ]
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0"])
def test_a_literal_address_or_localhost_passes_the_host_check(
    cwd: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    # The scenario is missing: the run stops there, after the flags were accepted.
    assert main(["run", "missing.yaml", "--metrics-host", host, "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml" in err
    assert "--metrics-host" not in err
