"""`harness run` in the CLI process: overrides re-validated, faults refused where they cannot be
injected, a master that dies recorded as such, and signals forwarded once the master runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import (
    RunRequest,
    _settle,
    _Signals,
    check_faults_supported,
    judge,
    resolve_scenario,
    rollback_faults,
)
from harness.errors import BadInputError
from harness.rundir import RunDir, RunStatus

pytestmark = pytest.mark.unit


def scenario_file(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "lf.py").write_text("# users\n")
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: s
            load:
              locustfile: lf.py
              phases: [{name: a, duration: 1s, users: 1, spawn_rate: 1}]
            """
        )
        + extra
    )
    return path


def test_without_overrides_the_scenario_is_taken_as_written(tmp_path: Path) -> None:
    scenario = resolve_scenario(RunRequest(scenario_file(tmp_path)))
    assert (scenario.load.workers, scenario.stack.kind) == (0, "local")


def test_command_line_overrides_are_applied_and_validated_again(tmp_path: Path) -> None:
    path = scenario_file(tmp_path)
    scenario = resolve_scenario(RunRequest(path, workers=3))
    assert scenario.load.workers == 3
    with pytest.raises(BadInputError, match="entry_url: required for kind external"):
        resolve_scenario(RunRequest(path, stack="external"))


def test_faults_on_a_stack_the_harness_does_not_run_are_refused_up_front(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        textwrap.dedent(
            """\
            stack: {kind: external, entry_url: "http://127.0.0.1:1", toxiproxy_url: "http://127.0.0.1:2"}
            faults: [{name: cut, action: down, target: lb-app-1, at: 0s}]
            """
        ),
    )
    with pytest.raises(BadInputError, match="faults need a stack the harness runs"):
        check_faults_supported(resolve_scenario(RunRequest(path)))


def test_every_completed_run_passes_until_the_verdict_exists(tmp_path: Path) -> None:
    assert judge(RunDir.create(tmp_path, "s")) == 0


def finished(tmp_path: Path, status: RunStatus) -> RunDir:
    run = RunDir.create(tmp_path, "s")
    with run.writer() as writer:
        writer.finish(status, detail={"attempts": 5})
    return run


@pytest.mark.parametrize(
    ("status", "code"),
    [(RunStatus.COMPLETED, 0), (RunStatus.INTERRUPTED, 130), (RunStatus.CRASHED, 3)],
)
def test_a_run_the_master_finished_keeps_its_status(
    tmp_path: Path, status: RunStatus, code: int
) -> None:
    outcome = _settle(finished(tmp_path, status), 0, interrupted=False, state_dir=None, tell=print)
    assert (outcome.status, outcome.exit_code) == (status, code)
    assert outcome.detail["attempts"] == 5


@pytest.mark.parametrize(
    ("rc", "interrupted", "status", "code"),
    [
        (-9, False, RunStatus.CRASHED, 3),
        (None, False, RunStatus.CRASHED, 3),
        (2, False, RunStatus.CRASHED, 2),
        (-9, True, RunStatus.INTERRUPTED, 130),
    ],
)
def test_a_master_that_died_mid_run_is_recorded_by_the_cli(
    tmp_path: Path, rc: int | None, interrupted: bool, status: RunStatus, code: int
) -> None:
    run = RunDir.create(tmp_path, "s")  # no writer ever finished it: the master died
    outcome = _settle(run, rc, interrupted=interrupted, state_dir=None, tell=print)
    assert (outcome.status, outcome.exit_code) == (status, code)
    assert run.status is status
    assert "exited" in outcome.detail["error"]
    assert [e.kind.value for e in run.events()][-1] == "run_end"


def test_nothing_to_roll_back_without_a_journal(tmp_path: Path) -> None:
    assert rollback_faults(tmp_path, print)


def test_a_signal_before_the_master_runs_interrupts_the_cli() -> None:
    with _Signals(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)


def signal_catcher() -> subprocess.Popen[str]:
    """A child that exits 42 on SIGTERM, once it says it is ready for it."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    process = signal_catcher()
    yield process
    process.kill()
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


def test_a_signal_while_the_master_runs_is_forwarded_to_it(child: subprocess.Popen[str]) -> None:
    with _Signals() as signals:
        signals.forward_to(child)
        signal.raise_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 42
    assert signals.received == [signal.SIGTERM]


def test_a_signal_is_held_until_the_master_is_ready_for_it(child: subprocess.Popen[str]) -> None:
    ready = False
    with _Signals() as signals:
        signals.forward_to(child, ready=lambda: ready)
        signal.raise_signal(signal.SIGTERM)
        signals.deliver_held()
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.3)
        ready = True
        signals.deliver_held()
        assert child.wait(timeout=10) == 42
    assert signals.received == [signal.SIGTERM]
