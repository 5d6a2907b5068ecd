"""Benchmark the embedded Toxiproxy against the real one and against no proxy at all.

    python tests/bench/bench_proxy.py [--quick]

One run measures, with the same parameters, each target in turn: ``direct`` (the client talks to
the upstream server itself: the ceiling of this load generator on this machine), ``embedded``
(``harness proxy serve``) and ``real`` (Toxiproxy, when found). Figures (see README.md):

* round-trip time of a 64-byte ping-pong over one connection (p50, p99) and the latency a proxy
  adds to it compared with ``direct``;
* requests per second of the same ping-pong over many concurrent connections, for a fixed time;
* MB/s (10^6 bytes/s) of a one-way bulk transfer, without a toxic and with a latency toxic on
  the stream, timed until the receiver has acknowledged the last byte;
* round-trip time of a small HTTP/1.1 request-response on one keep-alive connection (p50, p99),
  and on the embedded server the same through a proxy carrying an ``http`` toxic whose matching
  matches nothing: what reading HTTP on the stream costs a request that is not faulted.

Processes: the upstream servers (echo, sink and HTTP, asyncio on uvloop) run in a child process
of this script; the proxy runs in its own process, started by ``harness.proxy.launcher``; the load
is generated here. Every child is stopped by its PID on every way out, and every phase is bounded in
time, so a hung proxy shows up as an error in its column instead of a hung benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import os
import platform
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import psutil

from harness.proxy.client import ToxiproxyClient
from harness.proxy.launcher import find_real_toxiproxy, running_toxiproxy, stop_process

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we run on
    uvloop = None  # type: ignore[assignment]

Target = Literal["direct", "embedded", "real"]
TARGETS: tuple[Target, ...] = ("direct", "embedded", "real")

PING = b"p" * 64
ACK = struct.Struct("!Q")
ACK_EVERY = 4 * 1024 * 1024  # the sink acknowledges each 4 MiB received
CHUNK = 1024 * 1024  # the bulk sender's write size
IO_TIMEOUT_S = 5.0  # no single socket operation may stall longer than this
TOXIC_LATENCY_MS = 10
HTTP_REQUEST = b"GET /bench/item?id=1 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n"
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
# An http toxic that reads every request and matches none of them.
HTTP_TOXIC = {"action": "abort", "path_prefix": "/nothing-matches"}


@dataclass(frozen=True)
class Settings:
    ping_warmup: int
    ping_count: int
    ping_max_s: float
    rps_connections: int
    rps_warmup_s: float
    rps_duration_s: float
    bulk_max_bytes: int
    bulk_max_s: float
    rounds: int
    budget_s: float  # the whole run; an alarm stops it (cleanly) past this

    @classmethod
    def for_mode(cls, quick: bool, connections: int | None, rounds: int | None) -> Settings:
        conns = connections or 64
        if quick:  # about 4 s a round
            n = rounds or 3
            return cls(300, 1000, 1.5, conns, 0.2, 0.7, 512 << 20, 0.8, n, 15 + 8 * n)
        n = rounds or 5  # about 14 s a round
        return cls(500, 2000, 3.0, conns, 0.3, 2.0, 1 << 30, 2.0, n, 20 + 25 * n)


# -- the upstream servers (child process) -------------------------------------------------------


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _Sink(asyncio.BufferedProtocol):
    """Reads into one buffer (no copies) and writes an 8-byte count at every ACK_EVERY bytes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.buffer = memoryview(bytearray(CHUNK))
        self.received = 0
        self.next_ack = ACK_EVERY

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes
        if self.received >= self.next_ack:
            acks = []
            while self.received >= self.next_ack:
                acks.append(ACK.pack(self.next_ack))
                self.next_ack += ACK_EVERY
            self.transport.write(b"".join(acks))

    def eof_received(self) -> bool:
        return False


