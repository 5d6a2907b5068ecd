"""Capacity analysis and the open model's arrival schedule, against cases with known answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.capacity.analysis import StepResult, knee_of, summarise
from harness.capacity.runner import CapacityRequest, plan_rates, settings, staircase
from harness.errors import BadInputError
from harness.load.plan import ArrivalSchedule
from harness.record import Event, EventKind
from harness.report.loadmodel import load_model_of
from harness.scenario import Scenario, load_scenario

pytestmark = pytest.mark.unit


def _step(
    offered: float, p99: float, r503: float = 0.0, failed: tuple[str, ...] = ()
) -> StepResult:
    return StepResult(f"s{offered:g}", offered, offered, p99, r503, 100, failed)


def test_capacity_is_the_last_load_that_held_before_the_first_break() -> None:
    steps = [_step(10, 0.01), _step(20, 0.01), _step(30, 0.02, 0.02), _step(40, 0.5, 0.3, ("p99",))]
    result = summarise("healthy", (), steps)
    assert (result.capacity, result.breaking, result.found) == (30, 40, True)
    assert result.onset_503 == 30


def test_no_breaking_point_when_every_step_held() -> None:
    result = summarise("healthy", (), [_step(10, 0.01), _step(20, 0.01)])
    assert (result.capacity, result.breaking, result.found) == (20, None, False)


def test_knee_is_where_a_flat_curve_turns_up() -> None:
    # Normalised, the point farthest below the diagonal: at 50/s, 0.8 - 0.19 = 0.61 beats
    # 40/s's 0.6 - 0.002 = 0.598.
    points = [(10, 0.01), (20, 0.01), (30, 0.011), (40, 0.012), (50, 0.2), (60, 1.0)]
    assert knee_of(points) == 50
    assert knee_of([(10, 0.01), (20, 0.01), (30, 0.01)]) is None  # flat: no knee


def test_schedule_spaces_arrivals_at_the_rate_share_and_phase() -> None:
    schedule = ArrivalSchedule(1000.0, [(0.0, 2.0, 50.0), (2.0, 3.0, 0.0), (3.0, 4.0, 10.0)])
    times = list(schedule)
    assert len(times) == 100 + 0 + 10
    assert times[1] - times[0] == pytest.approx(0.02)
    assert times[100] == pytest.approx(1003.0)
    half = ArrivalSchedule(1000.0, [(0.0, 2.0, 50.0)], share=0.5, offset=0.5)
    assert half.count() == 50
    assert next(iter(half)) == pytest.approx(1000.02)


# --- the staircase a search runs ----------------------------------------------------------------

_SCENARIO = """
name: cap
stack: {kind: local}
load:
  locustfile: loc.py
  user_classes: [U]
  model: open
  phases: [{name: steady, duration: 10s, rate: 40/s}]
faults:
  - {name: slow-db, action: db-throttle, at: 0s, params: {latency: 100}}
  - {name: kill-app-1, action: kill, target: app-1, at: 5s, for: 2s}
  - {name: pause-app-2, action: pause, target: app-2, at: 1s, for: 2s}
capacity: {start: 10/s, step: 5/s, hold: 2s, max: 20/s, always: [slow-db], faults: [kill-app-1]}
slos:
  - {name: few-503s, expr: "ratio(status == 503) < 2%"}
  - {name: heals, expr: "recovery_time(kill-app-1) < 10s"}
"""


def _scenario(tmp_path: Path, text: str = _SCENARIO) -> Scenario:
    (tmp_path / "loc.py").write_text("", encoding="utf-8")
    path = tmp_path / "cap.yaml"
    path.write_text(text, encoding="utf-8")
    return load_scenario(path)


def test_staircase_holds_the_searched_and_always_faults_from_the_start(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    data = staircase(
        scenario,
        plan_rates(settings(scenario, _request(tmp_path))),
        2.0,
        ["kill-app-1"],
        always=["slow-db"],
    )
    faults = {f["name"]: f for f in data["faults"]}
    assert set(faults) == {"slow-db", "kill-app-1"}  # pause-app-2 is neither
    assert all(f["at"] == "0s" and "for" not in f for f in faults.values())
    phases = [(p["name"], p["duration"], p["rate"]) for p in data["load"]["phases"]]
    assert phases == [
        ("settle", "3s", 10.0),
        ("step-01", "2s", 10.0),
        ("step-02", "2s", 15.0),
        ("step-03", "2s", 20.0),
    ]
    # Only the SLOs a step can be judged by, and the master told to stop at the first break.
    assert data["slos"] == [{"name": "few-503s", "expr": "ratio(status == 503) < 2%"}]
    assert data["capacity"] == {"stop_at_break": True}
    stair_path = tmp_path / "staircase.yaml"
    stair_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    stair = load_scenario(stair_path)  # as the search runs it: a valid scenario
    assert stair.capacity is not None
    assert stair.capacity.stop_at_break


def test_healthy_staircase_holds_only_the_always_faults(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    data = staircase(scenario, [10.0], 2.0, [], always=["slow-db"])
    assert [f["name"] for f in data["faults"]] == ["slow-db"]


def test_unknown_always_fault_is_one_line_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"capacity\.always\[0\].*unknown fault \"slow\""):
        _scenario(tmp_path, _SCENARIO.replace("always: [slow-db]", "always: [slow]"))


def _request(tmp_path: Path) -> CapacityRequest:
    return CapacityRequest(tmp_path / "cap.yaml")


# --- which load model the report names ----------------------------------------------------------


def _totals(t: float, node: str, arrivals: int, dropped: int) -> Event:
    detail = {"worker": node, "node": node, "arrivals": arrivals, "arrivals_dropped": dropped}
    return Event(int(t), t, EventKind.NOTE, "worker_totals", detail)


def test_open_model_report_sums_each_workers_last_arrival_totals() -> None:
    scenario = {
        "load": {
            "model": "open",
            "max_in_flight": 300,
            "phases": [{"name": "warm", "rate": 20.0}, {"name": "spike", "rate": 150.0}],
        }
    }
    events = [_totals(1, "a", 50, 0), _totals(2, "a", 100, 3), _totals(3, "b", 90, 4)]
    info = load_model_of(scenario, events)
    assert (info.arrivals, info.dropped) == (190, 7)
    assert info.text == (
        "open (arrivals per second: warm 20/s, spike 150/s; at most 300 in flight); "
        "190 arrivals, 7 dropped"
    )
    assert info.to_json()["rates"] == {"warm": 20.0, "spike": 150.0}


def test_closed_model_report_says_closed() -> None:
    info = load_model_of({"load": {"phases": [{"name": "a", "users": 3}]}}, [])
    assert info.to_json() == {"model": "closed"}
    assert info.text.startswith("closed")
