"""Whatever a scenario file holds, loading it gives a Scenario or one line of BadInputError.

Three sources of documents: arbitrary nested data, a valid scenario with one part swapped for
arbitrary data (so the deep validators are reached, not only the unknown-key check at the top),
and arbitrary text (so the YAML error paths are too).
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

VALID: dict[str, Any] = {
    "name": "fuzz",
    "stack": {"kind": "local", "env": {"SHOP_A": "1"}},
    "allow_targets": ["staging.example.com"],
    "load": {
        "locustfile": "locust.py",
        "user_classes": ["ShopUser"],
        "workers": 0,
        "phases": [
            {"name": "warmup", "duration": "10s", "users": 10, "spawn_rate": 5},
            {"name": "spike", "duration": "20s", "users": 50, "spawn_rate": 25},
        ],
    },
    "faults": [
        {"name": "kill", "action": "kill", "target": "app-1", "at": "12s", "for": "8s"},
        {
            "name": "slow",
            "action": "toxic",
            "target": "app-db",
            "at": "0s",
            "params": {"type": "latency", "latency": 200, "jitter": 5, "toxicity": 0.5},
        },
        {"name": "throttle", "action": "db-throttle", "at": "20s", "params": {"rate": 100}},
        {"name": "maint", "action": "maintenance", "at": "25s", "for": "2s"},
    ],
    "slos": ["count(status == 500) == 0", {"name": "n", "expr": "x"}],
    "guards": ["abort if ratio(status >= 500) > 50% for 5s"],
}

# Keys the model knows, so random mappings sometimes hit a real field with a wrong value.
KNOWN_KEYS = sorted(
    {
        field.alias or name
        for model in (
            model_module.Scenario,
            model_module.Stack,
            model_module.Load,
            model_module.Phase,
            model_module.ToxicFault,
            model_module.ToxicParams,
            model_module.DbThrottleParams,
            model_module.Slo,
        )
        for name, field in model.model_fields.items()
    }
)
ACTION_WORDS = ["kill", "pause", "restart", "toxic", "down", "db-throttle", "maintenance"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["10s", "0s", "1m30s", "500ms", "30", "app-1", "lb-app-1", "app-db"]),
    st.sampled_from([*ACTION_WORDS, "latency", "bandwidth", "slicer", "external", "compose"]),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8), st.integers())
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=20,
)

FUZZ = settings(
    max_examples=examples(200),  # a quarter of it outside CI (fuzz_budget.py)
    deadline=None,
    derandomize=True,  # the same examples in CI every time
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "locust.py").write_text("# users\n")
    return directory


def _load_text(workdir: Path, text: str) -> Scenario | None:
    path = workdir / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_scenario(path)
    except BadInputError as exc:  # anything else fails the test, with its traceback
        message = str(exc)
        assert message.startswith(f"{path}: ")
        assert len(message.splitlines()) == 1
        assert "Traceback" not in message
        assert "validation error" not in message  # pydantic's own dump never leaks
        return None


def _load(workdir: Path, document: object) -> Scenario | None:
    return _load_text(workdir, yaml_text(document, allow_unicode=True))


def test_the_fuzz_base_is_itself_valid(workdir: Path) -> None:
    assert _load(workdir, VALID) is not None


@FUZZ
@given(document=documents)
def test_arbitrary_documents_load_or_fail_as_bad_input(workdir: Path, document: object) -> None:
    _load(workdir, document)


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> Any:
    """VALID with one value (at any depth) replaced, or one key added, removed or renamed."""
    data = copy.deepcopy(VALID)
    node: Any = data
    while True:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        branches = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
        if not branches or draw(st.booleans()):
            break
        _, node = draw(st.sampled_from(branches))
    how = draw(st.sampled_from(["replace", "add", "remove", "rename"]))
    slots = list(node) if isinstance(node, dict) else list(range(len(node)))
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
@given(document=mutated_scenarios())
def test_a_scenario_with_one_part_broken_loads_or_fails_as_bad_input(
    workdir: Path, document: Any
) -> None:
    scenario = _load(workdir, document)
    if scenario is not None:
        # Whatever loads must also survive the run directory's round trip.
        resolved = json.loads(json.dumps(scenario.to_dict(), allow_nan=False))
        assert Scenario.from_dict(resolved) == scenario


@FUZZ
@given(text=st.text(max_size=200))
def test_arbitrary_text_loads_or_fails_as_bad_input(workdir: Path, text: str) -> None:
    _load_text(workdir, text)


@FUZZ
@given(
    text=st.text(
        alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#%@`,? \n\t0123456789.")), max_size=80
    )
)
def test_yaml_punctuation_soup_loads_or_fails_as_bad_input(workdir: Path, text: str) -> None:
    _load_text(workdir, text)
