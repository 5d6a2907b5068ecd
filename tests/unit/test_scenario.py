"""The scenario file: good files load, and every mistake is one line naming file, path and value."""

from __future__ import annotations

import copy
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

import harness.scenario
from harness.errors import BadInputError
from harness.scenario import (
    DbThrottleFault,
    InstanceFault,
    MaintenanceFault,
    Scenario,
    ToxicFault,
    load_scenario,
)

from .yaml_text import yaml_text

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

# 40 s of phases; every fault kind the local stack knows, each inside the run.
BASE: dict[str, Any] = {
    "name": "base",
    "load": {
        "locustfile": "locust.py",
        "phases": [
            {"name": "warmup", "duration": "10s", "users": 10, "spawn_rate": 5},
            {"name": "spike", "duration": "20s", "users": 50, "spawn_rate": 25},
            {"name": "cooldown", "duration": "10s", "users": 10, "spawn_rate": 25},
        ],
    },
    "faults": [
        {"name": "kill-app-1", "action": "kill", "target": "app-1", "at": "12s", "for": "8s"},
        {
            "name": "slow-db",
            "action": "toxic",
            "target": "app-db",
            "at": "10s",
            "for": "5s",
            "params": {"type": "latency", "latency": 200},
        },
        {"name": "throttle", "action": "db-throttle", "at": "20s", "params": {"rate": 100}},
        {"name": "maint", "action": "maintenance", "at": "30s", "for": "2s"},
    ],
    "slos": ["count(status == 500) == 0"],
    "guards": ["abort if ratio(status >= 500) > 50% for 5s"],
}

_DELETE = object()


def _write(directory: Path, data: object, name: str = "scenario.yaml") -> Path:
    (directory / "locust.py").write_text("# users\n")
    path = directory / name
    path.write_text(yaml_text(data, sort_keys=False))
    return path


