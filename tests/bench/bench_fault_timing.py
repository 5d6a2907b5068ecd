"""How far from its schedule each fault comes into force, and is lifted, in a real run.

Run by hand, never as a timed test::

    flock /tmp/harness-load.lock python tests/bench/bench_fault_timing.py
    python tests/bench/bench_fault_timing.py --cycles 12 --users 60 --base-port 27000
    python tests/bench/bench_fault_timing.py --run-dir reports/bench-fault-timing-...  # re-read

It writes a scenario of ``--cycles`` rounds, each round one fault of every family: a latency
toxic on ``app-db`` (toxic), an ``http-abort`` on ``lb-app-3`` (HTTP fault), a SIGKILL of
``app-1`` or ``app-2`` in turns (kill: an instance restarting under load may take more than a
round to answer again) and a SIGSTOP of ``app-3`` (pause), staggered within the round, under
one steady phase of ``--users`` shop users, and runs it with ``harness run`` on a local stack of
its own (ports from ``--base-port``, state in a temporary directory, brought down at the end).
Each fault has two edges: its injection (due at ``at``) and its revert (due at ``at + for``).

The skew of an edge is measured from the run store, against the scenario (not against what the
timeline says it scheduled): the time the load's clock started (``load_started_at``) plus the
edge's offset is when it was due; the ``fault_injected`` or ``fault_reverted`` event's time is
when the fault was in force (or lifted): after the API call or the signal returned. A kill's
revert is recorded once the instance answers its health check again, seconds later by design;
its edge is the time the restart *started* (the event's ``started_at``), when the run recorded
one. Also printed: the load's CPU use while it ran, as a note of how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.record import EventKind
from harness.record.store import RunDir

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "scenarios" / "shop_locustfile.py"
CYCLE_S = 5.0
LEAD_S = 3.0  # the users come up before the first fault
FAULT_FOR_S = 1.0
# family: (action, targets taken in turns, offset in the cycle, extra scenario lines)
FAMILIES: dict[str, tuple[str, tuple[str, ...], float, str]] = {
    "toxic": ("toxic", ("app-db",), 0.0, "params: {type: latency, latency: 20, jitter: 5}"),
    "http": ("http-abort", ("lb-app-3",), 1.1, "params: {path_prefix: /products}"),
    "kill": ("kill", ("app-1", "app-2"), 2.3, ""),
    "pause": ("pause", ("app-3",), 3.6, ""),
}
_RUN_DIR = re.compile(r"(\S*bench-fault-timing-\S+)")


@dataclass(frozen=True)
class Edge:
    family: str
    fault: str
    edge: str  # inject | revert
    due: float  # unix seconds
    at: float | None  # unix seconds; None: never recorded

    @property
    def skew_ms(self) -> float | None:
        return None if self.at is None else (self.at - self.due) * 1000.0


def scenario_text(cycles: int, users: int) -> str:
    total = LEAD_S + cycles * CYCLE_S + 2.0
    lines = [
        "name: bench-fault-timing",
        "stack:",
        "  kind: local",
        "load:",
        f"  locustfile: {LOCUSTFILE}",
        "  user_classes: [ShopUser]",
        "  phases:",
        f"    - {{name: steady, duration: {total:g}s, users: {users}, spawn_rate: {users}}}",
        "faults:",
    ]
    for cycle in range(cycles):
        for family, (action, targets, offset, extra) in FAMILIES.items():
            at = LEAD_S + cycle * CYCLE_S + offset
            lines += [
                f"  - name: {family}-{cycle:02d}",
                f"    action: {action}",
                f"    target: {targets[cycle % len(targets)]}",
                f"    at: {at:g}s",
                f"    for: {FAULT_FOR_S:g}s",
            ]
            if extra:
                lines.append(f"    {extra}")
    # Faults overlap other faults on purpose (timing, not recovery, is measured): no SLO judges.
    lines += ["slos:", '  - {name: some-answers, expr: "count(status == 200) >= 0"}']
    return "\n".join(lines) + "\n"


def edges_of(run: RunDir, scenario: dict[str, object]) -> list[Edge]:
    t0 = float(run.meta["load_started_at"])
    faults = scenario.get("faults")
    due: dict[str, tuple[float, float]] = {}
    for fault in faults if isinstance(faults, list) else []:
        at, for_ = _seconds(fault["at"]), _seconds(fault["for"])
        due[str(fault["name"])] = (t0 + at, t0 + at + for_)
    seen: dict[tuple[str, str], float] = {}
    for event in run.events():
        if event.kind is EventKind.FAULT_INJECTED:
            seen.setdefault((event.name, "inject"), event.t)
        elif event.kind is EventKind.FAULT_REVERTED:
            at = event.t
            started = event.detail.get("started_at")
            if event.name.startswith("kill-") and isinstance(started, (int, float)):
                at = float(started)
            seen.setdefault((event.name, "revert"), at)
    edges = []
    for name, (inject_due, revert_due) in due.items():
        family = name.rsplit("-", 1)[0]
        edges.append(Edge(family, name, "inject", inject_due, seen.get((name, "inject"))))
        edges.append(Edge(family, name, "revert", revert_due, seen.get((name, "revert"))))
    return edges


def _seconds(value: object) -> float:
    text = str(value).strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000.0
    return float(text[:-1]) if text.endswith("s") else float(text)


def table(edges: Iterable[Edge]) -> list[str]:
    rows = [f"{'family':<7} {'edge':<7} {'n':>3} {'min ms':>8} {'median ms':>10} {'max ms':>8}"]
    edges = list(edges)
    for family in FAMILIES:
        for edge in ("inject", "revert", "both"):
            picked = [e for e in edges if e.family == family and edge in ("both", e.edge)]
            skews = [s for e in picked if (s := e.skew_ms) is not None]
            missing = len(picked) - len(skews)
            if not skews:
                rows.append(f"{family:<7} {edge:<7} {0:>3} {'-':>8} {'-':>10} {'-':>8}")
                continue
            line = (
                f"{family:<7} {edge:<7} {len(skews):>3} {min(skews):>8.1f} "
                f"{statistics.median(skews):>10.1f} {max(skews):>8.1f}"
            )
            rows.append(line + (f"  ({missing} never recorded)" if missing else ""))
    return rows


def _cpu_seconds() -> float:
    """CPU seconds used by the whole machine so far (user + system + nice), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = sum(int(x) for x in fields[:3]) + sum(int(x) for x in fields[5:8])
    return ticks / os.sysconf("SC_CLK_TCK")


