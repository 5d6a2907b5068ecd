"""Catalogue faults (no `at`): valid in a scenario, injected only by hand on a game day, and
refused by `harness run`, where they would never happen."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadInputError
from harness.run.preflight import check_catalogue_faults
from harness.run.request import RunRequest
from harness.scenario import load_scenario

pytestmark = pytest.mark.unit

GAME_DAY = Path(__file__).parents[2] / "scenarios" / "game_day.yaml"


def test_the_game_day_scenario_has_a_catalogue_beside_its_schedule() -> None:
    scenario = load_scenario(GAME_DAY)
    scheduled = [f.name for f in scenario.faults if f.at is not None]
    assert scheduled == ["pause-app-2-drill"]
    assert len(scenario.faults) > 5
    kill = next(f for f in scenario.faults if f.name == "kill-app-1")
    # Planned for no time at all: the verdict only knows it from its events.
    assert kill.window(scenario.total_duration) == (1800.0, 1800.0)
    assert kill.for_ == 30.0


def test_harness_run_refuses_a_catalogue_fault_naming_the_field() -> None:
    scenario = load_scenario(GAME_DAY)
    with pytest.raises(BadInputError, match=r"game_day\.yaml: faults\[1\]\.at: required by"):
        check_catalogue_faults(scenario, RunRequest(source=str(GAME_DAY)))
    check_catalogue_faults(scenario, RunRequest(source=str(GAME_DAY), web_host="127.0.0.1"))
