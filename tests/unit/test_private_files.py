"""State files are never opened through a symbolic link, and only used when they are regular files
of this user's with mode 0600: a link planted in their place leaves its target untouched, and the
harness says in one line why it refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import HarnessError, StackError
from harness.faults import Journal
from harness.gameday.control import ControlFile, NoGameday
from harness.private_files import open_private, read_private, write_private
from harness.stack import local, processes
from harness.stack.base import Endpoint
from harness.stack.config import LocalStackConfig
from harness.stack.front_proxy import FrontProxy, RunningFront
from harness.stack.state import StackState, StateDir

pytestmark = pytest.mark.unit

VICTIM_TEXT = "precious line one\nprecious line two\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM_TEXT)
    path.chmod(0o600)  # a file of this user's, as private as a state file: only the link differs
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


def _untouched(victim: Path) -> None:
    assert victim.read_text() == VICTIM_TEXT
    assert not victim.is_symlink()


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


# -- the helper itself -----------------------------------------------------------------------


def test_a_link_is_refused_for_reading_and_writing(victim: Path, state: Path) -> None:
    link = state / "stack.json"
    link.symlink_to(victim)
    with pytest.raises(PermissionError, match="refused: a symbolic link"):
        read_private(link)
    with pytest.raises(PermissionError, match="refused: a symbolic link"):
        open_private(link, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    with pytest.raises(PermissionError, match="refused: not a regular file"):
        write_private(link, b"{}")
    _untouched(victim)


def test_a_hard_link_with_loose_mode_is_refused_before_truncation(tmp_path: Path) -> None:
    shared = tmp_path / "shared.txt"
    shared.write_text(VICTIM_TEXT)
    shared.chmod(0o644)
    with pytest.raises(PermissionError, match="refused: mode 644, not 600"):
        open_private(shared, os.O_WRONLY | os.O_TRUNC)
    assert shared.read_text() == VICTIM_TEXT


def test_a_planted_temporary_link_is_never_written_through(victim: Path, state: Path) -> None:
    target = state / "stack.json"
    (state / f".stack.json.{os.getpid()}.tmp").symlink_to(victim)
    write_private(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert (target.stat().st_mode & 0o777) == 0o600
    _untouched(victim)


# -- every state file that goes through it ----------------------------------------------------


def test_stack_json_as_a_link_is_refused_in_one_line_and_its_target_kept(
    victim: Path, state: Path
) -> None:
    (state / "stack.json").symlink_to(victim)
    state_dir = StateDir(state)
    with pytest.raises(StackError) as refused:
        state_dir.load()
    assert "refused: a symbolic link" in _one_line(refused.value)
    with pytest.raises(StackError):
        state_dir.save(StackState(config=LocalStackConfig(admin_token="t")))
    _untouched(victim)


def test_the_old_stack_tmp_name_as_a_link_is_left_alone(victim: Path, state: Path) -> None:
    (state / "stack.tmp").symlink_to(victim)
    StateDir(state).save(StackState(config=LocalStackConfig(admin_token="t")))
    assert StateDir(state).load() is not None
    _untouched(victim)


def test_the_stack_lock_as_a_link_is_refused_and_its_target_kept(victim: Path, state: Path) -> None:
    (state / "stack.lock").symlink_to(victim)
    with pytest.raises(StackError) as refused, StateDir(state).locked():
        pass
    assert "stack.lock: cannot open the stack's lock: refused: a symbolic link" in _one_line(
        refused.value
    )
    _untouched(victim)


def test_an_old_lock_file_of_this_users_is_made_private_not_refused(state: Path) -> None:
    lock = state / "stack.lock"
    lock.write_text("")
    lock.chmod(0o644)  # what `open(path, "a")` left under umask 022
    with StateDir(state).locked():
        pass
    assert (lock.stat().st_mode & 0o777) == 0o600


def test_the_journal_lock_as_a_link_is_refused_and_its_target_kept(
    victim: Path, state: Path
) -> None:
    (state / "faults.jsonl.lock").symlink_to(victim)
    with pytest.raises(HarnessError) as refused, Journal.in_state_dir(state):
        pass
    assert "refused: a symbolic link" in _one_line(refused.value)
    _untouched(victim)


def _control() -> ControlFile:
    return ControlFile(
        pid=os.getpid(), url="http://127.0.0.1:1", page="p", token="t", run_dir="r", scenario="s"
    )


def test_the_game_day_file_never_writes_through_links(victim: Path, state: Path) -> None:
    (state / f".gameday.json.{os.getpid()}.tmp").symlink_to(victim)
    _control().write(state)
    assert ControlFile.read(state).token == "t"
    _untouched(victim)
    (state / "gameday.json").unlink()
    (state / "gameday.json").symlink_to(victim)
    with pytest.raises(NoGameday, match="refused: a symbolic link"):
        ControlFile.read(state)
    with pytest.raises(HarnessError, match="refused: not a regular file"):
        _control().write(state)
    _untouched(victim)


def test_the_front_proxy_record_never_goes_through_links(victim: Path, state: Path) -> None:
    front = RunningFront(
        api=Endpoint("127.0.0.1", 1), listen=Endpoint("127.0.0.1", 2),
        upstream=Endpoint("127.0.0.1", 3), pid=os.getpid(), started=0.0,
    )  # fmt: skip
    (state / "front-proxy.json").symlink_to(victim)
    with pytest.raises(HarnessError, match="refused: a symbolic link"):
        FrontProxy(state).running()
    with pytest.raises(StackError, match="refused: not a regular file"):
        FrontProxy(state)._write(front)
    _untouched(victim)


def test_a_process_log_as_a_link_is_neither_truncated_nor_appended_to(
    victim: Path, state: Path
) -> None:
    log = state / "logs" / "app-1.log"
    log.parent.mkdir()
    log.symlink_to(victim)
    with pytest.raises(StackError, match="cannot truncate the log"):
        local._truncate(log)  # what a restart does to the instance's log first
    with pytest.raises(StackError, match="cannot open its log"):
        processes.spawn(
            "app-1", "app", ["/bin/echo", "written"], endpoint=Endpoint("127.0.0.1", 9), log=log
        )
    _untouched(victim)
