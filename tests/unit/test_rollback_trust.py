"""What ``harness rollback`` trusts: the journal of its state directory and that directory's own
stack, nothing a record points at. A crafted record naming another directory's ``stack.json``
(whose processes hold a command to run, a log to truncate, a PID to signal) is refused in one
line: nothing is started, truncated or signalled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import BadInputError
from harness.faults.factory import fault_from_record
from harness.faults.journal import JOURNAL_FILE
from harness.faults.stackref import RefusedStackRef, stack_from_ref
from harness.faults.targets import check_record
from harness.safety import TargetPolicy, TargetRefused
from harness.stack.base import Endpoint, ProcessState
from harness.stack.config import LocalStackConfig
from harness.stack.local import LocalStack
from harness.stack.processes import ProcessRecord, start_time, state_of
from harness.stack.state import StackState, StateDir

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.

LOG_TEXT = "the log of someone else's process\n"


@pytest.fixture
def paused_victim() -> Iterator[subprocess.Popen[bytes]]:
    """A live process of this user's, stopped: a pause revert of the crafted stack would wake it."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        os.kill(process.pid, signal.SIGSTOP)
        yield process
    finally:
        process.kill()
        process.wait()


def _dead_pid() -> tuple[int, float]:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(process.pid)
    process.wait()
    return process.pid, started


def _crafted_stack(elsewhere: Path, victim: subprocess.Popen[bytes]) -> tuple[Path, Path]:
    """A valid ``stack.json`` in a directory the journal does not own: app-1 dead (a kill revert
    would start its ``argv``), app-2 paused (a pause revert would resume that PID)."""
    pwned, log = elsewhere / "pwned.txt", elsewhere / "victim.log"
    log.write_text(LOG_TEXT)
    dead_pid, dead_started = _dead_pid()
    endpoint = Endpoint("127.0.0.1", 9)
    records = (
        ProcessRecord(
            name="app-1", role="app", pid=dead_pid, started=dead_started, endpoint=endpoint,
            log=log, argv=("/bin/sh", "-c", f"id > {pwned}"), env={"PATH": "/bin:/usr/bin"},
        ),
        ProcessRecord(
            name="app-2", role="app", pid=victim.pid, started=start_time(victim.pid),
            endpoint=endpoint, log=log, argv=("/bin/true",),
        ),
    )  # fmt: skip
    StateDir(elsewhere).save(StackState(LocalStackConfig(admin_token="t"), records))
    return pwned, log


def _journal(state: Path, records: list[dict[str, object]]) -> None:
    state.mkdir(mode=0o700, exist_ok=True)
    path = state / JOURNAL_FILE
    lines = [
        {"v": 1, "op": "journaled", "id": f"id{n}", "name": r["name"], "t": 1.0, "record": r}
        for n, r in enumerate(records)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    path.chmod(0o600)


def _instance_record(kind: str, target: str, elsewhere: Path) -> dict[str, object]:
    return {
        "v": 1,
        "kind": kind,
        "name": f"crafted-{kind}",
        "target": target,
        "healthz_url": "http://127.0.0.1:9/healthz",
        "stack": {"kind": "local", "state_dir": str(elsewhere)},
    }


@pytest.mark.integration  # a process, and waits
def test_a_record_naming_another_state_dir_starts_truncates_and_signals_nothing(
    tmp_path: Path,
    paused_victim: subprocess.Popen[bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere, state = tmp_path / "elsewhere", tmp_path / "state"
    elsewhere.mkdir()
    pwned, log = _crafted_stack(elsewhere, paused_victim)
    records = [
        _instance_record("kill", "app-1", elsewhere),
        _instance_record("restart", "app-1", elsewhere),
        _instance_record("pause", "app-2", elsewhere),
    ]
    _journal(state, records)

    code = main(["rollback", "--state-dir", str(state)])

    out = capsys.readouterr().out.splitlines()
    time.sleep(0.2)  # a process it had started would have written by now
    assert not pwned.exists()
    assert log.read_text() == LOG_TEXT
    victim_record = StateDir(elsewhere).load().process("app-2")  # type: ignore[union-attr]
    assert state_of(victim_record) is ProcessState.PAUSED  # never resumed
    assert code == 3  # the records are left in force, as README's exit codes say
    refusals = [line for line in out if line.startswith("NOT reverted: crafted-")]
    assert len(refusals) == 3
    for line in refusals:
        assert "refused: the record names the local stack in" in line
        assert "not the one of this journal's state directory" in line
    assert any(line.startswith("rollback incomplete") for line in out)
    assert (state / JOURNAL_FILE).exists()  # kept: nothing was reverted


def test_the_journals_own_state_dir_is_followed_under_any_spelling(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(state)
    for named in (str(state), str(alias), f"{state}/../state"):
        stack = stack_from_ref(
            {"kind": "local", "state_dir": named}, required=True, journal_dir=state
        )
        assert isinstance(stack, LocalStack)
        assert stack.state_dir == state.absolute()  # the journal's directory, not the spelling


@pytest.mark.parametrize("required", [True, False])
@pytest.mark.parametrize(
    "named", ["/", "relative/dir", "", 7, None, "/nonexistent-h7", "a\x00b", ["x"]]
)
def test_any_other_local_reference_is_refused_however_little_the_fault_needs_it(
    tmp_path: Path, named: object, required: bool
) -> None:
    with pytest.raises(RefusedStackRef) as refused:
        stack_from_ref(
            {"kind": "local", "state_dir": named}, required=required, journal_dir=tmp_path
        )
    assert "\n" not in str(refused.value)


def test_a_toxic_record_naming_another_local_stack_is_refused_too(tmp_path: Path) -> None:
    record = {
        "v": 1,
        "kind": "down",
        "name": "cut",
        "target": "lb-app-1",
        "toxiproxy_url": "http://127.0.0.1:8474",
        "stack": {"kind": "local", "state_dir": str(tmp_path / "elsewhere")},
    }
    with pytest.raises(BadInputError, match="refused: the record names the local stack"):
        fault_from_record(record, journal_dir=tmp_path / "state")
    # Without a journal (a fault rebuilt by the process that built it) the reference is followed.
    assert fault_from_record(record).stack is not None  # type: ignore[attr-defined]


def test_compose_and_external_references_get_the_journals_own_state_dir(tmp_path: Path) -> None:
    compose = {"kind": "compose", "project": "p", "compose_file": str(tmp_path / "c.yml")}
    external = {"kind": "external", "entry_url": "http://127.0.0.1:1"}
    for ref in (compose, external):
        stack = stack_from_ref(ref, required=True, journal_dir=tmp_path)
        assert stack is not None
        assert stack.journal_dir == tmp_path  # not .harness in whatever directory rollback ran


def test_an_external_stack_reference_naming_another_host_is_refused_before_anything_runs() -> None:
    record = {"name": "x", "stack": {"kind": "external", "entry_url": "http://evil.example/"}}
    with pytest.raises(TargetRefused, match=r"stack\.entry_url"):
        check_record(record, TargetPolicy())
