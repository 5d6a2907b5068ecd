"""Benchmark what the harness recorder costs a Locust user: requests/s with and without it.

    python tests/bench/bench_recorder_overhead.py [--seconds 4] [--rounds 5] [--users 20]
    python tests/bench/bench_recorder_overhead.py --interleaved-only --interleaved-seconds 120

The same FastHttpUser (no wait, ``GET /``) runs against the same target for the same time in
three set-ups, each in a fresh Locust process of its own:

* ``plain``     Locust alone;
* ``recorder``  with the harness recorder attached as on a worker: the ``events.request`` hook
                filing every request into 100 ms buckets, and the shipment every second (into a
                message sink that drops it, as if the master were on another machine);
* ``+store``    the recorder plus the master's side in the same process (a single-process run,
                ``--workers 0``): every shipment merged into a real run store on disk.

The target is a minimal keep-alive HTTP server on uvloop in its own process, much faster than
one Locust process, so Locust's CPU is the limit and the figures compare the client side only.
On a machine with two or more CPUs the target and the load are pinned to different CPUs.

Rounds interleave the set-ups. Other work on the machine only ever slows a round down, so the
table compares the best round of each set-up (the median follows): requests/s, CPU microseconds
per request of the load process, and the overhead against ``plain`` (requests/s lost, CPU per
request added). Then the request hook alone, timed in-process without Locust or a network: the
harness's own share, free of noise; and the same hook as Locust pays it, inside
``events.request.fire`` with a real request's keywords and Locust's stats listener beside it.
The target (issue 18): at most 3 %, read from the interleaved run (``--interleaved-only`` skips
the separate processes, which a busy machine makes noise of): the windows come in pairs, one
with the hook and one without in random order, and the median over pairs of with against
without is the figure, so a burst of other load spoils a few pairs rather than the whole sum
(the summed figures are printed too). ``--listener null`` attaches a listener that does nothing
instead of the hook (Locust's dispatch alone), ``--listener none`` nothing at all (the method's
own reading where there is no overhead): the figures to read the recorder's against.
Every process is bounded in time and stopped by PID; Ctrl-C stops them too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SETUPS = ("plain", "recorder", "+store")
LISTENERS = ("recorder", "null", "none")
TARGET_OVERHEAD = 0.03
WARMUP_S = 1.0
_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


# --- the target ---------------------------------------------------------------------------------


def serve(port: int, seconds: float) -> None:
    """Answer every request on a connection with 200 "ok", for at most ``seconds``."""
    import asyncio

    import uvloop

    class Http(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            # GETs only: a request ends at its blank line; answer each complete one at once.
            self.buffer += data
            complete = self.buffer.count(b"\r\n\r\n")
            if complete:
                self.transport.write(_RESPONSE * complete)
                self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Http, "127.0.0.1", port, backlog=1024)
        async with server:
            await asyncio.sleep(seconds)

    uvloop.run(main())


# --- one load process ---------------------------------------------------------------------------


def load(setup: str, host: str, users: int, seconds: float) -> dict[str, float]:
    """Run ``users`` FastHttpUsers against ``host``; requests/s and CPU µs per request."""
    import gevent  # type: ignore[import-untyped]
    import locust  # monkey-patches this process with gevent: only ever in a child process
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    from harness.load.collector import Collector
    from harness.load.plugin import WorkerPlugin
    from harness.load.recording import MESSAGE_TYPE
    from harness.record import RunDir

    class Bench(FastHttpUser):
        wait_time = constant(0)

        @task
        def index(self) -> None:
            self.client.get("/")

    Bench.host = host
    environment = Environment(user_classes=[Bench], events=locust.events)
    runner = environment.create_local_runner()
    writer = None
    if setup != "plain":
        WorkerPlugin(environment).install()
        if setup == "+store":
            scratch = tempfile.mkdtemp(prefix="bench-recorder-")
            writer = RunDir.create(Path(scratch), "bench").writer()
            collector = Collector(writer)
            runner.register_message(
                MESSAGE_TYPE, lambda environment, msg, **_: collector.receive("local", msg.data)
            )
        else:
            runner.register_message(MESSAGE_TYPE, lambda environment, msg, **_: None)
    runner.start(users, spawn_rate=users * 20)
    gevent.sleep(WARMUP_S)
    count0, cpu0, t0 = environment.stats.total.num_requests, time.process_time(), time.monotonic()
    gevent.sleep(seconds)
    count1, cpu1, t1 = environment.stats.total.num_requests, time.process_time(), time.monotonic()
    failures = environment.stats.total.num_failures
    runner.quit()
    if writer is not None:
        writer.close()
    requests = count1 - count0
    return {
        "rps": requests / (t1 - t0),
        "cpu_us": 1e6 * (cpu1 - cpu0) / max(requests, 1),
        "failures": failures,
    }


def load_interleaved(
    host: str, users: int, seconds: float, listener: str = "recorder", window_s: float = 0.5
) -> dict[str, float]:
    """One Locust process, the recorder's hook attached and detached every ``window_s`` (in
    pairs of random order): both states see the same machine at nearly the same moments, so
    other load cancels out.

    ``listener`` says what the "on" windows attach instead, to read the figure against: "null"
    a listener that does nothing (what Locust charges for any second ``events.request``
    listener), "none" nothing at all (the two states are the same: what the method itself
    reads as overhead when there is none)."""
    import gevent
    import locust  # monkey-patches this process with gevent: only ever in a child process
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    from harness.load.plugin import WorkerPlugin
    from harness.load.recording import MESSAGE_TYPE

    class Bench(FastHttpUser):
        wait_time = constant(0)

        @task
        def index(self) -> None:
            self.client.get("/")

    Bench.host = host
    environment = Environment(user_classes=[Bench], events=locust.events)
    runner = environment.create_local_runner()
    plugin = WorkerPlugin(environment)
    plugin.install()  # the shipping greenlet runs throughout; the hook comes and goes
    hook = {"recorder": plugin.recorder.on_request, "null": _null_listener, "none": None}[listener]
    events: Any = environment.events
    events.request.remove_listener(plugin.recorder.on_request)
    runner.register_message(MESSAGE_TYPE, lambda environment, msg, **_: None)
    captured: list[dict[str, Any]] = []  # one real request's keywords, for in_fire_us

    def capture(**meta: Any) -> None:
        captured.append(meta)

    events.request.add_listener(capture)
    runner.start(users, spawn_rate=users * 20)
    gevent.sleep(WARMUP_S)
    events.request.remove_listener(capture)
    del captured[1:]
    windows: list[tuple[bool, float, float, float]] = []  # attached, requests, wall s, CPU s
    rng = random.Random(18)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        # A pair of windows, one with the hook and one without, in random order: what recurs
        # every second (the shipment, Locust's own timers) cannot keep landing in one state.
        for attached in (True, False) if rng.random() < 0.5 else (False, True):
            if attached and hook is not None:
                events.request.add_listener(hook)
            count0, cpu0, t0 = (
                environment.stats.total.num_requests,
                time.process_time(),
                time.monotonic(),
            )
            gevent.sleep(window_s)
            if attached and hook is not None:
                # The hook files its notes when a shipment is made: made here, inside the
                # window, that work is charged to the window that caused it (the shipping
                # greenlet's next round, a few buckets, may still fall in either).
                plugin.ship(final=False)
            windows.append(
                (
                    attached,
                    environment.stats.total.num_requests - count0,
                    time.monotonic() - t0,
                    time.process_time() - cpu0,
                )
            )
            if attached and hook is not None:
                events.request.remove_listener(hook)
    runner.quit()
    plain = [sum(w[i] for w in windows if not w[0]) for i in (1, 2, 3)]
    recorder = [sum(w[i] for w in windows if w[0]) for i in (1, 2, 3)]
    pairs = paired(windows)
    return {
        "plain_rps": plain[0] / plain[1],
        "recorder_rps": recorder[0] / recorder[1],
        "plain_cpu_us": 1e6 * plain[2] / plain[0],
        "recorder_cpu_us": 1e6 * recorder[2] / recorder[0],
        **{f"paired_{key}": value for key, value in pairs.items()},
        "recorded": float(plugin.recorder.requests),
        "in_fire_us": in_fire_us(events.request, captured[0], plugin.recorder.on_request),
    }


def _null_listener(
    response_time: float = 0.0,
    response: object = None,
    context: object = None,
    exception: object = None,
    start_time: float | None = None,
    name: object = None,
    request_type: object = None,
    response_length: object = None,
    url: object = None,
    **_: object,
) -> None:
    """The recorder's hook's signature, doing nothing: Locust's dispatch to a listener alone."""


