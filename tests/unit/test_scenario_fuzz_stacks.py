"""More of the scenario loader under fuzzing: the parts ``test_scenario_fuzz.py`` does not start
from (an external stack with allowed hosts and post-run checks, a compose stack with its
topology, an open load model with a capacity search), and hosts allowed from the command line.
Whatever the document, loading gives a Scenario or one line of BadInputError.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import scenario as model_module
from harness.errors import BadInputError
from harness.scenario import Scenario, load_scenario

from .fuzz_budget import examples
from .yaml_text import yaml_text

pytestmark = pytest.mark.unit

PHASES = [
    {"name": "warmup", "duration": "10s", "users": 10, "spawn_rate": 5},
    {"name": "spike", "duration": "20s", "users": 50, "spawn_rate": 25},
]
BASES: dict[str, dict[str, Any]] = {
    "external": {
        "name": "ext",
        "stack": {
            "kind": "external",
            "entry_url": "https://staging.example.com:8443/shop",
            "toxiproxy_url": "http://10.0.0.5:8474",
        },
        "allow_targets": ["staging.example.com", "10.0.0.5"],
        "load": {"locustfile": "locust.py", "phases": PHASES},
        "faults": [
            {
                "name": "slow",
                "action": "toxic",
                "target": "db",
                "at": "1s",
                "for": "5s",
                "params": {"type": "slicer", "average_size": 64, "size_variation": 8},
            },
            {"name": "cut", "action": "down", "target": "db"},
        ],
        "slos": [{"name": "orders-kept", "expr": "count(status == 500) == 0"}],
        "checks": [
            {"name": "orders", "sql": "SELECT count(*) FROM orders", "dsn": "${SHOP_DSN}"},
            {"name": "stock", "http": "/stats", "field": "stock.total"},
        ],
    },
    "compose": {
        "name": "comp",
        "stack": {
            "kind": "compose",
            "project": "myshop",
            "entry": {"service": "web", "port": 80, "ready_path": "/readyz"},
            "backends": {"services": ["api-1", "api-2"], "port": 8000, "health_path": "/h"},
            "toxiproxy": {"service": "toxiproxy", "port": 8474},
            "proxies": [{"name": "db", "listen": "0.0.0.0:15433", "upstream": "postgres:5432"}],
            "env": {"SHOP_X": "1"},
        },
        "load": {"locustfile": "locust.py", "workers": 2, "phases": PHASES},
        "faults": [{"name": "k", "action": "pause", "target": "api-1", "at": "3s", "for": "2s"}],
        "guards": [{"name": "g", "expr": "abort if ratio(status >= 500) > 50% for 5s"}],
    },
    "open": {
        "name": "open",
        "load": {
            "locustfile": "locust.py",
            "model": "open",
            "max_in_flight": 200,
            "phases": [{"name": "steady", "duration": "30s", "rate": 20}],
        },
        "faults": [
            {
                "name": "thr",
                "action": "db-throttle",
                "at": "1s",
                "params": {"latency": 50, "jitter": 5},
            }
        ],
        "capacity": {"start": 5, "step": 5, "hold": "5s", "max": 50, "faults": ["thr"]},
        "slos": ["ratio(status == 503) < 5%"],
    },
}

KNOWN_KEYS = sorted(
    {
        field.alias or name
        for model in (
            model_module.Scenario,
            model_module.Stack,
            model_module.ComposeEntry,
            model_module.ComposeBackends,
            model_module.ComposeToxiproxy,
            model_module.ProxyLink,
            model_module.Load,
            model_module.Phase,
            model_module.Capacity,
            model_module.PostCheck,
        )
        for name, field in model.model_fields.items()
    }
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "http://127.0.0.1:8080",
            "https://staging.example.com",
            "ftp://x",
            "http://[::1]:1/",
            "http://user:pw@host:99999",
            "${SHOP_DSN}",
            "$(touch x)",
            "/stats",
            "stats",
            "a.b.c",
            "0.0.0.0:1",
            ":80",
            "open",
            "closed",
            "compose",
            "external",
            "5s",
            "0s",
        ]
    ),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=16,
)
FUZZ = settings(
    max_examples=examples(150),  # a quarter of it outside CI (fuzz_budget.py)
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hosts = st.one_of(
    st.sampled_from(["staging.example.com", "10.0.0.5", "::1", "LOCALHOST.", "a_b", "x:1", ""]),
    st.text(max_size=10),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz-stacks")
    (directory / "locust.py").write_text("# users\n")
    return directory


def _load(workdir: Path, document: object, allow: list[str] | None = None) -> Scenario | None:
    path = workdir / "fuzz.yaml"
    path.write_text(yaml_text(document, allow_unicode=True), encoding="utf-8")
    try:
        return load_scenario(path, allow_targets=allow or [])
    except BadInputError as exc:  # anything else fails the test, with its traceback
        message = str(exc)
        assert message.startswith(f"{path}: ")
        assert len(message.splitlines()) == 1
        assert "validation error" not in message
        return None


@pytest.mark.parametrize("base", sorted(BASES))
def test_the_fuzz_bases_are_valid(workdir: Path, base: str) -> None:
    assert _load(workdir, BASES[base]) is not None


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """One base with one value (at any depth) replaced, or a key added, removed or renamed."""
    data = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    node: Any = data
    while True:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        branches = [v for _, v in children if isinstance(v, dict | list) and v]
        if not branches or draw(st.booleans()):
            break
        node = draw(st.sampled_from(branches))
    slots = list(node) if isinstance(node, dict) else list(range(len(node)))
    how = draw(st.sampled_from(["replace", "add", "remove", "rename"]))
    if how == "add" or not slots:
        if isinstance(node, dict):
            node[draw(keys)] = draw(documents)
        else:
            node.append(draw(documents))
        return data
    slot = draw(st.sampled_from(slots))
    if how == "remove":
        del node[slot]
    elif how == "rename" and isinstance(node, dict):
        node[draw(keys)] = node.pop(slot)
    else:
        node[slot] = draw(documents)
    return data


@FUZZ
@given(document=mutated())
def test_a_broken_stack_check_or_capacity_loads_or_fails_as_bad_input(
    workdir: Path, document: Any
) -> None:
    scenario = _load(workdir, document)
    if scenario is not None:
        resolved = json.loads(json.dumps(scenario.to_dict(), allow_nan=False))
        assert Scenario.from_dict(resolved) == scenario


@FUZZ
@given(document=mutated(), allow=st.lists(hosts, max_size=3))
def test_hosts_allowed_from_the_command_line_load_or_fail_as_bad_input(
    workdir: Path, document: Any, allow: list[str]
) -> None:
    scenario = _load(workdir, document, allow)
    if scenario is not None:
        # Every host allowed on the command line is in the scenario, as the run records it.
        assert all(h.strip().lower().rstrip(".") in scenario.allow_targets for h in allow)
