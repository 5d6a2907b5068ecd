"""What makes a run restart the shop of a stack that is up, and what keeps it from touching one:
the settings compared (a person's `harness up --app-env`, then the scenario's `stack.env`, and
nothing an earlier scenario left), and the mark of a running game day."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.stack.config import LocalStackConfig
from harness.stack.local_shop import env_change
from harness.stack.state import GAMEDAY_FILE, gameday_pid

pytestmark = pytest.mark.unit


def test_the_change_names_what_differs_and_what_is_left_over() -> None:
    assert env_change((("A", "1"),), (("A", "1"),)) == ""
    assert env_change((("A", "1"), ("B", "2")), (("A", "3"),)) == "A=3, no B"
    assert env_change((), (("B", "2"), ("A", "1"))) == "A=1, B=2"


def test_a_scenario_goes_on_top_of_the_settings_up_was_given() -> None:
    running = LocalStackConfig(app_env=(("BASE", "1"), ("LEFT", "x")), base_env=(("BASE", "1"),))
    assert dict(running.env_for((("S", "2"),))) == {"BASE": "1", "S": "2"}
    assert dict(running.env_for((("BASE", "9"),))) == {"BASE": "9"}


def test_a_state_written_before_base_env_keeps_what_it_runs() -> None:
    data = LocalStackConfig(app_env=(("A", "1"),)).to_json()
    del data["base_env"]
    assert LocalStackConfig.from_json(data).base_env == (("A", "1"),)
    config = LocalStackConfig(app_env=(("A", "1"),), base_env=(("A", "1"),))
    assert LocalStackConfig.from_json(config.to_json()) == config


def test_a_running_game_day_is_seen_and_a_gone_one_is_not(tmp_path: Path) -> None:
    assert gameday_pid(tmp_path) is None  # no mark
    (tmp_path / GAMEDAY_FILE).write_text("{not json")
    assert gameday_pid(tmp_path) is None
    (tmp_path / GAMEDAY_FILE).write_text(json.dumps({"pid": os.getpid(), "url": "x"}))
    assert gameday_pid(tmp_path) == os.getpid()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / GAMEDAY_FILE).write_text(json.dumps({"pid": int(gone.stdout)}))
    assert gameday_pid(tmp_path) is None


def test_the_mark_is_the_file_a_game_day_writes() -> None:
    from harness.gameday.control import CONTROL_FILE

    assert GAMEDAY_FILE == CONTROL_FILE