class _Http(asyncio.Protocol):
    """Answers every request (bodiless, as the benchmark sends them) with HTTP_RESPONSE."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        count = self.pending.count(b"\r\n\r\n")
        if count:
            self.transport.write(HTTP_RESPONSE * count)
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]


def _new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(coro)


async def _serve_upstreams() -> None:
    loop = asyncio.get_running_loop()
    echo = await loop.create_server(_Echo, "127.0.0.1", 0, backlog=1024)
    sink = await loop.create_server(_Sink, "127.0.0.1", 0, backlog=1024)
    web = await loop.create_server(_Http, "127.0.0.1", 0, backlog=1024)
    ports = [s.sockets[0].getsockname()[1] for s in (echo, sink, web)]
    print(*ports, flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def parent_gone() -> None:  # stdin closes when the benchmark ends, however it ends
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=parent_gone, daemon=True).start()
    await stop.wait()


@dataclass(frozen=True)
class Upstreams:
    echo: str
    sink: str
    http: str
    pid: int


@contextlib.contextmanager
def upstream_process() -> Iterator[Upstreams]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-upstreams"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 15)
        line = process.stdout.readline().decode() if ready else ""
        if not line.strip():
            raise RuntimeError("the upstream server process did not report its ports")
        echo, sink, web = (f"127.0.0.1:{int(p)}" for p in line.split())
        yield Upstreams(echo, sink, web, process.pid)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()


# -- measurements (this process) ----------------------------------------------------------------


def _address(listen: str) -> tuple[str, int]:
    host, port = listen.rsplit(":", 1)
    return host, int(port)


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def measure_latency(
    listen: str, s: Settings, ask: bytes = PING, answer: bytes = PING
) -> tuple[float, float, int]:
    """p50 and p99 round-trip time in µs of a ping-pong on one connection (64 bytes echoed, or
    an HTTP request and its response), and n."""
    with socket.create_connection(_address(listen), timeout=IO_TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray(len(answer))
        view = memoryview(buffer)
        samples: list[float] = []
        clock = time.perf_counter_ns
        deadline = time.monotonic() + s.ping_max_s
        gc.disable()
        try:
            for i in range(s.ping_warmup + s.ping_count):
                started = clock()
                sock.sendall(ask)
                got = 0
                while got < len(answer):
                    n = sock.recv_into(view[got:])
                    if n == 0:
                        raise ConnectionError("the connection closed during the ping-pong")
                    got += n
                elapsed = clock() - started
                if i >= s.ping_warmup:
                    samples.append(elapsed / 1000)
                if time.monotonic() > deadline:
                    break
        finally:
            gc.enable()
        if buffer != answer:
            raise ConnectionError("the answer came back different")
    if len(samples) < 100:
        raise TimeoutError(f"only {len(samples)} round trips in {s.ping_max_s:g}s")
    samples.sort()
    return _percentile(samples, 0.50), _percentile(samples, 0.99), len(samples)


class _PingPong(asyncio.Protocol):
    def __init__(self, state: _RpsState) -> None:
        self.state = state
        self.pending = len(PING)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(PING)

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending <= 0:
            self.pending = len(PING)
            self.state.done += 1
            if self.state.running:
                self.transport.write(PING)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state.running:
            self.state.lost += 1


@dataclass
class _RpsState:
    done: int = 0
    lost: int = 0
    running: bool = True


async def _rps(listen: str, s: Settings) -> float:
    loop = asyncio.get_running_loop()
    state = _RpsState()
    host, port = _address(listen)
    transports: list[asyncio.BaseTransport] = []
    try:
        for _ in range(s.rps_connections):
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _PingPong(state), host, port), IO_TIMEOUT_S
            )
            transports.append(transport)
        await asyncio.sleep(s.rps_warmup_s)
        done_before, started = state.done, time.perf_counter()
        await asyncio.sleep(s.rps_duration_s)
        done_after, ended = state.done, time.perf_counter()
    finally:
        state.running = False
        for opened in transports:
            opened.close()
    if state.lost:
        raise ConnectionError(f"{state.lost} of {s.rps_connections} connections were closed")
    if done_after == done_before:
        raise TimeoutError(f"no request completed in {s.rps_duration_s:g}s")
    return (done_after - done_before) / (ended - started)


def measure_rps(listen: str, s: Settings) -> float:
    """Completed 64-byte request-responses per second over ``rps_connections`` connections."""
    rate: float = _run(_rps(listen, s))
    return rate


def measure_bulk(listen: str, s: Settings) -> float:
    """MB/s of a one-way stream, from the first byte sent to the sink's ack of the last one."""
    chunk = memoryview(bytes(CHUNK))
    chunks_per_ack = ACK_EVERY // CHUNK
    with socket.create_connection(_address(listen), timeout=IO_TIMEOUT_S) as sock:
        started = time.perf_counter()
        sent = 0
        while True:
            for _ in range(chunks_per_ack):
                sock.sendall(chunk)
            sent += ACK_EVERY
            if sent >= s.bulk_max_bytes or time.perf_counter() - started >= s.bulk_max_s:
                break
        pending = b""
        acked = 0
        while acked < sent:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed after {acked} of {sent} bytes were acknowledged")
            pending += data
            while len(pending) >= ACK.size:
                (acked,) = ACK.unpack_from(pending)
                pending = pending[ACK.size :]
        elapsed = time.perf_counter() - started
    return sent / elapsed / 1e6


