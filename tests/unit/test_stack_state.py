"""The state file: what a later process reads to find and control the stack."""

from __future__ import annotations

import signal
import stat
from pathlib import Path

import pytest

from harness.errors import StackError
from harness.stack.base import Endpoint
from harness.stack.config import LocalStackConfig
from harness.stack.processes import ProcessRecord
from harness.stack.state import StackState, StateDir

pytestmark = pytest.mark.unit


def _record(name: str, pid: int = 4242, role: str = "app") -> ProcessRecord:
    return ProcessRecord(
        name=name,
        role=role,
        pid=pid,
        started=1234.25,
        endpoint=Endpoint("127.0.0.1", 18001),
        log=Path(f"/tmp/{name}.log"),
        argv=("python", "-m", "shopapp", "serve"),
        env={"SHOP_INSTANCE": name},
        stop_signal=signal.SIGINT,
    )


def test_state_round_trips_with_every_field(tmp_path: Path) -> None:
    state_dir = StateDir(tmp_path)
    state = StackState(
        config=LocalStackConfig(admin_token="t"),
        processes=(_record("postgres", role="database"), _record("app-1")),
    )
    state_dir.save(state)
    assert state_dir.load() == state


def test_state_file_is_private_to_its_owner(tmp_path: Path) -> None:
    # It holds the shop's admin token.
    state_dir = StateDir(tmp_path)
    state_dir.save(StackState(config=LocalStackConfig(admin_token="t")))
    assert stat.S_IMODE(state_dir.state_file.stat().st_mode) == 0o600


def test_no_state_file_means_no_stack(tmp_path: Path) -> None:
    assert StateDir(tmp_path / "never-created").load() is None


def test_clear_is_idempotent(tmp_path: Path) -> None:
    state_dir = StateDir(tmp_path)
    state_dir.save(StackState(config=LocalStackConfig(admin_token="t")))
    state_dir.clear()
    state_dir.clear()
    assert state_dir.load() is None


def test_an_unreadable_state_file_is_a_stack_error_naming_it(tmp_path: Path) -> None:
    state_dir = StateDir(tmp_path)
    state_dir.state_file.write_text('{"version": 99}')
    state_dir.state_file.chmod(0o600)
    with pytest.raises(StackError, match=r"stack\.json is not a stack state"):
        state_dir.load()


def test_replacing_a_process_keeps_the_start_order() -> None:
    state = StackState(config=LocalStackConfig(admin_token="t"))
    for name in ("postgres", "app-1", "caddy"):
        state = state.with_process(_record(name))
    state = state.with_process(_record("app-1", pid=777))
    assert [p.name for p in state.processes] == ["postgres", "app-1", "caddy"]
    assert state.process("app-1") == _record("app-1", pid=777)
    assert state.process("nope") is None