def _ports(base: int) -> list[str]:
    return [
        "--entry-port", str(base),
        "--toxiproxy-port", str(base + 1),
        "--postgres-port", str(base + 2),
        "--app-db-proxy-port", str(base + 3),
        "--app-ports", f"{base + 4},{base + 5},{base + 6}",
        "--lb-proxy-ports", f"{base + 7},{base + 8},{base + 9}",
    ]  # fmt: skip


def run_scenario(args: argparse.Namespace, work: Path) -> Path:
    scenario = work / "bench_fault_timing.yaml"
    scenario.write_text(scenario_text(args.cycles, args.users))
    state = work / "state"
    reports = work / "reports" if args.reports is None else args.reports
    command = [sys.executable, "-m", "harness", "run", str(scenario), "--workers", "1"]
    command += ["--state-dir", str(state), "--reports", str(reports), *_ports(args.base_port)]
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    try:
        # Run from the work directory, so a PYTHONPATH given (a snapshot of the harness to
        # compare with) wins over the checkout in the current directory.
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=work)
    finally:
        down = [sys.executable, "-m", "harness", "down", "--state-dir", str(state)]
        subprocess.run(down, capture_output=True, check=False, cwd=work)
    busy = (_cpu_seconds() - cpu0) / (time.monotonic() - wall0) / (os.cpu_count() or 1)
    print(f"harness run exit {done.returncode}; machine CPU busy {busy:.0%} over the run")
    found = _RUN_DIR.findall(done.stdout + done.stderr)
    if not found:
        sys.exit(f"bench_fault_timing: no run directory in the output:\n{done.stderr[-2000:]}")
    return Path(found[-1].rstrip(".,"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10, help="faults of each family (10)")
    parser.add_argument("--users", type=int, default=60, help="shop users (60)")
    parser.add_argument("--base-port", type=int, default=27000, help="10 ports from here")
    parser.add_argument("--reports", type=Path, default=None, help="keep the run directory here")
    parser.add_argument("--run-dir", type=Path, default=None, help="re-read a run, run nothing")
    args = parser.parse_args()
    if args.cycles < 1 or args.users < 1:
        print("bench_fault_timing: --cycles and --users must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-fault-timing-") as tmp:
        run_dir = args.run_dir or run_scenario(args, Path(tmp))
        run = RunDir.open(run_dir)
        scenario = run.meta.get("scenario")
        edges = edges_of(run, scenario if isinstance(scenario, dict) else {})
        print(f"run directory: {run_dir}")
        print("skew = in force (or lifted) minus due, against the scenario's schedule")
        print("\n".join(table(edges)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