def _with(changes: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    """BASE with the value at each path replaced (or removed, for ``_DELETE``)."""
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        parent: Any = data
        for step in path[:-1]:
            parent = parent[step]
        if value is _DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return data


def _renamed(path: tuple[Any, ...], old: str, new: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    parent: Any = data
    for step in path:
        parent = parent[step]
    parent[new] = parent.pop(old)
    return data


def _error(path: Path) -> str:
    with pytest.raises(BadInputError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- good files ---------------------------------------------------------------------------


def test_the_base_scenario_loads_into_typed_faults(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, BASE))
    kill, toxic, throttle, maintenance = scenario.faults
    assert isinstance(kill, InstanceFault)
    assert isinstance(toxic, ToxicFault)
    assert toxic.params.attributes == {"latency": 200, "jitter": 0}
    assert (toxic.params.stream, toxic.params.toxicity) == ("downstream", 1.0)
    assert isinstance(throttle, DbThrottleFault)
    assert throttle.target == "app-db"
    assert isinstance(maintenance, MaintenanceFault)
    assert maintenance.target is None
    assert scenario.slos[0].name == scenario.slos[0].expr == "count(status == 500) == 0"
    assert scenario.stack.kind == "local"
    assert scenario.load.locustfile == tmp_path / "locust.py"


@pytest.mark.parametrize("shipped", ["ci_gate.yaml", "flash_sale.yaml"])
def test_the_shipped_scenarios_load(shipped: str) -> None:
    scenario = load_scenario(REPO / "scenarios" / shipped)
    assert scenario.load.locustfile == REPO / "scenarios" / "shop_locustfile.py"
    assert [p.name for p in scenario.load.phases] == ["warmup", "spike", "cooldown"]
    spike = scenario.phase_windows()[1]
    kill = next(f for f in scenario.faults if f.action == "kill")
    start, end = kill.window(scenario.total_duration)
    assert spike.start < start < end <= spike.end


def test_the_ci_gate_stays_under_a_minute() -> None:
    assert load_scenario(REPO / "scenarios" / "ci_gate.yaml").total_duration < 60


def test_the_example_in_the_module_docstring_loads(tmp_path: Path) -> None:
    doc = harness.scenario.__doc__ or ""
    example = doc.split("The format, in full::\n")[1].split("\nRules beyond")[0]
    (tmp_path / "shop_locustfile.py").write_text("")
    path = tmp_path / "flash.yaml"
    path.write_text(textwrap.dedent(example))
    scenario = load_scenario(path)
    assert scenario.name == "flash-sale"
    assert scenario.total_duration == 80.0
    assert dict(scenario.stack.env) == {"SHOP_MAX_INFLIGHT": "32"}


def test_the_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    assert load_scenario(_write(tmp_path, _with({("name",): _DELETE}), "nightly.yaml")).name == (
        "nightly"
    )


def test_env_values_may_be_whole_numbers_and_are_kept_as_strings(tmp_path: Path) -> None:
    data = _with({("stack",): {"env": {"SHOP_MAX_INFLIGHT": 32, "SHOP_A": "x"}}})
    scenario = load_scenario(_write(tmp_path, data))
    assert scenario.stack.env == (("SHOP_A", "x"), ("SHOP_MAX_INFLIGHT", "32"))


def test_an_external_stack_with_allowed_hosts_loads(tmp_path: Path) -> None:
    data = _with(
        {
            ("stack",): {
                "kind": "external",
                "entry_url": "https://Staging.Example.com/shop",
                "toxiproxy_url": "http://127.0.0.1:8474",
            },
            ("allow_targets",): ["staging.example.com"],
            ("faults",): [BASE["faults"][1], {**BASE["faults"][2], "target": "shop-db"}],
        }
    )
    scenario = load_scenario(_write(tmp_path, data))
    assert scenario.stack.entry_url == "https://Staging.Example.com/shop"
    assert scenario.faults[1].target == "shop-db"  # any proxy name: the stack is not ours


def test_yaml_merge_keys_may_be_overridden_beside_them(tmp_path: Path) -> None:
    (tmp_path / "locust.py").write_text("")
    path = tmp_path / "merge.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            load:
              locustfile: locust.py
              phases:
                - &base {name: warmup, duration: 10s, users: 10, spawn_rate: 5}
                - {<<: *base, name: spike, users: 50}
            """
        )
    )
    phases = load_scenario(path).load.phases
    assert [(p.name, p.users, p.duration) for p in phases] == [
        ("warmup", 10, 10.0),
        ("spike", 50, 10.0),
    ]


def test_a_fault_may_start_at_zero_and_end_exactly_with_the_run(tmp_path: Path) -> None:
    data = _with({("faults",): [{**BASE["faults"][0], "at": "0s", "for": "40s"}]})
    assert load_scenario(_write(tmp_path, data)).faults[0].window(40.0) == (0.0, 40.0)


def test_float_sums_do_not_push_an_exact_fit_past_the_end(tmp_path: Path) -> None:
    data = _with(
        {
            ("load", "phases"): [
                {"name": "only", "duration": "300ms", "users": 1, "spawn_rate": 1}
            ],
            ("faults",): [{**BASE["faults"][0], "at": "100ms", "for": "200ms"}],
        }
    )
    load_scenario(_write(tmp_path, data))


def test_the_model_is_frozen(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, BASE))
    with pytest.raises(ValueError, match="frozen"):
        scenario.name = "other"


# --- the timeline ---------------------------------------------------------------------------


@pytest.fixture
def base(tmp_path: Path) -> Scenario:
    return load_scenario(_write(tmp_path, BASE))


def test_phase_windows_run_back_to_back_from_zero(base: Scenario) -> None:
    assert base.total_duration == 40.0
    assert base.phase_windows() == [
        ("warmup", 0.0, 10.0),
        ("spike", 10.0, 30.0),
        ("cooldown", 30.0, 40.0),
    ]


@pytest.mark.parametrize(
    ("t", "phase"),
    [
        (-0.001, None),
        (0.0, "warmup"),
        (9.999, "warmup"),
        (10.0, "spike"),
        (29.999, "spike"),
        (30.0, "cooldown"),
        (39.999, "cooldown"),
        (40.0, None),
        (1e9, None),
    ],
)
def test_phase_at_gives_a_boundary_to_the_phase_it_starts(
    base: Scenario, t: float, phase: str | None
) -> None:
    found = base.phase_at(t)
    assert (found.name if found else None) == phase


def test_a_fault_without_for_lasts_until_the_run_ends(base: Scenario) -> None:
    assert base.fault_windows() == [
        ("kill-app-1", 12.0, 20.0),
        ("slow-db", 10.0, 15.0),
        ("throttle", 20.0, 40.0),
        ("maint", 30.0, 32.0),
    ]
    assert base.faults[2].window(total=35.0) == (20.0, 35.0)


# --- the resolved form ----------------------------------------------------------------------


def test_the_resolved_form_has_seconds_and_absolute_paths(base: Scenario, tmp_path: Path) -> None:
    data = json.loads(json.dumps(base.to_dict()))
    assert data["load"]["locustfile"] == str(tmp_path / "locust.py")
    assert data["load"]["phases"][1]["duration"] == 20.0
    assert data["faults"][0]["for"] == 8.0
    assert data["faults"][2]["for"] is None
    assert data["faults"][1]["params"] == {
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "latency": 200,
        "jitter": 0,
    }


def test_the_resolved_form_reads_back_to_the_same_scenario(base: Scenario, tmp_path: Path) -> None:
    data = json.loads(json.dumps(base.to_dict()))
    (tmp_path / "locust.py").unlink()  # a run directory is judged where its locustfile is not
    assert Scenario.from_dict(data) == base


def test_a_broken_resolved_form_is_bad_input_too(base: Scenario) -> None:
    data = base.to_dict()
    data["faults"][0]["at"] = "later"
    with pytest.raises(BadInputError, match=r"^resolved scenario: faults\[0\]\.at: expected"):
        Scenario.from_dict(data)


# --- every mistake: one line, the file, the path, the value ---------------------------------

ACTIONS = (
    "kill, pause, restart, toxic, down, db-throttle, maintenance, http-abort, http-delay, "
    "exec, http"
)

BAD: list[tuple[str, dict[str, Any], str]] = [
    # durations
    (
        "fault for not a duration",
        _with({("faults", 0, "for"): "soon"}),
        'faults[0].for: expected a duration like 30s, got "soon"',
    ),
    (
        "phase duration a bare number",
        _with({("load", "phases", 0, "duration"): 30}),
        "load.phases[0].duration: expected a duration like 30s, got 30: a bare number is "
        "ambiguous, add a unit (30s or 30ms)",
    ),
    (
        "phase duration zero",
        _with({("load", "phases", 0, "duration"): "0s"}),
        'load.phases[0].duration: expected a duration longer than 0s, got "0s"',
    ),
    (
        "fault for zero",
        _with({("faults", 0, "for"): "0s"}),
        'faults[0].for: expected a duration longer than 0s, got "0s"',
    ),
    (
        "fault at negative",
        _with({("faults", 0, "at"): "-1s"}),
        'faults[0].at: expected a duration like 30s, got "-1s" (durations cannot be negative)',
    ),
    (
        "fault at a list",
        _with({("faults", 0, "at"): ["10s"]}),
        "faults[0].at: expected a duration like 30s, got a list",
    ),
    # numbers
    (
        "users negative",
        _with({("load", "phases", 1, "users"): -3}),
        "load.phases[1].users: expected a whole number >= 0, got -3",
    ),
    (
        "users a YAML flag",
        _with({("load", "phases", 1, "users"): True}),
        "load.phases[1].users: expected a whole number >= 0, got true",
    ),
    (
        "users a fraction",
        _with({("load", "phases", 1, "users"): 2.5}),
        "load.phases[1].users: expected a whole number >= 0, got 2.5",
    ),
    (
        "users a string",
        _with({("load", "phases", 1, "users"): "20"}),
        'load.phases[1].users: expected a whole number >= 0, got "20"',
    ),
    (
        "spawn rate zero",
        _with({("load", "phases", 2, "spawn_rate"): 0}),
        "load.phases[2].spawn_rate: expected a number > 0 and <= 1e+06, got 0",
    ),
    (
        "workers negative",
        _with({("load", "workers"): -1}),
        "load.workers: expected a whole number >= 0, got -1",
    ),
    # unknown and missing keys
    (
        "typo in a key",
        _renamed(("load",), "phases", "phaes"),
        'load.phaes: unknown key "phaes" (did you mean "phases"?)',
    ),
    (
        "typo at the top",
        _renamed((), "faults", "fault"),
        'fault: unknown key "fault" (did you mean "faults"?)',
    ),
    (
        "for_ instead of for",
        _renamed(("faults", 0), "for", "for_"),
        'faults[0].for_: unknown key "for_" (did you mean "for"?)',
    ),
    (
        "typo in a toxic attribute",
        _renamed(("faults", 1, "params"), "latency", "latncy"),
        'faults[1].params.latncy: unknown key "latncy" (did you mean "latency"?)',
    ),
    (
        "unknown key far from any",
        _with({("load", "colour"): "red"}),
        'load.colour: unknown key "colour" (expected one of: locustfile, user_classes, '
        "workers, model, max_in_flight, phases)",
    ),
    (
        "params on a kill",
        _with({("faults", 0, "params"): {"signal": 9}}),
        'faults[0].params: unknown key "params" (expected one of: name, action, target, at, for)',
    ),
    (
        "a number as a key",
        _with({("load", "phases", 0, 7): "x"}),
        "load.phases[0]: unknown key 7 (expected one of: name, duration, users, spawn_rate, rate)",
    ),
    ("load missing", _with({("load",): _DELETE}), "load: required, but missing"),
    (
        "phase users missing",
        _with({("load", "phases", 0, "users"): _DELETE}),
        "load.phases[0].users: required, but missing",
    ),
    (
        "kill target missing",
        _with({("faults", 0, "target"): _DELETE}),
        "faults[0].target: required, but missing",
    ),
    # shapes
    (
        "faults a mapping",
        _with({("faults",): {"kill": "app-1"}}),
        "faults: expected a list, got a mapping",
    ),
    (
        "a fault as a sentence",
        _with({("faults", 0): "kill app-1 at 10s"}),
        'faults[0]: expected a mapping, got "kill app-1 at 10s"',
    ),
    ("stack a string", _with({("stack",): "local"}), 'stack: expected a mapping, got "local"'),
    (
        "user classes not a list",
        _with({("load", "user_classes"): "ShopUser"}),
        'load.user_classes: expected a list, got "ShopUser"',
    ),
    (
        "user class not a class name",
        _with({("load", "user_classes"): ["Shop User"]}),
        'load.user_classes[0]: expected a Python class name, got "Shop User"',
    ),
    (
        "description a list",
        _with({("description",): ["a"]}),
        "description: expected a string, got a list",
    ),
    # names
    (
        "scenario name with a space",
        _with({("name",): "flash sale"}),
        "name: expected a name of letters, digits, '-', '_' or '.' (at most 64), "
        'got "flash sale"',
    ),
    (
        "empty phase name",
        _with({("load", "phases", 1, "name"): ""}),
        "load.phases[1].name: expected a name of letters, digits, '-', '_' or '.' (at most 64), "
        'got ""',
    ),
    (
        "duplicate phase name",
        _with({("load", "phases", 2, "name"): "warmup"}),
        'load.phases[2].name: duplicate phase name "warmup" (also phases[0])',
    ),
    (
        "no phases",
        _with({("load", "phases"): []}),
        "load.phases: expected at least one phase",
    ),
    (
        "duplicate fault name",
        _with({("faults", 3, "name"): "slow-db"}),
        'faults[3].name: duplicate fault name "slow-db" (also faults[1])',
    ),
    # the timeline
    (
        "fault starts after the run",
        _with({("faults", 0, "at"): "45s"}),
        'faults[0].at: fault "kill-app-1" starts at 45s, but the phases end at 40s',
    ),
    (
        "fault starts as the run ends",
        _with({("faults", 2, "at"): "40s"}),
        'faults[2].at: fault "throttle" starts at 40s, but the phases end at 40s',
    ),
    (
        "fault outlasts the run",
        _with({("faults", 0, "for"): "30s"}),
        'faults[0].for: fault "kill-app-1" runs from 12s for 30s, to 42s, past the end of the '
        "phases at 40s",
    ),
    # actions and their params
    (
        "unknown action",
        _with({("faults", 0, "action"): "explode"}),
        f'faults[0].action: expected one of: {ACTIONS}, got "explode"',
    ),
    (
        "action with the wrong dash",
        _with({("faults", 2, "action"): "db_throttle"}),
        f'faults[2].action: expected one of: {ACTIONS}, got "db_throttle" '
        '(did you mean "db-throttle"?)',
    ),
    (
        "action missing",
        _with({("faults", 0, "action"): _DELETE}),
        f"faults[0].action: required, but missing (one of: {ACTIONS})",
    ),
    (
        "toxic type unknown",
        _with({("faults", 1, "params", "type"): "lag"}),
        "faults[1].params.type: expected one of: latency, bandwidth, timeout, reset_peer, "
        'slow_close, limit_data, slicer, got "lag"',
    ),
    (
        "toxic params missing",
        _with({("faults", 1, "params"): _DELETE}),
        "faults[1].params: required, but missing",
    ),
    (
        "toxic attribute of another type",
        _with({("faults", 1, "params", "rate"): 100}),
        "faults[1].params.rate: a latency toxic takes latency (ms), jitter (ms), not rate",
    ),
    (
        "toxic attribute missing",
        _with({("faults", 1, "params"): {"type": "latency", "jitter": 10}}),
        "faults[1].params.latency: required for a latency toxic (ms)",
    ),
    (
        "toxic attribute with a unit",
        _with({("faults", 1, "params", "latency"): "800ms"}),
        'faults[1].params.latency: expected a whole number >= 0, got "800ms"',
    ),
    (
        "bandwidth of nothing",
        _with({("faults", 1, "params"): {"type": "bandwidth", "rate": 0}}),
        "faults[1].params.rate: expected a whole number >= 1 (KB/s), got 0",
    ),
    (
        "slicer of empty pieces",
        _with({("faults", 1, "params"): {"type": "slicer", "average_size": 0}}),
        "faults[1].params.average_size: expected a whole number >= 1 (bytes), got 0",
    ),
    (
        "stream with a typo",
        _with({("faults", 1, "params", "stream"): "upsteam"}),
        'faults[1].params.stream: expected one of: upstream, downstream, got "upsteam" '
        '(did you mean "upstream"?)',
    ),
    (
        "stream sideways",
        _with({("faults", 1, "params", "stream"): "sideways"}),
        'faults[1].params.stream: expected one of: upstream, downstream, got "sideways"',
    ),
    (
        "toxicity above one",
        _with({("faults", 1, "params", "toxicity"): 1.5}),
        "faults[1].params.toxicity: expected a number from 0 to 1, got 1.5",
    ),
    (
        "db-throttle of nothing",
        _with({("faults", 2, "params"): {}}),
        "faults[2].params: db-throttle needs latency (ms) and/or rate (KB/s)",
    ),
    (
        "db-throttle jitter alone",
        _with({("faults", 2, "params"): {"rate": 10, "jitter": 5}}),
        "faults[2].params.jitter: jitter needs a latency to vary",
    ),
    (
        "maintenance at an instance",
        _with({("faults", 3, "target"): "app-1"}),
        "faults[3].target: maintenance needs a Toxiproxy proxy like lb-app-1 or app-db, got "
        '"app-1" (the proxy in front of app-1 is lb-app-1)',
    ),
    (
        "kill a proxy",
        _with({("faults", 0, "target"): "lb-app-1"}),
        'faults[0].target: kill needs a shop instance like app-1, got "lb-app-1" '
        "(lb-app-1 is a Toxiproxy proxy: use toxic or down)",
    ),
    (
        "toxic on an instance",
        _with({("faults", 1, "target"): "app-2"}),
        'faults[1].target: toxic needs a Toxiproxy proxy like lb-app-1 or app-db, got "app-2" '
        "(the proxy in front of app-2 is lb-app-2)",
    ),
    (
        "pause something unknown",
        _with({("faults", 0, "action"): "pause", ("faults", 0, "target"): "db"}),
        'faults[0].target: pause needs a shop instance like app-1, got "db"',
    ),
    # the stack
    (
        "stack kind unknown",
        _with({("stack",): {"kind": "cloud"}}),
        'stack.kind: expected one of: local, compose, external, got "cloud"',
    ),
    (
        "external without entry url",
        _with({("stack",): {"kind": "external"}}),
        "stack.entry_url: required for kind external (the URL load is sent to)",
    ),
    (
        "external and kill",
        _with({("stack",): {"kind": "external", "entry_url": "http://localhost:8080"}}),
        "faults[0].action: kill needs a stack the harness runs (local or compose), not external",
    ),
    (
        "external and toxics without toxiproxy",
        _with(
            {
                ("stack",): {"kind": "external", "entry_url": "http://localhost:8080"},
                ("faults",): [BASE["faults"][1]],
            }
        ),
        'stack.toxiproxy_url: required for kind external: fault "slow-db" (toxic) goes through '
        "Toxiproxy (or set stack.front_proxy: true)",
    ),
    (
        "external with env",
        _with(
            {
                ("stack",): {
                    "kind": "external",
                    "entry_url": "http://localhost:8080",
                    "env": {"A": "1"},
                }
            }
        ),
        "stack.env: only for stacks the harness runs, not external",
    ),
    (
        "entry url not allowed",
        _with({("stack",): {"entry_url": "http://staging.example.com"}}),
        'stack.entry_url: host "staging.example.com" is not loopback; add it to allow_targets '
        "(or --allow-target staging.example.com) if the harness may send load and faults there",
    ),
    (
        "toxiproxy url not allowed",
        _with(
            {
                ("stack",): {"toxiproxy_url": "http://10.0.0.5:8474"},
                ("allow_targets",): ["staging.example.com"],
            }
        ),
        'stack.toxiproxy_url: host "10.0.0.5" is not loopback; add it to allow_targets (or '
        "--allow-target 10.0.0.5) if the harness may send load and faults there",
    ),
    (
        "entry url not http",
        _with({("stack",): {"entry_url": "ftp://127.0.0.1"}}),
        'stack.entry_url: expected an http(s) URL like http://127.0.0.1:8080, got "ftp://127.0.0.1"',
    ),
    (
        "entry url with a bad port",
        _with({("stack",): {"entry_url": "http://127.0.0.1:99999"}}),
        "stack.entry_url: expected an http(s) URL like http://127.0.0.1:8080, got "
        '"http://127.0.0.1:99999"',
    ),
    (
        "allow target a URL",
        _with({("allow_targets",): ["https://staging.example.com"]}),
        "allow_targets[0]: expected a host name like staging.example.com, not a URL: "
        '"https://staging.example.com"',
    ),
    (
        "allow target not a host",
        _with({("allow_targets",): ["staging_example.com"]}),
        "allow_targets[0]: expected a host name like staging.example.com, "
        'got "staging_example.com"',
    ),
    (
        "env value a flag",
        _with({("stack",): {"env": {"DEBUG": True}}}),
        'stack.env.DEBUG: expected a string (quote it: "..."), got true',
    ),
    (
        "env name not a name",
        _with({("stack",): {"env": {"1X": "a"}}}),
        'stack.env: expected an environment variable name, got "1X"',
    ),
    (
        "compose file on a local stack",
        _with({("stack",): {"compose_file": "locust.py"}}),
        "stack.compose_file: only for kind compose, not local",
    ),
    # SLOs and guards
    (
        "slo a number",
        _with({("slos",): [5]}),
        "slos[0]: expected an expression string or {name, expr}, got 5",
    ),
    (
        "slo blank",
        _with({("slos",): ["  "]}),
        'slos[0]: expected an expression, got "  "',
    ),
    (
        "slo without expr",
        _with({("slos",): [{"name": "x"}]}),
        "slos[0].expr: required, but missing",
    ),
    (
        "duplicate slo",
        _with({("slos",): ["count(status == 500) == 0", "count(status == 500) == 0"]}),
        'slos[1].name: duplicate SLO name "count(status == 500) == 0" (also slos[0])',
    ),
    (
        "guard a mapping without a name",
        _with({("guards",): [{"expr": "abort if x"}]}),
        "guards[0].name: required, but missing",
    ),
]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_every_mistake_is_one_line_naming_the_file_the_path_and_the_value(
    tmp_path: Path, data: dict[str, Any], expected: str
) -> None:
    path = _write(tmp_path, data)
    assert _error(path) == f"{path}: {expected}"


def test_a_missing_locustfile_names_where_it_was_looked_for(tmp_path: Path) -> None:
    path = _write(tmp_path, _with({("load", "locustfile"): "users/shop.py"}))
    assert _error(path) == (
        f'{path}: load.locustfile: file not found: "users/shop.py" '
        f"(looked for {tmp_path / 'users' / 'shop.py'})"
    )


def test_a_missing_compose_file_names_where_it_was_looked_for(tmp_path: Path) -> None:
    path = _write(tmp_path, _with({("stack",): {"kind": "compose", "compose_file": "dc.yml"}}))
    assert _error(path) == (
        f'{path}: stack.compose_file: file not found: "dc.yml" (looked for {tmp_path / "dc.yml"})'
    )


def test_a_long_bad_value_is_cut_short(tmp_path: Path) -> None:
    path = _write(tmp_path, _with({("faults", 0, "for"): "x" * 500}))
    message = _error(path)
    assert len(message) < len(str(path)) + 120
    assert message.endswith('..."')


# --- the file itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x: y\n", "line 1, column 8: bad YAML: mapping values are not allowed here"),
        (
            "load:\n  phases: [a, b\n",
            "line 3, column 1: bad YAML: expected ',' or ']', but got '<stream end>'",
        ),
        ("name: a\nname: b\n", 'line 2, column 1: bad YAML: duplicate key "name"'),
        (
            "a: \x00\n",
            "bad YAML: unacceptable character #x0000: special characters are not allowed",
        ),
        ("", "the file is empty; a scenario needs at least load.phases"),
        ("# only a comment\n", "the file is empty; a scenario needs at least load.phases"),
        ("- a\n- b\n", "expected a mapping of keys (name, load, ...), got a list"),
        ("just words\n", 'expected a mapping of keys (name, load, ...), got "just words"'),
        ("--- {a: 1}\n--- {b: 2}\n", "line 2, column 1: bad YAML: but found another document"),
    ],
)
def test_a_file_that_is_not_a_scenario_mapping_is_one_line_too(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert _error(path) == f"{path}: {expected}"


def test_a_missing_file_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert _error(path) == f"{path}: cannot read: No such file or directory"


def test_a_directory_is_bad_input(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path}: cannot read: Is a directory"


def test_a_file_that_is_not_utf8_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    assert _error(path) == f"{path}: not UTF-8 text"


def test_python_objects_in_yaml_are_refused_not_built(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['true']\n")
    assert re.fullmatch(
        rf"{re.escape(str(path))}: line 1, column 7: bad YAML: could not determine a constructor "
        r"for the tag .*",
        _error(path),
    )