def paired(windows: list[tuple[bool, float, float, float]]) -> dict[str, float]:
    """Within each pair of windows, the one with the hook against the one without: the median
    of those ratios, requests/s lost and CPU per request added, each with a 90 % interval
    (bootstrap over the pairs). A burst of other load spoils the few pairs it falls in instead
    of the whole sum, and the interval says how far the machine's noise leaves the figure."""
    lost, added = [], []
    for first, second in zip(windows[0::2], windows[1::2], strict=False):
        on, off = (first, second) if first[0] else (second, first)
        if not on[1] or not off[1]:
            continue
        lost.append(1 - (on[1] / on[2]) / (off[1] / off[2]))
        added.append((on[3] / on[1]) / (off[3] / off[1]) - 1)
    if not lost:
        nan = float("nan")
        return dict.fromkeys(("lost", "lost_lo", "lost_hi", "added", "added_lo", "added_hi"), nan)
    lost_lo, lost_hi = median_interval(lost)
    added_lo, added_hi = median_interval(added)
    return {
        "lost": statistics.median(lost),
        "lost_lo": lost_lo,
        "lost_hi": lost_hi,
        "added": statistics.median(added),
        "added_lo": added_lo,
        "added_hi": added_hi,
    }


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """A 90 % bootstrap interval of the median of ``values`` (seeded: the same pairs give the
    same interval)."""
    rng = random.Random(90)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(0.05 * resamples)], medians[int(0.95 * resamples) - 1]


