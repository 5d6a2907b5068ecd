"""Run one scenario N times on a stack and count the passes: is a gate flaky?

    python tests/bench/repeat_scenario.py scenarios/ci_gate.yaml -n 10
    python tests/bench/repeat_scenario.py scenarios/flash_sale.yaml -n 5 --stack compose \\
        --project h6 --lock /tmp/harness-load.lock
    python tests/bench/repeat_scenario.py scenarios/ci_gate.yaml -n 3 -- --workers 2
    python tests/bench/repeat_scenario.py --tally results.jsonl

Each run is a real ``harness run`` in a subprocess (arguments after ``--`` go to it unchanged);
its verdict is read from the run directory's ``summary.json``. One line per run as it ends, then
the pass count and, for every run that did not pass, its exit code and each failed SLO with the
value observed against its threshold. ``--lock FILE`` (or ``$HARNESS_LOAD_LOCK``) takes an
exclusive ``flock`` on FILE around each run (not around the whole series), so other work sharing
the machine can interleave between runs. ``--results FILE`` appends one JSON line per run, so
series run in separate commands can be added up with ``--tally FILE``.

A failure on a starved machine is not the service's: each run line says how busy the machine's
CPUs were while the run held the lock (``/proc/stat``, everyone's work, not only ours) and whether
Locust warned that its own process ran above 90% CPU, so a tally can tell the two apart.

Exit 0 when every run passed, 1 when one did not, 2 for bad arguments. Ctrl-C stops the running
``harness run`` with SIGINT (it reverts its faults) and prints what was counted so far.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.testing.results import slo_line

# `harness run` prints its run directory on a line of its own, first as soon as it exists.
_RUN_DIR = re.compile(r"^(?:harness: )?run [a-z_ -]+: (/\S+|\S+/\S+)")
# A run that overruns its scenario by this much is stopped (SIGINT, so faults are reverted).
_OVERRUN_S = 300.0


@dataclass
class RunResult:
    """One run: its exit code, its run directory (None if none was made), the SLOs that failed
    as printable lines, and why there is no verdict when there is none."""

    index: int
    exit_code: int
    seconds: float
    run_dir: str | None
    failed: list[str] = field(default_factory=list)
    problem: str | None = None
    host_busy: float | None = None
    """Share of the machine's CPU time that was busy during the run (None: no /proc/stat)."""
    locust_cpu_warning: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.failed and self.problem is None


def _failed_slos(summary: dict[str, object]) -> list[str]:
    lines = []
    slos = summary.get("slos")
    for slo in slos if isinstance(slos, list) else []:
        if not isinstance(slo, dict) or slo.get("passed", True):
            continue
        # The same words as the harness's own summary lines, in the unit the SLO was written in.
        lines.append(f"{slo_line(slo)} ({slo.get('detail', '')})")
    return lines


def _run_dir(output: str) -> str | None:
    found = None
    for line in output.splitlines():
        match = _RUN_DIR.match(line.strip())
        if match:
            found = match.group(1).strip()
    return found


# Locust's own words when its process ran above 90% CPU (the load generator was starved).
_LOCUST_CPU_WARNING = re.compile(r"CPU usage (above|was too high|threshold was exceeded)")


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of every CPU since boot, or None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


@contextlib.contextmanager
def _locked(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "harness", "run", str(args.scenario)]
    command += ["--stack", args.stack, "--reports", str(args.reports_dir)]
    if args.state_dir is not None:
        command += ["--state-dir", str(args.state_dir)]
    if args.project is not None:
        command += ["--project", args.project]
    return command + list(args.harness_args)


