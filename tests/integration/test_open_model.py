"""The open model does not hide a stall (coordinated omission); the closed model does.

A tiny server answers at once, except that every request that arrives in a 2 s window (3 s after
its first request) is held until the window ends. At 50 arrivals/s the truth is known: the
arrivals intended in the window wait ``window end - intended``, so ``50 x (2 s - L)`` of them take
at least ``L``; the closed model's one user sends one request into the stall and waits with it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from run_support import run_dirs

from harness.record import RunDir
from harness.record.histogram import bucket_value
from harness.scenario import load_scenario
from harness.verdict.evaluate import evaluate
from harness.verdict.language import parse_slo
from harness.verdict.rundata import RunData

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent / "open_model"
RATE = 50.0
STALL_S = 2.0
STALL_AFTER_S = 3.0


class _StallServer(ThreadingHTTPServer):
    daemon_threads = True
    first: float | None = None

    def stall_window(self) -> tuple[float, float] | None:
        if self.first is None:
            return None
        return (self.first + STALL_AFTER_S, self.first + STALL_AFTER_S + STALL_S)


class _Handler(BaseHTTPRequestHandler):
    server: _StallServer

    def do_GET(self) -> None:  # the http.server spelling
        now = time.time()
        if self.server.first is None:
            self.server.first = now
        window = self.server.stall_window()
        if window is not None and window[0] <= now < window[1]:
            time.sleep(window[1] - now)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _stall_server() -> Iterator[str]:
    """A fresh server per run: its stall is timed from its own first request."""
    server = _StallServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run(tmp_path: Path, model: str) -> RunData:
    if model == "open":
        load = "  model: open\n  user_classes: [OpenUser]\n"
        phase = f"{{name: steady, duration: 8s, rate: {RATE:g}/s}}"
    else:
        load = "  user_classes: [ClosedUser]\n"
        phase = "{name: steady, duration: 8s, users: 1, spawn_rate: 1}"
    path = tmp_path / f"{model}.yaml"
    path.write_text(
        f"name: stall-{model}\n"
        "stack: {kind: external, entry_url: URL}\n"
        "load:\n"
        f"  locustfile: {HERE / 'locustfile.py'}\n"
        f"{load}"
        f"  phases:\n    - {phase}\n",
        encoding="utf-8",
    )
    reports = tmp_path / "reports"
    with _stall_server() as url:
        path.write_text(path.read_text(encoding="utf-8").replace("URL", url), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "harness", "run", str(path), "--reports", str(reports)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    (root,) = [p for p in reports.iterdir() if p.name.startswith(f"stall-{model}")]
    return RunData.from_run_dir(RunDir.open(root), load_scenario(path))


def _slower_than(data: RunData, seconds: float) -> int:
    total = 0
    for bucket in data.buckets_in(data.span):
        flat = bucket.latency.to_list()
        total += sum(
            n for i, n in zip(flat[::2], flat[1::2], strict=True) if bucket_value(i) >= seconds
        )
    return total


def _p(data: RunData, q: int) -> float:
    verdict = evaluate(parse_slo(f"p{q}(latency) < 1s", name="p"), data)
    assert verdict.observed is not None
    return verdict.observed


def test_open_model_shows_a_stall_the_closed_model_understates(tmp_path: Path) -> None:
    open_run = _run(tmp_path, "open")
    closed_run = _run(tmp_path, "closed")

    # The truth: arrivals intended in the stall wait until its end, 2 s down to 0 s.
    expected_over_1s = RATE * (STALL_S - 1.0)  # 50
    expected_over_half = RATE * (STALL_S - 0.5)  # 75
    open_over_1s = _slower_than(open_run, 1.0)
    open_over_half = _slower_than(open_run, 0.5)
    assert abs(open_over_1s - expected_over_1s) <= 0.2 * expected_over_1s, open_over_1s
    assert abs(open_over_half - expected_over_half) <= 0.2 * expected_over_half, open_over_half
    # 400 arrivals in 8 s, 4 of them (1%) waited more than 2 s - 4/50 s = 1.92 s.
    assert _p(open_run, 99) >= 1.8
    assert _p(open_run, 90) >= 0.8  # 10% of 400 = the 40 slowest: >= 2 s - 40/50 s

    # The closed model sent one request into the stall and waited with it: the 100 it did not
    # send are missing, and its percentiles say all was well.
    closed_over_1s = _slower_than(closed_run, 1.0)
    assert 1 <= closed_over_1s <= 2
    assert _p(closed_run, 99) < 0.5
    assert _p(closed_run, 90) < 0.1
    assert _p(open_run, 99) > 4 * _p(closed_run, 99)


def test_open_model_on_two_workers_shares_every_phase_rate_between_them(tmp_path: Path) -> None:
    # Over before the stall server's stall (3 s after its first request): only counting here.
    path = tmp_path / "workers.yaml"
    reports = tmp_path / "reports"
    with _stall_server() as url:
        path.write_text(
            "name: open-workers\n"
            f"stack: {{kind: external, entry_url: '{url}'}}\n"
            "load:\n"
            f"  locustfile: {HERE / 'locustfile.py'}\n"
            "  user_classes: [OpenUser]\n"
            "  model: open\n"
            "  workers: 2\n"
            "  phases:\n"
            "    - {name: slow, duration: 1s, rate: 20/s}\n"
            "    - {name: fast, duration: 1500ms, rate: 40/s}\n"
            # A pause before the end. Each driver's arrivals start a random fraction of their
            # spacing into a phase, so its last one can fall just before the end, and the stop
            # cut its answer off now and then (59 of 60 in 3 runs of 30): now every answer is in.
            "    - {name: drain, duration: 500ms, rate: 0/s}\n",
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "harness", "run", str(path), "--reports", str(reports)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "load: open (arrivals per second: slow 20/s, fast 40/s" in done.stdout
    (root,) = run_dirs(reports)
    run = RunDir.open(root)
    data = RunData.from_run_dir(run, load_scenario(path))
    for phase, expected in (("slow", 20), ("fast", 60)):
        count = evaluate(
            parse_slo(f"count(status == 200) >= 0 during phase {phase}", name="n"), data
        )
        assert count.observed == expected, (phase, count.observed)
    # The server answers at once and both drivers start on time, so no arrival waits. (When the
    # first tick waited for the 1 s boundary, the drivers started 1-2 s late and sent their
    # missed arrivals in one burst: waits of 0.9-2.2 s, and now and then one answer lost.)
    slowest = max(value for b in run.buckets() for value, _n in b.latency.items())
    assert slowest < 0.5, slowest
    # Each worker's driver paced half of every rate: 10 + 30 arrivals each, none dropped.
    totals = [e.detail for e in run.events() if e.name == "worker_totals"]
    assert sorted((t["arrivals"], t["arrivals_dropped"]) for t in totals) == [(40, 0), (40, 0)]
    page = (root / "report.html").read_text(encoding="utf-8")
    assert "<dt>Load model</dt><dd>open (arrivals per second: slow 20/s, fast 40/s" in page
    assert "80 arrivals, 0 dropped" in page
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    assert summary["load_model"] == {
        "model": "open",
        "rates": {"slow": 20.0, "fast": 40.0, "drain": 0.0},
        "max_in_flight": 1000,
        "arrivals": 80,
        "arrivals_dropped": 0,
    }