def in_fire_us(request_event: Any, meta: dict[str, Any], hook: Any, rounds: int = 40) -> float:
    """CPU µs the hook adds to Locust's ``events.request.fire`` of a real FastHttpUser request
    (its real response, context and keywords; Locust's own stats listener attached): the median
    over rounds of firing with and without it. The hook's cost as Locust pays it, the keyword
    unpacking per listener included, with less noise than timing whole requests."""
    meta = dict(meta)
    fires = 5000

    def fire() -> float:
        start = time.process_time()
        for _ in range(fires):
            request_event.fire(**meta)
        return time.process_time() - start

    extra = []
    for _ in range(rounds):
        without = fire()
        request_event.add_listener(hook)
        with_hook = fire()
        request_event.remove_listener(hook)
        extra.append(with_hook - without)
    return 1e6 * statistics.median(extra) / fires


def hook_cost_us(calls: int = 200_000) -> float:
    """CPU µs of the recorder's request hook per request, alone (no Locust, no network), with a
    shipment every 3,000 requests: the part of the overhead that is the harness's own code."""
    from harness.load.recording import RequestRecorder

    class Response:
        status_code = 200
        headers: dict[str, str] = {}  # noqa: RUF012

    clock = [1_700_000_000.0]
    recorder = RequestRecorder(tag="bench", clock=lambda: clock[0])
    response = Response()
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for i in range(calls):
            t = clock[0] = clock[0] + 0.0003
            recorder.on_request(
                request_type="GET",
                name="/",
                response_time=1.2,
                response_length=2,
                response=response,
                context={},
                exception=None,
                start_time=t,
                url="http://127.0.0.1/",
            )
            if i % 3000 == 0:
                recorder.shipment()
        best = min(best, time.process_time() - start)
    return 1e6 * best / calls


