"""tests/bench/repeat_scenario.py: its arithmetic and parsing on inputs whose answer is known."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit


def _load() -> ModuleType:
    path = Path(__file__).parents[1] / "bench" / "repeat_scenario.py"
    spec = importlib.util.spec_from_file_location("repeat_scenario", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("repeat_scenario", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


repeat = _load()


def test_the_busy_share_is_busy_jiffies_over_all_jiffies() -> None:
    assert repeat._busy_share((100, 1000), (175, 1100)) == pytest.approx(0.75)
    assert repeat._busy_share((0, 0), (200, 200)) == 1.0


def test_no_busy_share_without_two_readings_or_time_between_them() -> None:
    assert repeat._busy_share(None, (1, 2)) is None
    assert repeat._busy_share((1, 2), None) is None
    assert repeat._busy_share((5, 10), (5, 10)) is None


def test_the_cpu_times_of_this_machine_are_consistent() -> None:
    times = repeat._cpu_times()
    if times is None:
        pytest.skip("no /proc/stat")
    busy, total = times
    assert 0 <= busy <= total


@pytest.mark.parametrize(
    "line",
    [
        "CPU usage above 90%! This may constrain your throughput and may even give inconsistent",
        "CPU usage was too high at some point during the test! See https://docs.locust.io/",
        "CPU usage threshold was exceeded on workers during the test!",
    ],
)
def test_locusts_cpu_warnings_are_recognised(line: str) -> None:
    assert repeat._LOCUST_CPU_WARNING.search(f"[2026-12-06 21:00:00] master/WARNING: {line}")


def test_other_lines_are_not_a_cpu_warning() -> None:
    assert not repeat._LOCUST_CPU_WARNING.search("PASS  cpu-bound  CPU 45%")


def test_the_run_directory_is_the_last_one_printed() -> None:
    output = "harness: run started: reports/a-1\nnoise\nrun completed: /tmp/r/ci-gate-2\n"
    assert repeat._run_dir(output) == "/tmp/r/ci-gate-2"
    assert repeat._run_dir("nothing here\n") is None


def test_the_lock_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_LOAD_LOCK", "/tmp/some.lock")
    assert repeat._parse(["s.yaml"]).lock == Path("/tmp/some.lock")
    monkeypatch.delenv("HARNESS_LOAD_LOCK")
    assert repeat._parse(["s.yaml"]).lock is None
    assert repeat._parse(["s.yaml", "--lock", "x.lock"]).lock == Path("x.lock")


def test_the_lock_is_held_around_the_block_and_released_after(tmp_path: Path) -> None:
    path = tmp_path / "load.lock"
    with repeat._locked(path), path.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with path.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again


def test_a_tally_counts_old_and_new_rows_and_names_a_starved_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        # A row from before host_busy existed still counts.
        {"scenario": "ci on compose", "exit_code": 0, "seconds": 50, "run_dir": "r/1"},
        {
            "scenario": "ci on compose",
            "exit_code": 1,
            "seconds": 55,
            "run_dir": "r/2",
            "failed": ["slow-db-recovers: 4s < 3s"],
            "host_busy": 0.99,
            "locust_cpu_warning": True,
        },
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert repeat.main(["--tally", str(results)]) == 1
    out = capsys.readouterr().out
    assert "ci on compose: 1 of 2 runs passed" in out
    assert "machine: CPUs 99% busy, Locust warned of CPU > 90%" in out
    assert "FAIL slow-db-recovers: 4s < 3s" in out