# -- targets, rounds and the table --------------------------------------------------------------

PHASES = ("latency", "http", "rps", "bulk", "bulk_toxic")


@dataclass
class Results:
    """What one target measured: one value per round and phase, CPU time per phase."""

    target: Target
    note: str = ""
    available: bool = False
    echo: str = ""
    sink: str = ""
    http: str = ""
    http_toxic: str = ""  # a proxy carrying the http toxic that matches nothing (embedded only)
    proxy_pid: int | None = None
    add_toxic: Callable[[], None] | None = None
    rtt: list[tuple[float, float]] = field(default_factory=list)  # (p50, p99) per round
    http_rtt: list[tuple[float, float]] = field(default_factory=list)  # the same, HTTP
    http_toxic_rtt: list[tuple[float, float]] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # rps, bulk, bulk_toxic
    cpu: dict[str, list[float]] = field(default_factory=dict)  # per phase: client, up, proxy
    cpu_elapsed: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def median(self, phase: str) -> float | None:
        values = self.values.get(phase)
        return statistics.median(values) if values else None

    def rtt_median(self, which: int, rtts: list[tuple[float, float]] | None = None) -> float | None:
        rtts = self.rtt if rtts is None else rtts
        return statistics.median(r[which] for r in rtts) if rtts else None


class CpuMeter:
    """CPU seconds of the client (this process), the upstream process and the proxy."""

    def __init__(self, upstream_pid: int) -> None:
        self.me = psutil.Process(os.getpid())
        self.upstream = psutil.Process(upstream_pid)

    @staticmethod
    def _seconds(proc: psutil.Process | None, with_children: bool) -> float:
        if proc is None:
            return 0.0
        try:
            group = [proc, *(proc.children(recursive=True) if with_children else [])]
            return sum(sum(p.cpu_times()[:2]) for p in group)
        except psutil.Error:
            return float("nan")

    def snapshot(self, proxy: psutil.Process | None) -> list[float]:
        # The proxy may run workers, so its children count; this process's children are the
        # servers, measured on their own.
        return [
            self._seconds(self.me, False),
            self._seconds(self.upstream, False),
            self._seconds(proxy, True),
        ]


def run_phase(results: Results, phase: str, s: Settings, cpu: CpuMeter) -> None:
    """One measurement of one phase; a failure is recorded and that phase not tried again."""
    _check_budget()
    if phase in results.errors:
        return
    proxy = psutil.Process(results.proxy_pid) if results.proxy_pid else None
    before, started = cpu.snapshot(proxy), time.perf_counter()
    try:
        if phase == "latency":
            p50, p99, _ = measure_latency(results.echo, s)
            results.rtt.append((p50, p99))
        elif phase == "http":
            # Plain and toxic alternate within the round, so background load hits them alike.
            p50, p99, _ = measure_latency(results.http, s, HTTP_REQUEST, HTTP_RESPONSE)
            results.http_rtt.append((p50, p99))
            if results.http_toxic:
                p50, p99, _ = measure_latency(results.http_toxic, s, HTTP_REQUEST, HTTP_RESPONSE)
                results.http_toxic_rtt.append((p50, p99))
        else:
            measure = measure_rps if phase == "rps" else measure_bulk
            value = measure(results.echo if phase == "rps" else results.sink, s)
            results.values.setdefault(phase, []).append(value)
    except Exception as exc:
        results.errors[phase] = f"{type(exc).__name__}: {exc}"
        return
    _check_budget()
    after, elapsed = cpu.snapshot(proxy), time.perf_counter() - started
    totals = results.cpu.setdefault(phase, [0.0, 0.0, 0.0])
    for i, (a, b) in enumerate(zip(after, before, strict=True)):
        totals[i] += a - b
    results.cpu_elapsed[phase] = results.cpu_elapsed.get(phase, 0.0) + elapsed


