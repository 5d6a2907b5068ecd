"""Benchmark the per-request recorder: nanoseconds per ``record_attempt`` and memory after 1M.

    python tests/bench/bench_recorder.py [--records N] [--rate RPS]

``record_attempt`` runs in the Locust request hook on every request, so its cost is paid by
every simulated user. Two workloads, each ``--records`` attempts at ``--rate`` attempts per
second of a fake clock (so 1M at 1000/s spans 1000 s, 10,000 buckets), drained once per fake
second as a worker ships to the master:

* ``hot path``: every request succeeds at its first attempt (200), latencies lognormal;
* ``mixed``: 3% of logical requests get a 503 with Retry-After and are retried, 1% end in a
  connection error (status 0): the attempt log and the Retry-After memory are exercised.

Times are process CPU time (less disturbed than wall time on a shared machine), the best of
``--repeat`` runs, and include the drains; the inputs are generated beforehand. Memory is
measured in a separate run under tracemalloc (which slows it): what the recorder holds at the
end, just before the final drain, and the peak during the run; and, for contrast, what it would
hold without any drain.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable

from harness.record.buckets import BucketRecorder

T0 = 1_700_000_000.0

Attempt = tuple[float, float, int, int, float | None, int, bool, bool]


def hot_path(n: int, rate: float, seed: int = 1) -> list[Attempt]:
    rng = random.Random(seed)
    return [
        (T0 + i / rate, rng.lognormvariate(math.log(0.03), 0.8), 200, 1, None, i, True, True)
        for i in range(n)
    ]


def mixed(n: int, rate: float, seed: int = 2) -> list[Attempt]:
    rng = random.Random(seed)
    out: list[Attempt] = []
    logical = 0
    while len(out) < n:
        t = T0 + len(out) / rate
        latency = rng.lognormvariate(math.log(0.03), 0.8)
        roll = rng.random()
        if roll < 0.03:  # shed: 503 + Retry-After, then a successful retry
            out.append((t, 0.002, 503, 1, 1.0, logical, False, False))
            out.append((t + 1.0, latency, 200, 2, None, logical, True, True))
        elif roll < 0.04:
            out.append((t, 5.0, 0, 1, None, logical, True, False))
        else:
            out.append((t, latency, 200, 1, None, logical, True, True))
        logical += 1
    return out[:n]


def run(attempts: list[Attempt], *, drain: bool) -> BucketRecorder:
    rec = BucketRecorder()
    record = rec.record_attempt
    next_ship = T0 + 1.0
    for t, latency, status, attempt, retry_after, logical_id, final, ok in attempts:
        if drain and t >= next_ship:
            rec.drain(before=t)
            rec.drain_attempts()
            next_ship += 1.0
        # By position, as the worker's hook calls it (harness.load.recording).
        record(t, latency, status, attempt, retry_after, logical_id, final, ok)
    return rec


def best_ns_per_record(attempts: list[Attempt], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        gc.collect()
        start = time.process_time_ns()
        run(attempts, drain=True)
        best = min(best, time.process_time_ns() - start)
    return best / len(attempts)


def _noop(*args: object, **kwargs: object) -> None:
    return None


def loop_overhead_ns(attempts: list[Attempt], repeat: int) -> float:
    """The same loop and call shape with a no-op recorder: the cost that is not ours."""
    best = math.inf
    for _ in range(repeat):
        start = time.process_time_ns()
        for t, latency, status, attempt, retry_after, logical_id, final, ok in attempts:
            _noop(
                t,
                latency,
                status,
                attempt=attempt,
                retry_after=retry_after,
                logical_id=logical_id,
                final=final,
                ok=ok,
            )
        best = min(best, time.process_time_ns() - start)
    return best / len(attempts)


def memory(attempts: list[Attempt], *, drain: bool) -> tuple[int, int, int]:
    """(bytes held at the end, peak bytes, live buckets) under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        rec = run(attempts, drain=drain)
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return held - base, peak - base, rec.live_buckets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="attempts per fake second")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    print(f"python {platform.python_version()} on {platform.machine()}, {args.records:,} records")
    workloads: dict[str, Callable[[int, float], list[Attempt]]] = {
        "hot path": hot_path,
        "mixed": mixed,
    }
    for name, make in workloads.items():
        attempts = make(args.records, args.rate)
        ns = best_ns_per_record(attempts, args.repeat)
        overhead = loop_overhead_ns(attempts, args.repeat)
        held, peak, live = memory(attempts, drain=True)
        held_nodrain, _, live_nodrain = memory(attempts, drain=False)
        print(
            f"{name:>9}: {ns:7.0f} ns/record (of which ~{overhead:.0f} ns the benchmark loop "
            f"and call), held {held / 1024:7.1f} KiB / peak {peak / 1024:7.1f} KiB with "
            f"{live} live buckets; without drains {held_nodrain / 2**20:6.1f} MiB in "
            f"{live_nodrain:,} buckets"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
