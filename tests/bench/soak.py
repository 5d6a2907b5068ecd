"""Soak: does any harness process grow over a long run, and does the embedded proxy leak fds?

    python tests/bench/soak.py                    # 30 minutes of load, then the proxy churn
    python tests/bench/soak.py --minutes 2        # a quick check (about 4 minutes in all)
    python tests/bench/soak.py --only proxy       # the proxy churn alone (about a minute)
    python tests/bench/soak.py --only run --minutes 30 --interval 10

Two parts (tests/bench/README.md says what each figure is):

``run``: a real ``harness run`` of a generated scenario on a local stack of its own (free ports,
a temporary state directory, the embedded Toxiproxy unless ``--toxiproxy real``): one steady
phase of ``--users`` shop users on one Locust worker for ``--minutes``, with faults coming and
going every two minutes (the database link slowed by a latency toxic, app-3 killed and brought
back, maintenance mode). Every ``--interval`` seconds it reads the RSS (psutil) of every process
(``harness run``, the Locust master and worker, the embedded Toxiproxy, Caddy, the three shop
instances, PostgreSQL with its backends). At the end a table: per process, RSS after warm-up, at
the end of the load, the peak, and the least-squares slope after warm-up in MB per 10 minutes;
"flat" when the slope is at most ``--max-slope``. Exit 1 when a harness process (CLI, master,
worker, embedded Toxiproxy) is not flat; the stack's own processes are shown, not judged (the
shop and PostgreSQL are the system under test, and app-3 is killed on purpose).

``proxy``: ``--connections`` TCP connections (default 20 000, ``--concurrency`` at a time)
opened through one proxy of the embedded server to an echo server, each sending 1-16 KiB and
reading it back, some closed half-way or reset; meanwhile toxics (latency, slicer, bandwidth,
slow_close, timeout, limit_data, reset_peer) are added and removed on the live proxy. It counts
the proxy process's open file descriptors (/proc/PID/fd) and RSS before, during (the peak) and
after, in rounds; exit 1 when the descriptors do not come back to the baseline.

Bounded in time: the run part stops ``harness run`` (SIGINT: it reverts its faults) if it overruns
by five minutes; every socket operation of the churn times out after 10 s. Ctrl-C stops what
was started (``harness run`` reverts its faults, then the stack is brought down), by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_stats import (  # the sibling module, next to this script
    DEFAULT_MAX_SLOPE_MB_PER_10MIN,
    MB,
    NOISE_MB,
    Sample,
    Trend,
    fds_returned,
    trend,
    warmup_seconds,
)

from harness.proxy.client import ToxiproxyClient
from harness.proxy.launcher import running_toxiproxy
from harness.stack.ports import StackPorts

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "scenarios" / "shop_locustfile.py"
FAULT_CYCLE_S = 120
# Processes of the harness itself: judged. The stack's: shown.
HARNESS_ROLES = ("harness run", "locust master", "locust worker", "toxiproxy")


def say(line: str) -> None:
    print(f"soak: {line}", file=sys.stderr, flush=True)


# --- the run part ------------------------------------------------------------------------------


def scenario_yaml(minutes: float, users: int) -> dict[str, object]:
    """A steady phase with faults every FAULT_CYCLE_S seconds, each over before the run ends."""
    total = int(minutes * 60)
    faults: list[dict[str, object]] = []
    for k, start in enumerate(range(0, total, FAULT_CYCLE_S)):
        # (name, at, for, the rest): each fault ends 5 s before the run at the latest.
        cycle: list[tuple[str, int, int, dict[str, object]]] = [
            (
                f"slow-db-{k}",
                start + 20,
                15,
                {
                    "action": "toxic",
                    "target": "app-db",
                    "params": {"type": "latency", "latency": 40, "jitter": 10},
                },
            ),
            (f"kill-app-3-{k}", start + 50, 10, {"action": "kill", "target": "app-3"}),
            (f"maintenance-{k}", start + 80, 5, {"action": "maintenance"}),
        ]
        for name, at, length, rest in cycle:
            if at + length + 5 <= total:
                faults.append({"name": name, "at": f"{at}s", "for": f"{length}s", **rest})
    return {
        "name": "soak",
        "description": f"{minutes:g} minutes of steady load with faults coming and going",
        "stack": {"kind": "local"},
        "load": {
            "locustfile": str(LOCUSTFILE),
            "user_classes": ["ShopUser"],
            "workers": 1,
            "phases": [
                {"name": "steady", "duration": f"{total}s", "users": users, "spawn_rate": 10}
            ],
        },
        "faults": faults,
        "slos": [{"name": "no-500s", "expr": "count(status == 500) == 0"}],
    }


def stack_env(ports: StackPorts, state_dir: Path, toxiproxy: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "SHOP_"))}
    return {
        **clean,
        "HARNESS_STATE_DIR": str(state_dir),
        "HARNESS_UP_ENTRY_PORT": str(ports.entry),
        "HARNESS_UP_TOXIPROXY_PORT": str(ports.toxiproxy_api),
        "HARNESS_UP_POSTGRES_PORT": str(ports.postgres),
        "HARNESS_UP_APP_DB_PROXY_PORT": str(ports.app_db_proxy),
        "HARNESS_UP_APP_PORTS": ",".join(map(str, ports.apps)),
        "HARNESS_UP_LB_PROXY_PORTS": ",".join(map(str, ports.lb_proxies)),
        "HARNESS_UP_CADDY_ADMIN_PORT": str(ports.caddy_admin),
        "HARNESS_UP_TOXIPROXY": toxiproxy,
        # Faults heal quickly and maintenance asks clients to wait only a little.
        "HARNESS_UP_APP_ENV": "SHOP_DB_TIMEOUT_MS=500 SHOP_MAINTENANCE_RETRY_AFTER_S=2",
    }


@dataclass
class Series:
    """The RSS readings of one named process (a new PID is a restart)."""

    name: str
    role: str
    samples: list[Sample] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    sample_pids: list[int] = field(default_factory=list)


def _rss(proc: psutil.Process, with_children: bool) -> int:
    rss = proc.memory_info().rss
    if with_children:
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss += child.memory_info().rss
    return rss


def stack_processes(state_dir: Path) -> dict[str, tuple[str, int]]:
    """name -> (role, pid) from the stack's state file (re-read: a killed app comes back)."""
    try:
        data = json.loads((state_dir / "stack.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(p["name"]): (str(p["role"]), int(p["pid"])) for p in data.get("processes", ())}


def harness_processes(run_pid: int) -> dict[str, tuple[str, int]]:
    found = {"harness run": ("harness run", run_pid)}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(run_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(child.cmdline())
                if "harness.load.master" in cmd:
                    found["locust master"] = ("locust master", child.pid)
                elif "harness.load.worker" in cmd:
                    n = sum(1 for k in found if k.startswith("locust worker"))
                    found[f"locust worker {n + 1}"] = ("locust worker", child.pid)
    return found


class Sampler(threading.Thread):
    """Reads every process's RSS every ``interval`` seconds until stopped."""

    def __init__(self, run_pid: int, state_dir: Path, interval: float, started: float) -> None:
        super().__init__(daemon=True)
        self.run_pid, self.state_dir, self.interval, self.started = (
            run_pid,
            state_dir,
            interval,
            started,
        )
        self.series: dict[str, Series] = {}
        self.stop = threading.Event()
        self.load_ended_at: float | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)

    def sample(self) -> None:
        t = time.monotonic() - self.started
        procs = {**harness_processes(self.run_pid), **stack_processes(self.state_dir)}
        if "locust master" in procs:
            # The load runs as long as the master does; after it, the CLI judges and writes
            # the report, which is a burst, not growth.
            self.load_ended_at = t
        for name, (role, pid) in procs.items():
            if role == "toxiproxy":
                name = "toxiproxy"
            try:
                # PostgreSQL is a postmaster and its backends: counted together.
                rss = _rss(psutil.Process(pid), with_children=name == "postgres")
            except psutil.Error:
                continue  # gone between the listing and the reading (a killed app-3)
            series = self.series.setdefault(name, Series(name, role))
            if not series.pids or series.pids[-1] != pid:
                series.pids.append(pid)
            series.samples.append(Sample(t, rss))
            series.sample_pids.append(pid)


@dataclass(frozen=True)
class RunResult:
    series: dict[str, Series]
    warmup_s: float
    load_end_s: float
    exit_code: int
    report_line: str


def soak_run(minutes: float, users: int, interval: float, toxiproxy: str) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="harness-soak-") as tmp:
        base = Path(tmp)
        state_dir = base / "state"
        scenario = base / "soak.yaml"
        scenario.write_text(json.dumps(scenario_yaml(minutes, users), indent=2), encoding="utf-8")
        env = stack_env(StackPorts.free(), state_dir, toxiproxy)
        harness = [sys.executable, "-m", "harness"]
        say(f"starting a local stack in {state_dir} ({toxiproxy} Toxiproxy)")
        up = subprocess.run([*harness, "up"], env=env, capture_output=True, text=True, check=False)
        if up.returncode != 0:
            raise SystemExit(f"soak: harness up failed ({up.returncode}):\n{up.stderr}")
        try:
            return _play(harness, scenario, base, env, state_dir, minutes, interval)
        finally:
            say("stopping the stack")
            subprocess.run([*harness, "down", "--purge"], env=env, capture_output=True, check=False)


def _play(
    harness: list[str],
    scenario: Path,
    base: Path,
    env: dict[str, str],
    state_dir: Path,
    minutes: float,
    interval: float,
) -> RunResult:
    started = time.monotonic()
    log = (base / "run.log").open("wb")
    run = subprocess.Popen(
        [*harness, "run", str(scenario), "--reports", str(base / "reports")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    sampler = Sampler(run.pid, state_dir, interval, started)
    sampler.start()
    say(f"harness run (pid {run.pid}) for {minutes:g} min, RSS every {interval:g}s")
    budget = minutes * 60 + 300
    try:
        while run.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > budget:
                say("harness run overran its budget; interrupting it (it reverts its faults)")
                run.send_signal(signal.SIGINT)
                run.wait(timeout=120)
                break
            time.sleep(1)
    except KeyboardInterrupt:
        say("interrupted: stopping harness run (it reverts its faults)")
        run.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=120)
        if run.poll() is None:
            run.kill()
        raise
    finally:
        sampler.stop.set()
        sampler.join()
        log.close()
    text = (base / "run.log").read_text(encoding="utf-8", errors="replace")
    # The verdict table and the run's last line: what the run itself concluded.
    report = "\n".join(
        ln for ln in text.splitlines() if not ln.startswith("harness: ") and ln.strip()
    )
    if run.returncode not in (0, 1):
        say(f"harness run exited {run.returncode}; its output:\n{text[-3000:]}")
    load_end = sampler.load_ended_at or (time.monotonic() - started)
    return RunResult(
        sampler.series, warmup_seconds(minutes * 60), load_end, run.returncode or 0, report
    )


def save_result(result: RunResult, path: Path) -> None:
    data = {
        "warmup_s": result.warmup_s,
        "load_end_s": result.load_end_s,
        "exit_code": result.exit_code,
        "report_line": result.report_line,
        "series": [
            {
                "name": s.name,
                "role": s.role,
                "pids": s.pids,
                "samples": [
                    [x.t, x.rss, pid] for x, pid in zip(s.samples, s.sample_pids, strict=True)
                ],
            }
            for s in result.series.values()
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")


def load_result(path: Path) -> RunResult:
    data = json.loads(path.read_text(encoding="utf-8"))
    series = {}
    for item in data["series"]:
        s = Series(item["name"], item["role"], pids=list(item["pids"]))
        for t, rss, pid in item["samples"]:
            s.samples.append(Sample(t, rss))
            s.sample_pids.append(pid)
        series[s.name] = s
    return RunResult(
        series, data["warmup_s"], data["load_end_s"], data["exit_code"], data["report_line"]
    )


def render_run(result: RunResult, max_slope: float) -> tuple[str, bool]:
    lines = [
        f"RSS of every process: warm-up {result.warmup_s:.0f}s, load until "
        f"{result.load_end_s:.0f}s, flat = slope <= {max_slope:g} MB per 10 min",
        f"{'process':<16} {'pids':>4} {'warm MB':>8} {'end MB':>8} {'peak MB':>8} "
        f"{'MB/10min':>9} {'n':>4}  verdict",
    ]
    ok = True
    order = sorted(result.series.values(), key=lambda s: (s.role not in HARNESS_ROLES, s.name))
    for s in order:
        # A restarted process (app-3, killed on purpose) is shown over its last life only.
        during = [
            x
            for x, pid in zip(s.samples, s.sample_pids, strict=True)
            if x.t <= result.load_end_s and pid == s.pids[-1]
        ]
        tr: Trend | None = trend(during, result.warmup_s if len(s.pids) == 1 else 0.0)
        if tr is None:
            lines.append(f"{s.name:<16} {len(s.pids):>4}  (no samples after warm-up)")
            continue
        judged = s.role in HARNESS_ROLES
        flat = tr.flat(max_slope)
        if judged and not flat:
            ok = False
        verdict = ("flat" if flat else "GROWING") + ("" if judged else " (stack, not judged)")
        if len(s.pids) > 1:
            verdict += f"; restarted {len(s.pids) - 1}x, last life only"
        lines.append(
            f"{s.name:<16} {len(s.pids):>4} {tr.warm_rss_mb:>8.1f} {tr.end_rss_mb:>8.1f} "
            f"{tr.peak_rss_mb:>8.1f} {tr.slope_mb_per_10min:>+9.2f} {tr.samples:>4}  {verdict}"
        )
    cli = result.series.get("harness run")
    if cli is not None:
        after = [x.rss for x in cli.samples if x.t > result.load_end_s]
        lines.append(
            f"(slope: least squares over the samples after warm-up; flat also when the fitted "
            f"growth is under {NOISE_MB:g} MB, below what RSS resolves on a short run)"
        )
        if after:
            lines.append(
                f"harness run while judging and writing the report: peak {max(after) / MB:.1f} MB"
            )
    lines.append(f"harness run exit code {result.exit_code}; its verdict:\n{result.report_line}")
    return "\n".join(lines), ok


# --- the proxy part ----------------------------------------------------------------------------


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


@dataclass
class ChurnCounts:
    done: int = 0
    echoed: int = 0
    cut: int = 0  # closed or reset by a toxic before the whole echo came back (expected)
    timeouts: int = 0


async def _one_connection(port: int, rng: random.Random, counts: ChurnCounts) -> None:
    size = rng.randint(1024, 16384)
    payload = rng.randbytes(size)
    way = rng.random()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        writer.write(payload)
        await writer.drain()
        if way < 0.1:  # leave half-way: close without reading the echo
            counts.cut += 1
            return
        got = await asyncio.wait_for(reader.readexactly(size), 10)
        if got == payload:
            counts.echoed += 1
        if way < 0.2:  # a reset instead of a clean close
            sock = writer.get_extra_info("socket")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        counts.cut += 1
    except TimeoutError:
        counts.timeouts += 1
    finally:
        counts.done += 1
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


LINGER_RESET = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # SO_LINGER on, 0 s: RST
TOXICS = [
    ("latency", {"latency": 5, "jitter": 2}, 1.0),
    ("slicer", {"average_size": 512, "size_variation": 128, "delay": 100}, 1.0),
    ("bandwidth", {"rate": 20000}, 1.0),
    ("slow_close", {"delay": 20}, 1.0),
    ("timeout", {"timeout": 100}, 0.05),
    ("limit_data", {"bytes": 4000}, 0.1),
    ("reset_peer", {"timeout": 0}, 0.05),
]


def _toggle_toxics(api: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """Add a random toxic, leave it a moment, remove it; again until stopped."""
    client = ToxiproxyClient(api)
    rng = random.Random(7)
    while not stop.is_set():
        kind, attributes, toxicity = rng.choice(TOXICS)
        stream = rng.choice(["upstream", "downstream"])
        name = f"{kind}_{stream}"
        client.add_toxic(
            "churn", kind, name=name, stream=stream, toxicity=toxicity, attributes=attributes
        )
        stop.wait(rng.uniform(0.03, 0.15))
        client.remove_toxic("churn", name)
        counts["toggled"] = counts.get("toggled", 0) + 1
        stop.wait(rng.uniform(0.01, 0.05))


async def _churn(port: int, n: int, concurrency: int, seed: int, counts: ChurnCounts) -> None:
    rng = random.Random(seed)
    sem = asyncio.Semaphore(concurrency)

    async def bounded() -> None:
        async with sem:
            await _one_connection(port, rng, counts)

    await asyncio.gather(*(bounded() for _ in range(n)))


@dataclass
class ProxyFigures:
    fd_baseline: int
    rss_baseline_mb: float
    rounds: list[
        tuple[int, int, int, float, float]
    ]  # connections, fd peak, fd after, rss peak, rss after
    counts: ChurnCounts
    toggled: int
    seconds: float
    still_serves: bool


def soak_proxy(connections: int, concurrency: int, rounds: int) -> ProxyFigures:
    with tempfile.TemporaryDirectory(prefix="harness-soak-proxy-") as tmp:
        loop = asyncio.new_event_loop()
        echo = loop.run_until_complete(loop.create_server(_Echo, "127.0.0.1", 0, backlog=1024))
        echo_port = echo.sockets[0].getsockname()[1]
        with running_toxiproxy(kind="embedded", log_file=Path(tmp) / "proxy.log") as server:
            client = ToxiproxyClient(server.api_url)
            proxy = client.create_proxy("churn", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
            port = proxy.listen_port
            proc = psutil.Process(server.pid)
            # One round trip first, so lazily created things (the proxy's first link) are in
            # the baseline, not counted as a leak.
            counts = ChurnCounts()
            loop.run_until_complete(_churn(port, 10, 1, 0, counts))
            time.sleep(0.5)
            fd0, rss0 = fd_count(server.pid), proc.memory_info().rss / MB
            say(f"proxy pid {server.pid}: {fd0} fds, {rss0:.1f} MB before the churn")
            counts = ChurnCounts()
            stop = threading.Event()
            toggles: dict[str, int] = {}
            toggler = threading.Thread(
                target=_toggle_toxics, args=(server.api_url, stop, toggles), daemon=True
            )
            toggler.start()
            per_round = connections // rounds
            figures: list[tuple[int, int, int, float, float]] = []
            started = time.monotonic()
            try:
                for r in range(rounds):
                    peak_fd, peak_rss = fd0, rss0
                    task = loop.create_task(_churn(port, per_round, concurrency, r + 1, counts))
                    while not task.done():
                        loop.run_until_complete(asyncio.wait([task], timeout=0.25))
                        peak_fd = max(peak_fd, fd_count(server.pid))
                        peak_rss = max(peak_rss, proc.memory_info().rss / MB)
                    task.result()
                    after_fd = _settled_fds(server.pid, fd0)
                    figures.append(
                        (per_round, peak_fd, after_fd, peak_rss, proc.memory_info().rss / MB)
                    )
                    say(f"round {r + 1}/{rounds}: fds peak {peak_fd}, after {after_fd}")
            finally:
                stop.set()
                toggler.join(timeout=10)
            seconds = time.monotonic() - started
            # Every toxic is gone now; the proxy must still carry a connection end to end.
            check = ChurnCounts()
            loop.run_until_complete(_churn(port, 5, 1, 99, check))
            still = check.echoed == 5 and not client.toxics("churn")
        echo.close()
        loop.run_until_complete(echo.wait_closed())
        loop.close()
    return ProxyFigures(fd0, rss0, figures, counts, toggles.get("toggled", 0), seconds, still)


def _settled_fds(pid: int, baseline: int, wait_s: float = 15.0) -> int:
    """The fd count once closing connections are done (slow_close may hold one 20 ms)."""
    deadline = time.monotonic() + wait_s
    count = fd_count(pid)
    while count > baseline and time.monotonic() < deadline:
        time.sleep(0.25)
        count = fd_count(pid)
    return count


def render_proxy(f: ProxyFigures) -> tuple[str, bool]:
    total = sum(r[0] for r in f.rounds)
    c = f.counts
    lines = [
        f"embedded proxy: {total} connections in {f.seconds:.1f}s "
        f"({total / f.seconds:.0f}/s), {f.toggled} toxics added and removed meanwhile",
        f"  echoed whole {c.echoed}, cut short {c.cut} (closed early on purpose or by a "
        f"toxic), timed out {c.timeouts}",
        f"{'round':<6} {'conns':>6} {'fds before':>10} {'fds peak':>9} {'fds after':>10} "
        f"{'RSS before':>11} {'RSS peak':>9} {'RSS after':>10}",
    ]
    ok = True
    for i, (n, peak_fd, after_fd, peak_rss, after_rss) in enumerate(f.rounds, 1):
        back = fds_returned(f.fd_baseline, after_fd)
        ok = ok and back
        lines.append(
            f"{i:<6} {n:>6} {f.fd_baseline:>10} {peak_fd:>9} {after_fd:>10} "
            f"{f.rss_baseline_mb:>9.1f}MB {peak_rss:>7.1f}MB {after_rss:>8.1f}MB"
            + ("" if back else "  LEAK: fds above the baseline")
        )
    if len(f.rounds) > 1:
        # The first round warms the allocator and the proxy's caches; growth after it would be
        # memory kept per connection.
        grown = f.rounds[-1][4] - f.rounds[0][4]
        later = sum(r[0] for r in f.rounds[1:])
        lines.append(
            f"RSS after round 1 -> after round {len(f.rounds)}: {grown:+.1f} MB over {later} "
            f"more connections ({grown * MB / later:+.0f} bytes each)"
        )
    if not f.still_serves:
        ok = False
        lines.append("the proxy no longer carried a connection end to end after the churn")
    lines.append("fds back to the baseline after every round: " + ("yes" if ok else "NO (exit 1)"))
    return "\n".join(lines), ok


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the load phase")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--users", type=int, default=20, help="shop users during the run")
    parser.add_argument("--max-slope", type=float, default=DEFAULT_MAX_SLOPE_MB_PER_10MIN)
    parser.add_argument("--toxiproxy", choices=["embedded", "real", "auto"], default="embedded")
    parser.add_argument("--only", choices=["run", "proxy"], default=None)
    parser.add_argument(
        "--save", type=Path, default=None, help="write the run part's samples here (JSON)"
    )
    parser.add_argument(
        "--replay", type=Path, default=None, help="print the table of samples saved before"
    )
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    if args.minutes < 1:
        parser.error("--minutes: at least 1 (a fault cycle needs the time)")
    ok = True
    if args.replay is not None:
        text, run_ok = render_run(load_result(args.replay), args.max_slope)
        print(text, flush=True)
        return 0 if run_ok else 1
    if args.only in (None, "run"):
        result = soak_run(args.minutes, args.users, args.interval, args.toxiproxy)
        if args.save is not None:
            save_result(result, args.save)
        text, run_ok = render_run(result, args.max_slope)
        print(text, flush=True)
        ok = ok and run_ok
    if args.only in (None, "proxy"):
        figures = soak_proxy(args.connections, args.concurrency, max(1, args.rounds))
        text, proxy_ok = render_proxy(figures)
        print(text, flush=True)
        ok = ok and proxy_ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