def run_once(index: int, args: argparse.Namespace, budget_s: float) -> RunResult:
    started = time.monotonic()
    with _locked(args.lock):
        cpu_before = _cpu_times()
        process = subprocess.Popen(
            _command(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches it through us only, as one SIGINT
        )
        try:
            output, _ = process.communicate(timeout=budget_s)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate()
            output += f"\nrepeat_scenario: stopped after {budget_s:.0f}s\n"
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            process.communicate()
            raise
        host_busy = _busy_share(cpu_before, _cpu_times())
    seconds = time.monotonic() - started
    if args.log_dir is not None:
        (args.log_dir / f"run-{index:03d}.log").write_text(output)
    run_dir = _run_dir(output)
    result = RunResult(index, process.returncode, seconds, run_dir, host_busy=host_busy)
    result.locust_cpu_warning = bool(_LOCUST_CPU_WARNING.search(output))
    summary_path = Path(run_dir) / "summary.json" if run_dir else None
    if summary_path is None or not summary_path.is_file():
        tail = " | ".join(output.strip().splitlines()[-3:])
        result.problem = f"no summary.json (exit {process.returncode}): {tail[:300]}"
        return result
    summary = json.loads(summary_path.read_text())
    result.failed = _failed_slos(summary)
    if process.returncode != 0 and not result.failed:
        result.problem = f"exit {process.returncode}, outcome {summary.get('outcome')}"
    return result


def _machine(result: RunResult) -> str:
    """How busy the machine was during the run, in a few words."""
    words = []
    if result.host_busy is not None:
        words.append(f"CPUs {result.host_busy:.0%} busy")
    if result.locust_cpu_warning:
        words.append("Locust warned of CPU > 90%")
    return ", ".join(words)


def _print_run(result: RunResult, total: int) -> None:
    verdict = "PASS" if result.passed else "FAIL"
    machine = _machine(result)
    print(
        f"run {result.index}/{total}: {verdict} exit {result.exit_code} in {result.seconds:.0f}s"
        f"{f' ({machine})' if machine else ''}  {result.run_dir or ''}",
        flush=True,
    )


def print_tally(results: Sequence[RunResult], label: str) -> None:
    passed = sum(1 for r in results if r.passed)
    print(f"\n{label}: {passed} of {len(results)} runs passed")
    for result in results:
        if result.passed:
            continue
        print(f"  run {result.index} (exit {result.exit_code}) {result.run_dir or ''}")
        if _machine(result):
            print(f"    machine: {_machine(result)}")
        if result.problem:
            print(f"    {result.problem}")
        for line in result.failed:
            print(f"    FAIL {line}")


def _scenario_length_s(path: Path) -> float:
    """The scenario's load time, for the overrun budget (3 minutes if it cannot be read)."""
    try:
        from harness.scenario import load_scenario

        return sum(p.duration for p in load_scenario(path).load.phases)
    except Exception:  # an unreadable scenario fails in `harness run` itself, with its own error
        return 180.0


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("scenario", type=Path, nargs="?")
    parser.add_argument("-n", type=int, default=10, help="how many runs (default 10)")
    parser.add_argument("--stack", choices=["local", "compose"], default="local")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--project", default=None, help="compose project name")
    parser.add_argument(
        "--lock",
        type=Path,
        default=os.environ.get("HARNESS_LOAD_LOCK") or None,
        help="flock this file around each run (default: $HARNESS_LOAD_LOCK, else none)",
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="keep each run's output here")
    parser.add_argument("--results", type=Path, default=None, help="append a JSON line per run")
    parser.add_argument("--tally", type=Path, default=None, help="only count a --results file")
    # Split by hand: argparse cannot give a list positional what follows `--` once the scenario
    # (another positional) was matched before the options.
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.harness_args = argv[cut + 1 :]
    if args.tally is None and args.scenario is None:
        parser.error("a scenario is required (or --tally FILE)")
    if args.n < 1:
        parser.error(f"-n: at least one run, not {args.n}")
    return args


def _tally_file(path: Path) -> int:
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"repeat_scenario: --tally {path}: {exc}", file=sys.stderr)
        return 2
    by_scenario: dict[str, list[RunResult]] = {}
    for row in rows:
        scenario = row.pop("scenario", "?")
        results = by_scenario.setdefault(scenario, [])
        row["index"] = len(results) + 1
        results.append(RunResult(**row))
    for scenario, results in by_scenario.items():
        print_tally(results, scenario)
    return 0 if all(r.passed for rs in by_scenario.values() for r in rs) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.tally is not None:
        return _tally_file(args.tally)
    if not args.scenario.is_file():
        print(f"repeat_scenario: scenario {args.scenario}: no such file", file=sys.stderr)
        return 2
    args.reports_dir.mkdir(parents=True, exist_ok=True)
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    budget_s = _scenario_length_s(args.scenario) + _OVERRUN_S
    results: list[RunResult] = []
    try:
        for index in range(1, args.n + 1):
            result = run_once(index, args, budget_s)
            results.append(result)
            _print_run(result, args.n)
            if args.results is not None:
                row = {"scenario": f"{args.scenario} on {args.stack}", **asdict(result)}
                with args.results.open("a") as out:
                    out.write(json.dumps(row) + "\n")
    except KeyboardInterrupt:
        print("\nrepeat_scenario: interrupted", file=sys.stderr)
    print_tally(results, f"{args.scenario} on {args.stack}")
    return 0 if results and all(r.passed for r in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
