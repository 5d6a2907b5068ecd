"""Benchmark judging and reporting a long run: ``harness report RUN_DIR`` on a synthetic store.

    python tests/bench/bench_report.py [--minutes 30] [--rounds 3] [--keep DIR] [--profile]

It builds, through the real writer (:class:`harness.record.RunWriter`), the store a 30-minute
run of the shop would leave: three phases (warm-up, steady, cool-down), a dozen faults of every
family with their journaled / injected / reverted events as the master writes them, 15 SLOs
(ratios, percentiles, availability, recovery times, retry compliance, checks against per-name
counts), two workers' per-name totals, the post-run checks, about 100,000 requests in 18,000
buckets of 100 ms (degraded while each fault is in force: 503s, no answers, slow answers) and the
attempt log of the retried requests. Every number comes from a seeded generator, so two builds
are the same store.

Then, each round:

* ``harness report RUN_DIR`` in a fresh process, as a user runs it: wall time, CPU time and peak
  RSS of that process (``wait4``), start-up and imports included;
* the same work in this process, stage by stage (read and judge, collect the report, then render
  summary.json, junit.xml, the plots and report.html), and the peak of Python's own allocations
  during the whole of it (``tracemalloc``, a separate pass as it slows everything down).

The table shows the best round (other work on the machine only ever slows a round down) and the
median. Target: the whole ``harness report`` within 5 s. ``--profile`` prints the 25 functions
with the most cumulative time of one in-process pass (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.record import EventKind, RunDir, RunStatus
from harness.record.buckets import AttemptRecord, Bucket, SerializedBucket
from harness.scenario import parse_scenario

TARGET_S = 5.0
T0 = 1_796_000_000.0  # the start of the first phase
CREATED = T0 - 2.0
RATE_PER_BUCKET = 5.6  # about 100,000 requests in 30 minutes
NAMES = ("/products", "/products/[id]", "/carts", "/carts/[id]/items", "/checkout")

# (name, action, target, at s, for s, params): a dozen faults, every family, spread over the
# steady phase with room after each for its recovery.
FAULTS: tuple[tuple[str, str, str | None, int, int, dict[str, Any] | None], ...] = (
    ("slow-db-1", "toxic", "app-db", 360, 20, {"type": "latency", "latency": 80}),
    ("kill-app-1", "kill", "app-1", 450, 15, None),
    ("throttle-db-1", "db-throttle", None, 540, 20, {"latency": 40, "jitter": 10}),
    ("maintenance-1", "maintenance", None, 630, 5, None),
    ("pause-app-2", "pause", "app-2", 720, 10, None),
    ("down-lb-app-3", "down", "lb-app-3", 810, 10, None),
    ("reset-app-db", "toxic", "app-db", 900, 8, {"type": "reset_peer", "timeout": 0}),
    ("kill-app-2", "kill", "app-2", 990, 15, None),
    ("restart-app-3", "restart", "app-3", 1080, 5, None),
    ("throttle-db-2", "db-throttle", None, 1170, 20, {"rate": 50}),
    ("slow-lb-app-1", "toxic", "lb-app-1", 1260, 15, {"type": "latency", "latency": 300}),
    ("maintenance-2", "maintenance", None, 1350, 5, None),
)


def scenario_yaml(minutes: float) -> str:
    total = minutes * 60
    warmup, cooldown = total / 6, total / 6
    steady = total - warmup - cooldown
    scale = total / 1800  # fault times are laid out for 30 minutes
    lines = [
        "name: report-bench",
        "description: A synthetic long run of the shop, a dozen faults, fifteen SLOs.",
        "stack: {kind: local}",
        "load:",
        "  locustfile: locustfile.py",
        "  phases:",
        f"    - {{name: warmup, duration: {warmup:g}s, users: 20, spawn_rate: 10}}",
        f"    - {{name: steady, duration: {steady:g}s, users: 40, spawn_rate: 20}}",
        f"    - {{name: cooldown, duration: {cooldown:g}s, users: 20, spawn_rate: 20}}",
        "faults:",
    ]
    for name, action, target, at, length, params in FAULTS:
        entry = f"    - {{name: {name}, action: {action}, at: {at * scale:g}s, for: {length}s"
        if target is not None:
            entry += f", target: {target}"
        if params is not None:
            entry += f", params: {json.dumps(params)}"
        lines.append(entry + "}")
    lines += [
        "slos:",
        '  - {name: no-500s, expr: "count(status == 500) == 0"}',
        '  - {name: retry-after, expr: "ratio(retry_after, where status == 503) >= 99%"}',
        '  - {name: waits-out-retry-after, expr: "retry_after_compliance >= 99%"}',
        '  - {name: attempt-cap, expr: "attempt_cap_respected == 100%"}',
        '  - {name: warmup-available, expr: "availability >= 99.5% during phase warmup"}',
        '  - {name: warmup-p99, expr: "p99(latency) < 250ms during phase warmup"}',
        '  - {name: steady-p95, expr: "p95(latency) < 400ms during phase steady"}',
        '  - {name: steady-503s, expr: "ratio(status == 503) < 10% during phase steady"}',
        '  - {name: cooldown-available, expr: "availability >= 99.5% during phase cooldown"}',
        '  - {name: cooldown-p99, expr: "p99(latency) < 200ms during phase cooldown"}',
        '  - {name: kill-app-1-recovers, expr: "recovery_time(kill-app-1) < 15s"}',
        "  - name: slow-db-1-recovers",
        '    expr: "recovery_time(slow-db-1, baseline steady) < 15s"',
        '  - {name: maintenance-2-recovers, expr: "recovery_time(maintenance-2) < 15s"}',
        "  - name: no-order-lost",
        "    expr: 'check(orders, delta) >= requests(status == 2xx, where name == \"/checkout\")'",
        '  - {name: one-order-per-key, expr: "check(duplicate-keys) == 0"}',
        "checks:",
        '  - {name: orders, sql: "SELECT count(*) FROM orders"}',
        '  - {name: duplicate-keys, sql: "SELECT count(*) FROM orders"}',
    ]
    return "\n".join(lines) + "\n"


# --- the synthetic store ------------------------------------------------------------------------


def _bucket(
    rng: random.Random, idx: int, fault: str | None, share: float, attempt_log: list[AttemptRecord]
) -> tuple[SerializedBucket | None, dict[int, int]]:
    """One 100 ms bucket; ``fault`` is the family in force, ``share`` how hard it hits."""
    n = int(RATE_PER_BUCKET + rng.random() * 1.0 - 0.5 + 0.5)  # 5 or 6: 5.6 on average
    n += 1 if rng.random() < 0.1 else 0
    bucket = Bucket(idx)
    t = idx / 10
    for _ in range(n):
        latency = rng.lognormvariate(-3.6, 0.5)  # about 27 ms median, a tail to 150 ms
        status = 200 if rng.random() < 0.8 else 201
        hit = fault is not None and rng.random() < share
        if hit and fault in ("kill", "down", "reset"):
            status, latency = (0, rng.uniform(0.001, 1.0)) if rng.random() < 0.5 else (502, 0.002)
        elif hit and fault in ("maintenance", "db"):
            status = 503
        elif hit and fault in ("slow", "pause"):
            latency += rng.uniform(0.1, 0.9)
        elif rng.random() < 0.004:
            status = 409
        bucket.statuses[status] = bucket.statuses.get(status, 0) + 1
        bucket.latency.record(latency)
        bucket.attempts += 1
        if status == 503:
            bucket.retry_after_503 += 1
        retried = status in (0, 502, 503) and rng.random() < 0.8
        if retried:
            # The retry that follows is filed in a later bucket, as the recorder would.
            logical = f"w{idx % 2}:{idx}-{bucket.attempts}"
            attempt_log.append(AttemptRecord(logical, 1, t, status, latency, None))
            attempt_log.append(
                AttemptRecord(logical, 2, t + latency + 0.5, 200, 0.03, 0.5 if status else None)
            )
        else:
            bucket.done += 1
            bucket.failed += status in (0, 502, 503)
    retries = sum(1 for r in attempt_log[-2 * n :] if r.attempt == 2 and int(r.t * 10) == idx)
    bucket.retries = retries
    if not bucket.attempts:
        return None, {}
    return bucket.to_dict(), bucket.statuses


def _family(action: str, params: dict[str, Any] | None) -> str:
    if action == "toxic" and params and params.get("type") == "reset_peer":
        return "reset"
    return {
        "toxic": "slow",
        "db-throttle": "db",
        "kill": "kill",
        "down": "down",
        "pause": "pause",
        "maintenance": "maintenance",
        "restart": "kill",
    }[action]


def build_store(base: Path, minutes: float, seed: int = 18) -> tuple[RunDir, dict[str, int]]:
    """The synthetic run under ``base``; returns it and what it holds (for the table)."""
    rng = random.Random(seed)
    base.mkdir(parents=True, exist_ok=True)
    (base / "locustfile.py").write_text("")
    scenario = parse_scenario(scenario_yaml(minutes), base / "report-bench.yaml")
    total_s = minutes * 60
    run = RunDir.create(base / "reports", scenario.name, clock=lambda: CREATED)
    end = T0 + total_s + 0.1
    writer = run.writer(clock=lambda: end)
    writer.set_scenario(scenario.to_dict())
    writer.set_meta("entry_url", "http://127.0.0.1:8080")
    writer.set_meta("workers", 2)
    retries = "up to 4 attempts, backoff 0.2s..4s with full jitter, Retry-After honoured"
    writer.set_meta("clients", [{"user_class": "ShopUser", "retries": retries}])
    writer.set_meta("max_attempts", 4)
    writer.set_meta("load_started_at", T0)
    writer.event(EventKind.CHECK, "orders", {"stage": "before", "value": 9000.0}, t=T0 - 1.5)
    writer.event(EventKind.CHECK, "duplicate-keys", {"stage": "before", "value": 0.0}, t=T0 - 1.4)

    # Every edge of the timeline, in time order: phases and faults as the master writes them.
    edges: list[tuple[float, EventKind, str, dict[str, Any]]] = []
    start = 0.0
    for index, phase in enumerate(scenario.load.phases):
        detail = {"index": index, "users": phase.users, "spawn_rate": float(phase.spawn_rate)}
        edges.append((T0 + start + 0.001, EventKind.PHASE_START, phase.name, detail))
        start += phase.duration
        edges.append((T0 + start + 0.0005, EventKind.PHASE_END, phase.name, detail))
    windows: list[tuple[float, float, str, float]] = []
    for n, fault in enumerate(scenario.faults):
        assert fault.at is not None
        assert fault.for_ is not None
        action, params = FAULTS[n][1], FAULTS[n][5]
        detail = {
            "id": f"{n:032x}",
            "kind": action,
            "target": getattr(fault, "target", None),
            "description": f"{action} {getattr(fault, 'target', None) or 'the shop'}",
        }
        at, until = T0 + fault.at + 0.04, T0 + fault.at + fault.for_ + 0.05
        if action == "restart":
            until = at + 0.01  # self-healing: reverted the moment it is injected
        edges.append((at - 0.002, EventKind.FAULT_JOURNALED, fault.name, detail))
        edges.append((at, EventKind.FAULT_INJECTED, fault.name, {**detail, "started_at": at}))
        edges.append((until, EventKind.FAULT_REVERTED, fault.name, detail))
        # The shop stays hurt a few seconds after the revert: a recovery to measure.
        windows.append((at, until + 2.0 + rng.random() * 3, _family(action, params), 0.4))
    for t, kind, name, detail in sorted(edges, key=lambda e: e[0]):
        writer.event(kind, name, {**detail, "offset": t - T0}, t=t)

    # The buckets, shipped a minute at a time (the store's upsert either way).
    first = round(T0 * 10)
    statuses: dict[int, int] = {}
    attempt_log: list[AttemptRecord] = []
    batch: list[SerializedBucket] = []
    buckets = 0
    for tenth in range(round(total_s * 10)):
        t = T0 + tenth / 10
        in_force = next(((f, s) for a, u, f, s in windows if a <= t < u), (None, 0.0))
        bucket, counts = _bucket(rng, first + tenth, in_force[0], in_force[1], attempt_log)
        if bucket is None:
            continue
        buckets += 1
        for code, k in counts.items():
            statuses[code] = statuses.get(code, 0) + k
        batch.append(bucket)
        if len(batch) >= 600:
            writer.upsert_buckets(batch)
            batch = []
    writer.upsert_buckets(batch)
    writer.add_attempts(attempt_log)

    requests = sum(statuses.values())
    per_name: dict[str, dict[str, dict[str, int]]] = {}
    for i, name in enumerate(NAMES):
        share = {str(code): k // len(NAMES) + (i < k % len(NAMES)) for code, k in statuses.items()}
        per_name[name] = {"all": share, "final": share}
    writer.set_meta(
        "request_names",
        {
            "w0": {name: _halve(c, 0) for name, c in per_name.items()},
            "w1": {name: _halve(c, 1) for name, c in per_name.items()},
        },
    )
    for w in (0, 1):
        totals = {"requests": requests // 2 + (w and requests % 2)}
        writer.event(EventKind.NOTE, "worker_totals", {"worker": f"w{w}", **totals}, t=end)
    writer.finish(RunStatus.COMPLETED, detail={"attempts": requests}, t=end)
    checkouts = per_name["/checkout"]["all"]
    orders = 9000.0 + sum(k for code, k in checkouts.items() if code.startswith("2")) + 3
    writer.event(EventKind.CHECK, "orders", {"stage": "after", "value": orders}, t=end + 0.3)
    writer.event(EventKind.CHECK, "duplicate-keys", {"stage": "after", "value": 0.0}, t=end + 0.4)
    writer.close()
    held = {"requests": requests, "buckets": buckets, "attempt records": len(attempt_log)}
    held |= {"faults": len(scenario.faults), "SLOs": len(scenario.slos)}
    return run, held


def _halve(counts: dict[str, dict[str, int]], w: int) -> dict[str, dict[str, int]]:
    return {k: {code: n // 2 + (w and n % 2) for code, n in v.items()} for k, v in counts.items()}


# --- the measurements ---------------------------------------------------------------------------


def time_cli(run_root: Path) -> dict[str, float]:
    """``harness report`` in a child process: wall s, CPU s, peak RSS MB, and its exit code."""
    argv = [sys.executable, "-m", "harness", "report", str(run_root)]
    env = {**os.environ, "COLUMNS": "100"}
    start = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"harness report exited {child.returncode}:\n{output.decode()}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "exit": float(child.returncode),
    }


def stages(run_root: Path) -> dict[str, float]:
    """The work of ``harness report`` in this process, timed stage by stage (seconds)."""
    from harness.report import collect, judge_stored
    from harness.report.html import render_html
    from harness.report.junit import render_junit
    from harness.report.plots import render_all
    from harness.report.summary import render_summary

    out: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = fn()
        out[name] = time.perf_counter() - start
        return value

    run_dir = RunDir.open(run_root)
    judgement, notes = timed("judge", lambda: judge_stored(run_dir))
    report = timed("collect", lambda: collect(run_dir, judgement, notes=notes))
    timed("summary.json", lambda: render_summary(report))
    timed("junit.xml", lambda: render_junit(report))
    plots = timed("plots", lambda: render_all(report.series))
    timed("report.html", lambda: render_html(report, plots))
    out["in-process total"] = sum(out.values())
    return out


def traced_peak_mb(run_root: Path) -> float:
    """The peak of Python's allocations over one in-process pass (tracemalloc)."""
    tracemalloc.start()
    try:
        stages(run_root)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the store here and keep it")
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process pass")
    args = parser.parse_args(argv)
    if not 1 <= args.minutes <= 240:
        parser.error(f"--minutes {args.minutes:g}: must be within 1..240")

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        start = time.monotonic()
        run, held = build_store(scratch, args.minutes)
        size = run.database.stat().st_size / 2**20
        print(f"built {run.root.name} in {time.monotonic() - start:.1f} s, {size:.1f} MB:")
        print("  " + ", ".join(f"{v:,} {k}" for k, v in held.items()))
        stages(run.root)  # warm: imports, font cache
        cli: list[dict[str, float]] = []
        inproc: list[dict[str, float]] = []
        for n in range(1, args.rounds + 1):
            cli.append(time_cli(run.root))
            inproc.append(stages(run.root))
            print(
                f"round {n}: harness report {cli[-1]['wall']:.2f} s wall, "
                f"{cli[-1]['cpu']:.2f} s CPU, {cli[-1]['rss_mb']:.0f} MB peak RSS; "
                f"in process {inproc[-1]['in-process total']:.2f} s",
                flush=True,
            )
        peak = traced_peak_mb(run.root)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(stages, run.root)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        report(cli, inproc, peak, args)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def report(
    cli: list[dict[str, float]], inproc: list[dict[str, float]], peak: float, args: Any
) -> None:
    print(f"\n{args.minutes:g}-minute run, {args.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"{'':>24} {'best':>8} {'median':>8}")
    for key, label in (("wall", "harness report, wall s"), ("cpu", "harness report, CPU s")):
        values = [c[key] for c in cli]
        print(f"{label:>24} {min(values):8.2f} {statistics.median(values):8.2f}")
    rss = [c["rss_mb"] for c in cli]
    print(f"{'peak RSS MB':>24} {min(rss):8.0f} {statistics.median(rss):8.0f}")
    for stage in inproc[0]:
        values = [r[stage] for r in inproc]
        print(f"{stage + ' s':>24} {min(values):8.3f} {statistics.median(values):8.3f}")
    print(f"{'tracemalloc peak MB':>24} {peak:8.1f}")
    best = min(c["wall"] for c in cli)
    verdict = "ok" if best <= TARGET_S else "OVER TARGET"
    print(f"harness report: {best:.2f} s (target <= {TARGET_S:g} s): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
