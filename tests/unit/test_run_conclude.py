"""The exit code of a run is decided once (:func:`harness.report.exitcode.decide`) and said the
same everywhere: the process, summary.json, junit.xml, the verdict table, and a report rebuilt by
``harness report`` however long after. A run that exited 3 because its faults were left in force
still says 3, and why, when its report is rebuilt from the store."""

from __future__ import annotations

import io
import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from harness.cli import main
from harness.exit_codes import ExitCode
from harness.faults.journal import JOURNAL_FILE
from harness.record import EventKind, RunDir, RunStatus
from harness.record.buckets import Bucket
from harness.report.exitcode import SETTLED_KEY, Settled, decide, settled_of
from harness.run.conclude import conclude
from harness.run.preflight import resolve_scenario
from harness.run.request import RunOutcome
from harness.run.settle import settle
from harness.scenario import Scenario

# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("plots_not_drawn")]

T0 = 1_700_000_000.0
FAULTS_LEFT = "faults are still in force"


def recorded(
    tmp_path: Path, status: RunStatus, statuses: dict[int, int]
) -> tuple[RunDir, Scenario]:
    """A one-phase run (1 s of ``statuses`` in every bucket) judged by one SLO, no-500s."""
    (tmp_path / "lf.py").write_text("# users\n")
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: s
            load:
              locustfile: lf.py
              phases: [{name: a, duration: 1s, users: 1, spawn_rate: 1}]
            slos: [{name: no-500s, expr: "count(status == 500) == 0"}]
            """
        )
    )
    scenario = resolve_scenario(path)
    run = RunDir.create(tmp_path / "reports", "s", clock=lambda: T0 - 1)
    with run.writer(clock=lambda: T0 + 1) as writer:
        writer.set_scenario(scenario.to_dict())
        writer.event(EventKind.PHASE_START, "a", {"index": 0}, t=T0)
        parts = []
        for i in range(10):
            bucket = Bucket(round(T0 * 10) + i)
            bucket.statuses = dict(statuses)
            n = sum(statuses.values())
            bucket.latency.record(0.01, n)
            bucket.attempts = bucket.done = n
            parts.append(bucket.to_dict())
        writer.upsert_buckets(parts)
        writer.event(EventKind.PHASE_END, "a", {"index": 0}, t=T0 + 1)
        writer.finish(status)
    return run, scenario


def unrevertable_journal(state: Path) -> None:
    """A journal with a fault pending that no rollback can revert (a kind it does not know),
    as a crashed master leaves one whose revert failed."""
    state.mkdir(mode=0o700)
    line = {
        "v": 1,
        "op": "journaled",
        "id": "f1",
        "name": "flood",
        "t": T0,
        "record": {"v": 1, "kind": "flood", "name": "flood"},
    }
    (state / JOURNAL_FILE).write_text(json.dumps(line) + "\n")
    (state / JOURNAL_FILE).chmod(0o600)


def ended(
    run: RunDir, scenario: Scenario, *, master_rc: int = 0, state: Path | None = None
) -> tuple[RunOutcome, str]:
    """settle + conclude, as `harness run` ends a run: the outcome and what it printed."""
    said: list[str] = []
    out = io.StringIO()
    settled = settle(run, master_rc, interrupted=False, state_dir=state, tell=said.append)
    outcome = conclude(settled, scenario, tell=said.append, console=Console(file=out, width=100))
    return outcome, out.getvalue() + "\n".join(said)


def said_by_the_files(run: RunDir) -> tuple[int, int, str]:
    """The exit code summary.json and junit.xml state, and the JUnit "run completed" case's
    failure message ("" when it passed)."""
    summary = json.loads(run.summary_json.read_text())
    suite = ET.parse(run.junit_xml).getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    case = next(c for c in suite.iter("testcase") if c.get("name") == "run completed")
    failure = case.find("failure")
    message = "" if failure is None else str(failure.get("message"))
    return int(summary["exit_code"]), int(str(props["exit_code"])), message


@pytest.mark.parametrize(
    ("run_code", "verdict_code", "notes", "code"),
    [
        (0, 0, (), 0),  # completed, every SLO met
        (0, 1, (), 1),  # completed, an SLO failed
        (0, 0, ("SLOs not judged: the verdict failed",), 3),  # no verdict is no pass
        (2, 0, (), 2),  # bad input found late
        (3, 0, (), 3),  # faults left in force, or the stack failed
        (3, 1, (), 3),  # the run's own failure wins over an SLO's
        (4, 1, (), 4),  # aborted by a guard
        (130, 0, (), 130),  # interrupted
    ],
)
def test_the_run_decides_its_code_unless_it_completed_then_the_verdict_does(
    run_code: int, verdict_code: int, notes: tuple[str, ...], code: int
) -> None:
    assert decide(run_code, verdict_code, notes) == code


@pytest.mark.parametrize(
    ("status", "statuses", "master_rc", "code"),
    [
        (RunStatus.COMPLETED, {200: 10}, 0, ExitCode.OK),
        (RunStatus.COMPLETED, {200: 9, 500: 1}, 0, ExitCode.FAILED),
        (RunStatus.CRASHED, {200: 10}, 2, ExitCode.BAD_INPUT),
        (RunStatus.CRASHED, {200: 10}, 1, ExitCode.INFRASTRUCTURE),
        (RunStatus.ABORTED, {200: 10}, 0, ExitCode.ABORTED),
        (RunStatus.INTERRUPTED, {200: 10}, 0, ExitCode.INTERRUPTED),
    ],
)
def test_the_process_summary_junit_and_table_say_one_exit_code(
    tmp_path: Path, status: RunStatus, statuses: dict[int, int], master_rc: int, code: int
) -> None:
    run, scenario = recorded(tmp_path, status, statuses)
    outcome, printed = ended(run, scenario, master_rc=master_rc)
    assert outcome.exit_code == code
    summary_code, junit_code, _ = said_by_the_files(run)
    assert (summary_code, junit_code) == (code, code)
    assert f"exit {int(code)}," in printed.splitlines()[0]
    assert settled_of(run) is not None  # kept with the run for `harness report`


def test_faults_left_in_force_exit_3_in_every_file_though_every_slo_passed(
    tmp_path: Path,
) -> None:
    run, scenario = recorded(tmp_path, RunStatus.COMPLETED, {200: 10})
    unrevertable_journal(tmp_path / "state")
    outcome, printed = ended(run, scenario, state=tmp_path / "state")
    assert outcome.exit_code == ExitCode.INFRASTRUCTURE
    summary_code, junit_code, message = said_by_the_files(run)
    assert (summary_code, junit_code) == (3, 3)
    # Every SLO passed; the run case still fails, so no CI shows all green beside exit 3.
    assert message.startswith(f"run exit 3: {FAULTS_LEFT}")
    summary = json.loads(run.summary_json.read_text())
    assert summary["passed"] is True
    assert summary["error"].startswith(FAULTS_LEFT)
    assert f"error: {FAULTS_LEFT}" in printed


def test_a_rebuilt_report_keeps_the_exit_code_and_reason_of_a_run_that_left_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, scenario = recorded(tmp_path, RunStatus.COMPLETED, {200: 10})
    unrevertable_journal(tmp_path / "state")
    ended(run, scenario, state=tmp_path / "state")
    first = json.loads(run.summary_json.read_text())
    run.summary_json.unlink()  # rebuilt from the store, not copied from the old file

    assert main(["report", str(run.root)]) == ExitCode.INFRASTRUCTURE

    rebuilt = json.loads(run.summary_json.read_text())
    assert (rebuilt["exit_code"], rebuilt["error"]) == (first["exit_code"], first["error"])
    assert said_by_the_files(run)[:2] == (3, 3)
    assert "exit 3," in capsys.readouterr().out


def test_a_rebuilt_report_judges_the_slos_again_for_a_run_that_completed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, scenario = recorded(tmp_path, RunStatus.COMPLETED, {200: 9, 500: 1})
    assert ended(run, scenario)[0].exit_code == ExitCode.FAILED
    assert main(["report", str(run.root)]) == ExitCode.FAILED
    assert said_by_the_files(run)[:2] == (1, 1)


def test_a_run_stored_by_an_older_harness_is_rebuilt_from_its_verdict(tmp_path: Path) -> None:
    run, _ = recorded(tmp_path, RunStatus.COMPLETED, {200: 10})
    assert settled_of(run) is None
    assert main(["report", str(run.root)]) == ExitCode.OK


@pytest.mark.parametrize(
    "stored",
    [None, "3", {"exit_code": 7}, {"exit_code": "3"}, {"exit_code": True}, []],
)
def test_an_unreadable_stored_end_leaves_the_verdict_to_decide(
    tmp_path: Path, stored: object
) -> None:
    run, _ = recorded(tmp_path, RunStatus.COMPLETED, {200: 10})
    writer = run.writer()
    try:
        writer.set_meta(SETTLED_KEY, stored)
    finally:
        writer.close()
    assert settled_of(run) is None


def test_the_stored_end_reads_back_as_written(tmp_path: Path) -> None:
    from harness.report.exitcode import record_settled

    run, _ = recorded(tmp_path, RunStatus.COMPLETED, {200: 10})
    record_settled(run, Settled(3, "why"))
    assert settled_of(run) == Settled(3, "why")
    assert run.status is RunStatus.COMPLETED  # recording it did not end the run a second time
    assert [e.kind for e in run.events()].count(EventKind.RUN_END) == 1
