"""The scenario package's face, and the fault families' models joining it through the registry."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest
from pydantic import TypeAdapter

import harness.scenario
from harness.faults.model import FaultModel
from harness.faults.registry import FAULT_ACTIONS, FAULT_FAMILIES, fault_models

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.


def test_the_package_exports_exactly_what_it_names() -> None:
    for name in harness.scenario.__all__:
        assert hasattr(harness.scenario, name), name
    public = {n for n in vars(harness.scenario) if n.isidentifier() and not n.startswith("_")}
    modules = {
        "checks",
        "faults",
        "fields",
        "load",
        "loader",
        "messages",
        "model",
        "regression",
        "stack",
    }
    assert public - modules == set(harness.scenario.__all__)


def test_every_registered_action_validates_into_its_familys_model() -> None:
    adapter: TypeAdapter[FaultModel] = TypeAdapter(harness.scenario.AnyFault)
    params = {
        "toxic": {"type": "latency", "latency": 1},
        "db-throttle": {"rate": 1},
        "http-delay": {"delay": "1s"},
    }
    call = {"url": "http://127.0.0.1:9/flag"}
    # The families users define take no target, only what to run or call.
    own = {
        "exec": {"inject": ["true"], "revert": ["true"]},
        "http": {"inject": call, "revert": call},
    }
    for action, family in FAULT_FAMILIES.items():
        entry = {"name": "f", "action": action, "target": "app-1", "at": "1s"}
        if action in ("maintenance", *own):
            del entry["target"]
        if action in params:
            entry["params"] = params[action]
        entry |= own.get(action, {})
        assert type(adapter.validate_python(entry)) is family.model


def test_the_union_holds_each_familys_model_once() -> None:
    members = typing.get_args(typing.get_args(harness.scenario.AnyFault)[0])
    assert members == fault_models()
    assert harness.scenario.FAULT_ACTIONS == FAULT_ACTIONS


@pytest.mark.integration  # a fresh Python child
def test_the_fault_models_load_without_the_scenario_package() -> None:
    # faults sits below scenario: importing every fault family must not pull scenario in.
    code = (
        "import sys, harness.faults.registry; "
        "assert not [m for m in sys.modules if m.startswith('harness.scenario')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