def start_proxied(
    results: Results, upstreams: Upstreams, stack: contextlib.ExitStack, log_dir: Path
) -> None:
    """Start the server of ``results.target`` and create its two proxies, or say why not."""
    kind: Literal["embedded", "real"] = "real" if results.target == "real" else "embedded"
    if kind == "embedded" and importlib.util.find_spec("harness.proxy.server") is None:
        results.note = "harness/proxy/server.py is absent"
        return
    if kind == "real" and find_real_toxiproxy() is None:
        results.note = "no real Toxiproxy found (toxiproxy-server, ~/go/bin/server)"
        return
    progress(f"starting the {kind} server")
    try:
        log_file = log_dir / f"{kind}.log"
        server = stack.enter_context(running_toxiproxy(kind=kind, log_file=log_file))
        client = ToxiproxyClient(server.api_url)
        version = client.version()
        results.echo = client.create_proxy("bench-echo", "127.0.0.1:0", upstreams.echo).listen
        results.sink = client.create_proxy("bench-sink", "127.0.0.1:0", upstreams.sink).listen
        results.http = client.create_proxy("bench-http", "127.0.0.1:0", upstreams.http).listen
        if client.supports_http_toxics():
            toxic = client.create_proxy("bench-http-toxic", "127.0.0.1:0", upstreams.http)
            client.add_toxic(toxic.name, "http", stream="upstream", attributes=HTTP_TOXIC)
            results.http_toxic = toxic.listen
    except Exception as exc:
        results.note = f"failed to start: {exc}"
        return

    def add_toxic() -> None:
        latency = {"latency": TOXIC_LATENCY_MS}
        client.add_toxic("bench-sink", "latency", stream="upstream", attributes=latency)

    results.add_toxic = add_toxic
    results.proxy_pid = server.pid
    results.available = True
    results.note = f"version {version}, {server.binary}"


def measure_all(results: list[Results], upstreams: Upstreams, s: Settings) -> None:
    """Rounds of every phase, targets interleaved, so background load hits them all alike."""
    cpu = CpuMeter(upstreams.pid)
    ready = [r for r in results if r.available]
    for round_ in range(1, s.rounds + 1):
        for phase in ("latency", "http", "rps", "bulk"):
            for r in ready:
                progress(f"round {round_}/{s.rounds}: {r.target} {phase}")
                run_phase(r, phase, s, cpu)
    proxied = [r for r in ready if r.add_toxic is not None]
    for r in proxied:
        try:
            assert r.add_toxic is not None
            r.add_toxic()
        except Exception as exc:
            r.errors["bulk_toxic"] = f"adding the toxic: {type(exc).__name__}: {exc}"
    for round_ in range(1, s.rounds + 1):
        for r in proxied:
            progress(f"round {round_}/{s.rounds}: {r.target} bulk, {TOXIC_LATENCY_MS} ms toxic")
            run_phase(r, "bulk_toxic", s, cpu)


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _verdict(value: float | None, ok: bool) -> str:
    return "n/a" if value is None else ("PASS" if ok else "MISS")


def _cpu(r: Results, phase: str) -> str:
    totals, elapsed = r.cpu.get(phase), r.cpu_elapsed.get(phase)
    if not totals or not elapsed:
        return "-"
    shown = totals if r.target != "direct" else totals[:2]
    return "/".join(f"{100 * t / elapsed:.0f}" for t in shown)


def _http_toxic(r: Results, which: int) -> str:
    return _fmt(r.rtt_median(which, r.http_toxic_rtt), 1) if r.http_toxic else ""


def _http_added_value(r: Results, which: int) -> float | None:
    return _minus(r.rtt_median(which, r.http_toxic_rtt), r.rtt_median(which, r.http_rtt))