# --- the driver ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(cpu: int) -> list[str]:
    """A ``taskset`` prefix pinning a child to ``cpu``, when there is more than one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return []
    return ["taskset", "-c", str(cpus[cpu % len(cpus)])] if _has_taskset() else []


def _has_taskset() -> bool:
    return any(os.access(Path(d) / "taskset", os.X_OK) for d in os.get_exec_path())


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the target server exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the target server did not listen in time")


def run_load(
    setup: str, host: str, users: int, seconds: float, listener: str = "recorder"
) -> dict[str, float]:
    argv = [*pin(0), sys.executable, __file__, "--load", setup, "--host", host]
    argv += ["--users", str(users), "--seconds", str(seconds), "--listener", listener]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the {setup} load failed:\n{result.stderr}")
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured time per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument(
        "--interleaved-seconds",
        type=float,
        default=20.0,
        help="length of the interleaved run (hook on and off every 0.5 s in one process)",
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s, 10 s interleaved")
    parser.add_argument(
        "--interleaved-only",
        action="store_true",
        help="only the interleaved run (and the hook alone): the firm figures on a busy machine",
    )
    parser.add_argument(
        "--listener",
        choices=LISTENERS,
        default="recorder",
        help="what the interleaved run's 'on' windows attach: the recorder (the figure), a "
        "do-nothing listener (Locust's dispatch alone) or none (the method's own reading)",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", choices=(*SETUPS, "interleaved"), help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve is not None:
        serve(args.serve, args.seconds)
        return 0
    if args.load == "interleaved":
        print(json.dumps(load_interleaved(args.host, args.users, args.seconds, args.listener)))
        return 0
    if args.load is not None:
        print(json.dumps(load(args.load, args.host, args.users, args.seconds)))
        return 0
    if args.quick:
        args.rounds, args.seconds, args.interleaved_seconds = 2, 3.0, 10.0
    if args.interleaved_only:
        args.rounds = 0

    port = free_port()
    budget = args.rounds * len(SETUPS) * (args.seconds + 15) + args.interleaved_seconds + 60
    server = subprocess.Popen(
        [*pin(1), sys.executable, __file__, "--serve", str(port), "--seconds", str(budget)]
    )
    results: dict[str, list[dict[str, float]]] = {setup: [] for setup in SETUPS}
    try:
        wait_listening(port, server)
        host = f"http://127.0.0.1:{port}"
        for round_no in range(1, args.rounds + 1):
            for setup in SETUPS:
                result = run_load(setup, host, args.users, args.seconds)
                results[setup].append(result)
                print(
                    f"round {round_no} {setup:>8}: {result['rps']:8.0f} req/s  "
                    f"{result['cpu_us']:6.1f} µs CPU/req  failures {result['failures']:.0f}",
                    flush=True,
                )
        interleaved = run_load(
            "interleaved", host, args.users, args.interleaved_seconds, args.listener
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    report(results, interleaved, args)
    return 0


def report(
    results: dict[str, list[dict[str, float]]],
    interleaved: dict[str, float],
    args: argparse.Namespace,
) -> None:
    plain_cpu = separate(results, args) if args.rounds else interleaved["plain_cpu_us"]
    hook = hook_cost_us()
    print(
        f"\nthe hook alone: {hook:.2f} µs CPU per request = {100 * hook / plain_cpu:.1f}% "
        "of a plain request's CPU\n  (the harness's own code, free of machine noise)"
    )
    i_lost = 1 - interleaved["recorder_rps"] / interleaved["plain_rps"]
    i_added = interleaved["recorder_cpu_us"] / interleaved["plain_cpu_us"] - 1
    print(
        f"the hook inside Locust's events.request.fire (a real request's keywords): "
        f"{interleaved['in_fire_us']:.2f} µs CPU\n  = "
        f"{100 * interleaved['in_fire_us'] / interleaved['plain_cpu_us']:.1f}% of a plain "
        "request's CPU (median of 40 rounds with and without it)"
    )
    print(
        f"interleaved in one process ({args.interleaved_seconds:g} s, hook on/off by 0.5 s):\n"
        f"  plain {interleaved['plain_rps']:.0f} req/s, {interleaved['plain_cpu_us']:.1f} µs/req; "
        f"recorder {interleaved['recorder_rps']:.0f} req/s, "
        f"{interleaved['recorder_cpu_us']:.1f} µs/req\n"
        f"  summed: {100 * i_lost:.1f}% of requests/s, {100 * i_added:.1f}% CPU per request"
    )
    p_lost, p_added = interleaved["paired_lost"], interleaved["paired_added"]
    spread = (
        f"  90% intervals: {100 * interleaved['paired_lost_lo']:.1f} to "
        f"{100 * interleaved['paired_lost_hi']:.1f}% of requests/s, "
        f"{100 * interleaved['paired_added_lo']:.1f} to "
        f"{100 * interleaved['paired_added_hi']:.1f}% CPU per request"
    )
    if args.listener != "recorder":
        what = {"null": "a do-nothing listener", "none": "nothing (both windows alike)"}
        print(
            f"attaching {what[args.listener]} instead of the hook (median over pairs of "
            f"windows):\n  {100 * p_lost:.1f}% of requests/s, {100 * p_added:.1f}% CPU per "
            f"request: read the recorder's figure against this one\n{spread}"
        )
        return
    verdict = "ok" if max(p_lost, p_added) <= TARGET_OVERHEAD else "OVER TARGET"
    print(
        f"recorder overhead (median over pairs of windows, with the hook against without): "
        f"\n  {100 * p_lost:.1f}% of requests/s, {100 * p_added:.1f}% CPU per request "
        f"(target <= {100 * TARGET_OVERHEAD:.0f}%): {verdict}\n{spread}"
    )
    if os.getloadavg()[0] > len(os.sched_getaffinity(0)):
        print(f"  (load average {os.getloadavg()[0]:.1f}: a busy machine, the figures move)")


def separate(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> float:
    """The table of the separate processes; returns the best CPU µs per plain request."""
    # Other work on the machine only ever slows a run down: the best round of each set-up is
    # the least disturbed one, so best against best is the fair comparison (medians follow).
    best_rps = {s: max(r["rps"] for r in results[s]) for s in SETUPS}
    median_rps = {s: statistics.median(r["rps"] for r in results[s]) for s in SETUPS}
    best_cpu = {s: min(r["cpu_us"] for r in results[s]) for s in SETUPS}
    print()
    print(
        f"{args.rounds} rounds of {args.seconds:g} s, {args.users} users, "
        f"{len(os.sched_getaffinity(0))} CPUs"
    )
    print(
        f"{'set-up':>10} {'best req/s':>11} {'median':>8} {'µs CPU/req':>11} "
        f"{'req/s lost':>11} {'CPU added':>10}"
    )
    for setup in SETUPS:
        lost = 1 - best_rps[setup] / best_rps["plain"]
        added = best_cpu[setup] / best_cpu["plain"] - 1
        print(
            f"{setup:>10} {best_rps[setup]:11.0f} {median_rps[setup]:8.0f} "
            f"{best_cpu[setup]:11.1f} {100 * lost:10.1f}% {100 * added:9.1f}%"
        )
    overhead = 1 - best_rps["recorder"] / best_rps["plain"]
    cpu_overhead = best_cpu["recorder"] / best_cpu["plain"] - 1
    print(
        f"separate processes, best rounds: {100 * overhead:.1f}% of requests/s, "
        f"{100 * cpu_overhead:.1f}% CPU per request"
    )
    if median_rps["plain"] < 0.8 * best_rps["plain"]:
        print("  (the rounds vary a lot: other load on the machine? the interleaved run is firmer)")
    return best_cpu["plain"]


if __name__ == "__main__":
    sys.exit(main())
