"""`harness run` in the CLI process: overrides re-validated, faults refused where they cannot be
injected, a master that dies recorded as such, and signals forwarded once the master runs."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from harness.errors import BadInputError
from harness.record import EventKind, RunDir, RunStatus
from harness.record.buckets import Bucket
from harness.run.conclude import conclude
from harness.run.preflight import check_scenario, resolve_scenario
from harness.run.request import RunOutcome, RunRequest, ScenarioOverrides
from harness.run.settle import rollback_faults, settle
from harness.run.signals import Signals
from harness.run.stackup import check_faults_supported, scenario_stack
from harness.scenario import Scenario

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.
# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("plots_not_drawn")


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
    scenario = resolve_scenario(scenario_file(tmp_path))
    assert (scenario.load.workers, scenario.stack.kind) == (0, "local")


def test_command_line_overrides_are_applied_and_validated_again(tmp_path: Path) -> None:
    path = scenario_file(tmp_path)
    scenario = resolve_scenario(path, ScenarioOverrides(workers=3))
    assert scenario.load.workers == 3
    with pytest.raises(BadInputError, match="entry_url: required for kind external"):
        resolve_scenario(path, ScenarioOverrides(stack="external"))


def test_faults_on_a_stack_that_takes_none_are_refused_up_front(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        textwrap.dedent(
            """\
            stack: {kind: external, entry_url: "http://127.0.0.1:1", toxiproxy_url: "http://127.0.0.1:2"}
            faults: [{name: cut, action: down, target: lb-app-1, at: 0s}]
            """
        ),
    )
    scenario = resolve_scenario(path)
    stack = scenario_stack(scenario, RunRequest(state_dir=tmp_path))
    check_faults_supported(scenario, stack)  # an external stack journals its faults: taken
    no_journal = SimpleNamespace(kind="fake", journal_dir=None)
    with pytest.raises(BadInputError, match="faults need a stack the harness runs"):
        check_faults_supported(scenario, no_journal)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            'slos: ["ratio(status == 503) < 5 during phase a"]\n',
            "slos[0]: ratio(...) is a share at column 24 (write it with %, like 5%)",
        ),
        ('slos: ["count(status == 500) == 0 during phase b"]\n', 'unknown phase "b"'),
        ('guards: ["abort if ratio(status >= 500) > 50%"]\n', "guards[0]: unexpected end"),
        ('slos: ["recovery_time(kill-app-9) < 5s"]\n', 'slos[0]: unknown fault "kill-app-9"'),
    ],
)
def test_a_bad_slo_or_guard_is_refused_naming_the_file_and_the_place(
    tmp_path: Path, extra: str, message: str
) -> None:
    path = scenario_file(tmp_path, extra)
    with pytest.raises(BadInputError) as caught:
        check_scenario(resolve_scenario(path), path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


# --- the verdict at the end of a run ------------------------------------------------------------

T0 = 1_700_000_000.0

JUDGED = """\
slos:
  - {name: no-500s, expr: "count(status == 500) == 0"}
  - {name: available, expr: "availability >= 90% during phase a"}