def _http_added(r: Results, which: int) -> str:
    return _fmt(_http_added_value(r, which), 1) if r.http_toxic else ""


def render(results: list[Results], s: Settings, quick: bool, other_load: float | None) -> str:
    direct, emb, real = results
    base50, base99 = direct.rtt_median(0), direct.rtt_median(1)
    rows: list[tuple[str, Callable[[Results], str]]] = [
        ("RTT p50, 64 B ping-pong (µs)", lambda r: _fmt(r.rtt_median(0), 1)),
        ("RTT p99 (µs)", lambda r: _fmt(r.rtt_median(1), 1)),
        (
            "added p50 vs direct (µs)",
            lambda r: "" if r is direct else _fmt(_minus(r.rtt_median(0), base50), 1),
        ),
        (
            "added p99 vs direct (µs)",
            lambda r: "" if r is direct else _fmt(_minus(r.rtt_median(1), base99), 1),
        ),
        ("HTTP RTT p50, keep-alive (µs)", lambda r: _fmt(r.rtt_median(0, r.http_rtt), 1)),
        ("HTTP RTT p99 (µs)", lambda r: _fmt(r.rtt_median(1, r.http_rtt), 1)),
        ("  http toxic matching nothing p50", lambda r: _http_toxic(r, 0)),
        ("  http toxic matching nothing p99", lambda r: _http_toxic(r, 1)),
        ("  added by the http toxic p50 (µs)", lambda r: _http_added(r, 0)),
        ("  added by the http toxic p99 (µs)", lambda r: _http_added(r, 1)),
        (f"requests/s, {s.rps_connections} connections", lambda r: _fmt(r.median("rps"))),
        ("  CPU % client/upstream/proxy", lambda r: _cpu(r, "rps")),
        ("bulk MB/s, no toxic", lambda r: _fmt(r.median("bulk"))),
        ("  CPU % client/upstream/proxy", lambda r: _cpu(r, "bulk")),
        (
            f"bulk MB/s, latency toxic {TOXIC_LATENCY_MS} ms",
            lambda r: "" if r is direct else _fmt(r.median("bulk_toxic")),
        ),
    ]
    label_width, col = max(len(label) for label, _ in rows) + 2, 16
    lines = [
        f"Toxiproxy benchmark, {'quick' if quick else 'default'} mode: {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, uvloop {getattr(uvloop, '__version__', 'absent')}",
        f"{s.rounds} round(s), targets interleaved, median of the rounds shown. Per round: "
        f"{s.ping_count} ping-pongs after {s.ping_warmup} warm-up; requests/s over "
        f"{s.rps_duration_s:g}s after {s.rps_warmup_s:g}s; bulk up to {s.bulk_max_bytes >> 20} "
        f"MiB or {s.bulk_max_s:g}s.",
        "",
        " " * label_width + "".join(f"{r.target:>{col}}" for r in results),
    ]
    for label, cell in rows:
        cells = [cell(r) if r.available else "not available" for r in results]
        lines.append(f"{label:<{label_width}}" + "".join(f"{c:>{col}}" for c in cells))
    lines.append("")
    for r in results:
        lines.append(f"{r.target}: {r.note if r.available else 'not available: ' + r.note}")
        for phase, error in r.errors.items():
            lines.append(f"{r.target}: ERROR in {phase}: {error}")
        if r.available and s.rounds > 1:
            per_round = {"p50 µs": [f"{p50:.0f}" for p50, _ in r.rtt]}
            per_round["http p50 µs"] = [f"{p50:.0f}" for p50, _ in r.http_rtt]
            if r.http_toxic_rtt:
                per_round["http toxic p50 µs"] = [f"{p50:.0f}" for p50, _ in r.http_toxic_rtt]
            per_round |= {k: [f"{v:.0f}" for v in vs] for k, vs in r.values.items()}
            lines.append(
                f"{r.target}: rounds: "
                + "; ".join(f"{k} {', '.join(v)}" for k, v in per_round.items())
            )
    if _over_budget.is_set():
        lines.append(f"STOPPED EARLY: over the time budget of {s.budget_s:g}s; figures are partial")
    if other_load is not None:
        lines.append(
            f"other processes used {other_load:.0f}% of one core on average during the run"
            + ("  << background load: figures are noisy" if other_load > 15 else "")
        )
    added = _ratio(_minus(emb.rtt_median(0), base50), _minus(real.rtt_median(0), base50))
    rps = _ratio(emb.median("rps"), real.median("rps"))
    bulk = emb.median("bulk")
    http_added = _http_added_value(emb, 0)
    lines += [
        "",
        "targets",
        f"  embedded ÷ real added p50 latency  {_fmt(added, 2):>10}   (≤ 2)    "
        f"{_verdict(added, added is not None and added <= 2)}",
        f"  embedded ÷ real requests/s         {_fmt(rps, 2):>10}   (≥ 0.5)  "
        f"{_verdict(rps, rps is not None and rps >= 0.5)}",
        f"  embedded bulk MB/s, no toxic       {_fmt(bulk):>10}   (≥ 200)  "
        f"{_verdict(bulk, bulk is not None and bulk >= 200)}",
        f"  http toxic matching nothing, µs    {_fmt(http_added, 1):>10}   (≤ 100)  "
        f"{_verdict(http_added, http_added is not None and http_added <= 100)}",
    ]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


