"""The command lines between `harness run` and its Locust processes: one definition, both ways."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.load.launch import (
    MASTER_FILE,
    MasterArgs,
    WorkerArgs,
    read_master_file,
    write_master_file,
)

pytestmark = pytest.mark.unit


def test_master_arguments_survive_their_command_line(tmp_path: Path) -> None:
    args = MasterArgs(
        run_dir=tmp_path / "run",
        host="http://127.0.0.1:8080",
        stack_ref='{"kind": "local", "state_dir": "/tmp/state"}',
        state_dir=tmp_path / "state",
        toxiproxy_url="http://127.0.0.1:8474",
        workers=3,
        bind_host="0.0.0.0",
        bind_port=5557,
        worker_timeout_s=12.5,
    )
    argv = args.argv()
    assert argv[:3] == [sys.executable, "-m", "harness.run.master"]
    assert MasterArgs.parse(argv[3:]) == args


def test_master_arguments_leave_out_what_was_not_given(tmp_path: Path) -> None:
    args = MasterArgs(
        run_dir=tmp_path,
        host="http://127.0.0.1:1",
        stack_ref='{"kind": "external", "entry_url": "http://127.0.0.1:1"}',
    )
    argv = args.argv()
    assert "--state-dir" not in argv
    assert "--toxiproxy-url" not in argv
    assert "--extension" not in argv
    assert MasterArgs.parse(argv[3:]) == args


def test_the_run_extensions_reach_the_master_in_their_order(tmp_path: Path) -> None:
    extensions = ("harness.gameday.session", "harness.capacity.stepstop")
    args = MasterArgs(run_dir=tmp_path, host="http://127.0.0.1:1", extensions=extensions)
    assert MasterArgs.parse(args.argv()[3:]).extensions == extensions


@pytest.mark.parametrize("locustfile", [None, Path("/x/shop_locustfile.py")])
def test_worker_arguments_survive_their_command_line(locustfile: Path | None) -> None:
    args = WorkerArgs("10.0.0.5", 6000, locustfile)
    argv = args.argv()
    assert argv[:3] == [sys.executable, "-m", "harness.load.worker"]
    assert WorkerArgs.parse(argv[3:]) == args


def test_the_master_file_says_where_the_master_listens(tmp_path: Path) -> None:
    assert read_master_file(tmp_path) is None
    write_master_file(tmp_path, host="127.0.0.1", port=40123)
    info = read_master_file(tmp_path)
    assert info is not None
    assert (info["host"], info["port"]) == ("127.0.0.1", 40123)
    assert isinstance(info["pid"], int)
    assert [p.name for p in tmp_path.iterdir()] == [MASTER_FILE]