guards: ["abort if ratio(status == 503) > 50% for 1s"]
"""


def recorded(
    tmp_path: Path, status: RunStatus, statuses: dict[int, int], *, breach: bool = False
) -> tuple[RunDir, Scenario]:
    """A run of the one-phase scenario ``a`` (1 s) with ``statuses`` in each of its buckets."""
    scenario = resolve_scenario(scenario_file(tmp_path, JUDGED))
    run = RunDir.create(tmp_path / "reports", "s", clock=lambda: T0 - 1)
    with run.writer(clock=lambda: T0 + 1) as writer:
        writer.set_scenario(scenario.to_dict())
        writer.set_meta("load_started_at", T0)
        writer.event(EventKind.PHASE_START, "a", {"index": 0}, t=T0)
        buckets = []
        for i in range(10):
            bucket = Bucket(round(T0 * 10) + i)
            bucket.statuses = dict(statuses)
            n = sum(statuses.values())
            bucket.latency.record(0.01, n)
            bucket.attempts = bucket.done = n
            buckets.append(bucket.to_dict())
        writer.upsert_buckets(buckets)
        if breach:
            writer.event(EventKind.GUARD_BREACH, "g", {"detail": "503s held for 1s"}, t=T0 + 1)
        writer.event(EventKind.PHASE_END, "a", {"index": 0}, t=T0 + 1)
        writer.finish(status)
    return run, scenario


def concluded(run: RunDir, scenario: Scenario, rc: int = 0) -> tuple[RunOutcome, str]:
    said: list[str] = []
    out = io.StringIO()
    settled = settle(run, rc, interrupted=False, state_dir=None, tell=said.append)
    outcome = conclude(settled, scenario, tell=said.append, console=Console(file=out, width=160))
    return outcome, out.getvalue() + "\n".join(said)


@pytest.mark.parametrize(
    ("status", "statuses", "breach", "code", "outcome"),
    [
        (RunStatus.COMPLETED, {200: 10}, False, 0, "PASS"),
        (RunStatus.COMPLETED, {200: 9, 500: 1}, False, 1, "FAIL"),
        (RunStatus.ABORTED, {503: 10}, True, 4, "ABORTED"),
        (RunStatus.INTERRUPTED, {200: 10}, False, 130, "INCOMPLETE"),
        (RunStatus.CRASHED, {200: 10}, False, 3, "INCOMPLETE"),
    ],
)
def test_every_run_is_judged_and_reported_and_its_exit_code_is_the_verdicts(
    tmp_path: Path,
    status: RunStatus,
    statuses: dict[int, int],
    breach: bool,
    code: int,
    outcome: str,
) -> None:
    run, scenario = recorded(tmp_path, status, statuses, breach=breach)
    result, printed = concluded(run, scenario)
    assert result.exit_code == code
    assert result.report == run.report_html
    assert run.report_html.is_file()
    assert run.junit_xml.is_file()
    summary = json.loads(run.summary_json.read_text())
    assert (summary["exit_code"], summary["outcome"]) == (code, outcome)
    assert printed.startswith(f"{outcome}  s  ({status.value}, exit {code}")
    assert f"report: {run.report_html}" in printed
    # The project's one duration format: "0.0412s", "1.6s", "2m05s".
    seconds = r"(\d+(\.\d+)?s|\d+m\d\ds)"
    assert re.search(rf"^judged in {seconds}, reported in {seconds}$", printed, re.MULTILINE)
    if breach:
        assert summary["aborted_by"] == ["503s held for 1s"]
        assert "aborted by guard: 503s held for 1s" in printed


def test_a_failed_slo_is_named_in_the_verdict_table(tmp_path: Path) -> None:
    run, scenario = recorded(tmp_path, RunStatus.COMPLETED, {200: 9, 500: 1})
    _, printed = concluded(run, scenario)
    headline, *rows = printed.splitlines()
    assert headline.startswith("FAIL  s  (completed, exit 1")
    assert [row.split()[1] for row in rows if row.startswith("FAIL ")] == ["no-500s"]


def test_a_verdict_that_cannot_be_reached_is_an_infrastructure_error_with_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, scenario = recorded(tmp_path, RunStatus.COMPLETED, {200: 10})

    def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("harness.verdict.judge", broken)
    result, printed = concluded(run, scenario)
    assert result.exit_code == 3
    assert "SLOs not judged: the verdict failed: RuntimeError: bug" in printed
    assert json.loads(run.summary_json.read_text())["passed"] is False


def finished(tmp_path: Path, status: RunStatus) -> RunDir:
    run = RunDir.create(tmp_path, "s")
    with run.writer() as writer:
        writer.finish(status, detail={"attempts": 5})
    return run


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (RunStatus.COMPLETED, 0),  # until the verdict says otherwise
        (RunStatus.ABORTED, 4),
        (RunStatus.INTERRUPTED, 130),
        (RunStatus.CRASHED, 3),
    ],
)
def test_a_run_the_master_finished_keeps_its_status(
    tmp_path: Path, status: RunStatus, code: int
) -> None:
    outcome = settle(finished(tmp_path, status), 0, interrupted=False, state_dir=None, tell=print)
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
    outcome = settle(run, rc, interrupted=interrupted, state_dir=None, tell=print)
    assert (outcome.status, outcome.exit_code) == (status, code)
    assert run.status is status
    assert "exited" in outcome.detail["error"]
    assert [e.kind.value for e in run.events()][-1] == "run_end"


def test_nothing_to_roll_back_without_a_journal(tmp_path: Path) -> None:
    assert rollback_faults(tmp_path, print)


def test_a_signal_before_the_master_runs_interrupts_the_cli() -> None:
    with Signals(), pytest.raises(KeyboardInterrupt):
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


@pytest.mark.integration  # a child process and signals
def test_a_signal_while_the_master_runs_is_forwarded_to_it(child: subprocess.Popen[str]) -> None:
    with Signals() as signals:
        signals.forward_to(child)
        signal.raise_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 42
    assert signals.received == [signal.SIGTERM]


@pytest.mark.integration  # a child process and signals
def test_a_signal_is_held_until_the_master_is_ready_for_it(child: subprocess.Popen[str]) -> None:
    ready = False
    with Signals() as signals:
        signals.forward_to(child, ready=lambda: ready)
        signal.raise_signal(signal.SIGTERM)
        signals.deliver_held()
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.3)
        ready = True
        signals.deliver_held()
        assert child.wait(timeout=10) == 42
    assert signals.received == [signal.SIGTERM]