class BenchTimeout(BaseException):
    """The whole run went over its time budget (a BaseException, so no phase swallows it)."""


_over_budget = threading.Event()


def _on_alarm(signum: int, frame: object) -> None:
    # Raised wherever the main thread is; should an event loop swallow it inside a callback,
    # the flag still stops the run before the next phase.
    _over_budget.set()
    raise BenchTimeout("the benchmark went over its time budget")


_terminated = threading.Event()


def _on_sigterm(signum: int, frame: object) -> None:
    _terminated.set()
    raise KeyboardInterrupt  # unwinds the ExitStack, so every server is stopped


def _check_budget() -> None:
    if _terminated.is_set():
        raise KeyboardInterrupt
    if _over_budget.is_set():
        raise BenchTimeout("the benchmark went over its time budget")


class SystemLoad:
    """CPU used by processes other than ours over the run, in % of one core."""

    def __init__(self) -> None:
        self.busy_before = self._busy()
        self.started = time.perf_counter()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)

    def others(self, ours_s: float) -> float:
        elapsed = time.perf_counter() - self.started
        return max(0.0, 100 * (self._busy() - self.busy_before - ours_s) / elapsed)


def _our_cpu_s() -> float:
    me = psutil.Process(os.getpid())
    return sum(sum(p.cpu_times()[:2]) for p in [me, *me.children(recursive=True)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 30 s in all)")
    parser.add_argument(
        "--only", choices=TARGETS[1:], action="append", help="proxies to measure (repeatable)"
    )
    parser.add_argument("--rounds", type=int, help="rounds of every measurement")
    parser.add_argument("--connections", type=int, help="connections for requests/s (64)")
    parser.add_argument("--serve-upstreams", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstreams:
        _run(_serve_upstreams())
        return 0

    s = Settings.for_mode(args.quick, args.connections, args.rounds)
    wanted = {"direct", *(args.only or TARGETS)}
    results = [Results(t) for t in TARGETS]
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.alarm(int(s.budget_s))
    started = time.monotonic()
    other_load: float | None = None
    try:
        with contextlib.ExitStack() as stack:
            upstreams = stack.enter_context(upstream_process())
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            for r in results:
                if r.target not in wanted:
                    r.note = "left out (--only)"
                elif r.target == "direct":
                    r.echo, r.sink, r.http = upstreams.echo, upstreams.sink, upstreams.http
                    r.available = True
                    r.note = "no proxy: the ceiling of this load generator and upstream"
                else:
                    start_proxied(r, upstreams, stack, log_dir)
            load = SystemLoad()
            ours_before = _our_cpu_s()
            measure_all(results, upstreams, s)
            other_load = load.others(_our_cpu_s() - ours_before)
    except BenchTimeout as exc:
        progress(f"{exc} ({s.budget_s:g}s): the figures so far follow")
    except KeyboardInterrupt:
        progress("interrupted: every server was stopped")
        return 130
    finally:
        signal.alarm(0)
    print(render(results, s, args.quick, other_load))
    print(f"\n(took {time.monotonic() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
