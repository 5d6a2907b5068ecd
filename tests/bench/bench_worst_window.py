"""How long the worst-window search of ``over any N`` takes on a long run.

Run by hand, never as a timed test::

    flock /tmp/harness-load.lock python tests/bench/bench_worst_window.py
    python tests/bench/bench_worst_window.py --minutes 30 --window 10

It builds ``--minutes`` of 100 ms buckets (every bucket answered, 20 responses with log-normal
latencies, a few 503s), then judges ``p99(latency) < 300ms over any Ns`` and
``ratio(status == 503) < 5% over any Ns`` over the whole run, and prints the time each took and
the number of windows compared. The percentile is the costly one: a sorted walk of the merged
histogram's buckets per window.
"""

from __future__ import annotations

import argparse
import random
import time

from harness.record.buckets import Bucket
from harness.verdict.evaluate import evaluate
from harness.verdict.language import parse_slo
from harness.verdict.rundata import RunData, Span

T0 = 1_700_000_000.0
IDX0 = 17_000_000_000


def buckets(minutes: float, seed: int = 1) -> list[Bucket]:
    rng = random.Random(seed)
    out = []
    for i in range(round(minutes * 600)):
        b = Bucket(IDX0 + i)
        for _ in range(20):
            status = 503 if rng.random() < 0.02 else 200
            b.statuses[status] = b.statuses.get(status, 0) + 1
            b.latency.record(rng.lognormvariate(-3.5, 0.8))
        b.attempts = b.done = 20
        out.append(b)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=10, help="seconds")
    args = parser.parse_args()
    made = buckets(args.minutes)
    end = T0 + args.minutes * 60
    data = RunData(start=T0, end=end, buckets=tuple(made), phases=(("all", Span(T0, end)),))
    print(f"{len(made)} buckets ({args.minutes:g} min), windows of {args.window} s")
    for text in (
        f"p99(latency) < 300ms over any {args.window}s",
        f"ratio(status == 503) < 5% over any {args.window}s",
    ):
        slo = parse_slo(text)
        started = time.perf_counter()
        verdict = evaluate(slo, data)
        took = time.perf_counter() - started
        windows = verdict.worst.windows if verdict.worst else 0
        print(
            f"  {text:<45} {took * 1000:8.0f} ms  {windows} windows  worst {verdict.observed_text}"
        )


if __name__ == "__main__":
    main()
