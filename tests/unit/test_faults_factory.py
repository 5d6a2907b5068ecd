"""Scenario fault models bound to a stack, and faults rebuilt from their journal records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

import harness.faults
from harness import scenario
from harness.errors import BadInputError
from harness.faults import build_fault, fault_from_record, faults_of_scenario
from harness.faults.database import ThrottleDatabase
from harness.faults.maintenance import MaintenanceMode
from harness.faults.process import KillInstance, PauseInstance, RestartInstance
from harness.faults.toxic import AddToxics, DisableProxy
from harness.stack import Endpoint, Instance, LocalStack, Proxy, StackInfo

pytestmark = pytest.mark.unit

HOST = "127.0.0.1"
INFO = StackInfo(
    entry_url=f"http://{HOST}:18080",
    toxiproxy_url=f"http://{HOST}:18474",
    services=(),
    instances=tuple(Instance(f"app-{n}", Endpoint(HOST, 18000 + n), f"lb-app-{n}") for n in (1, 2)),
    proxies=(
        Proxy("lb-app-1", Endpoint(HOST, 18101), Endpoint(HOST, 18001)),
        Proxy("lb-app-2", Endpoint(HOST, 18102), Endpoint(HOST, 18002)),
        Proxy("app-db", Endpoint(HOST, 15433), Endpoint(HOST, 15432)),
    ),
    admin_token="tok",
)

_ANY_FAULT: TypeAdapter[Any] = TypeAdapter(scenario.AnyFault)


def spec(**fields: Any) -> scenario.Fault:
    model: scenario.Fault = _ANY_FAULT.validate_python({"name": "f", "at": "1s", **fields})
    return model


@pytest.fixture
def stack(tmp_path: Path) -> LocalStack:
    return LocalStack(tmp_path / "state")


@pytest.mark.parametrize(
    ("fields", "kind", "description"),
    [
        ({"action": "kill", "target": "app-2"}, KillInstance, "kill app-2 (SIGKILL)"),
        ({"action": "pause", "target": "app-1"}, PauseInstance, "pause app-1 (SIGSTOP)"),
        ({"action": "restart", "target": "app-1"}, RestartInstance, "restart app-1"),
        (
            {"action": "toxic", "target": "app-db", "params": {"type": "latency", "latency": 800}},
            AddToxics,
            "latency toxic harness-f (latency=800, jitter=0; downstream) on app-db",
        ),
        ({"action": "down", "target": "lb-app-2"}, DisableProxy, "disable proxy lb-app-2"),
        (
            {"action": "db-throttle", "params": {"rate": 50}},
            ThrottleDatabase,
            "slow database link app-db: 50 KB/s each way",
        ),
        ({"action": "maintenance"}, MaintenanceMode, "maintenance mode on"),
    ],
)
def test_each_scenario_action_builds_its_fault_and_survives_the_journal(
    fields: dict[str, Any], kind: type, description: str, stack: LocalStack
) -> None:
    fault = build_fault(spec(**fields), stack, INFO)
    assert type(fault) is kind
    assert fault.kind == fields["action"]
    assert fault.describe().startswith(description)

    rebuilt = fault_from_record(fault.to_record())  # as another process would

    assert type(rebuilt) is kind
    assert rebuilt.to_record() == fault.to_record()
    assert getattr(rebuilt, "stack", None).state_dir == stack.state_dir  # type: ignore[union-attr]


def test_instance_faults_know_where_the_instance_answers_health_checks(stack: LocalStack) -> None:
    fault = build_fault(spec(action="kill", target="app-2"), stack, INFO)
    assert fault.to_record()["healthz_url"] == f"http://{HOST}:18002/healthz"


def test_maintenance_asks_every_instance_directly(stack: LocalStack) -> None:
    record = build_fault(spec(action="maintenance"), stack, INFO).to_record()
    assert record["admin_urls"] == [
        f"http://{HOST}:18001/admin/maintenance",
        f"http://{HOST}:18002/admin/maintenance",
    ]
    assert record["admin_token"] == "tok"


def test_a_toxic_keeps_the_scenarios_stream_and_toxicity(stack: LocalStack) -> None:
    params = {"type": "bandwidth", "rate": 10, "stream": "upstream", "toxicity": 0.5}
    fault = build_fault(spec(action="toxic", target="lb-app-1", params=params), stack, INFO)
    (toxic,) = fault.to_record()["toxics"]
    assert toxic == {
        "name": "harness-f",
        "type": "bandwidth",
        "stream": "upstream",
        "toxicity": 0.5,
        "attributes": {"rate": 10},
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "kill", "target": "app-9"}, "unknown instance 'app-9'"),
        ({"action": "down", "target": "lb-app-9"}, "unknown proxy 'lb-app-9'"),
    ],
)
def test_a_target_the_stack_does_not_have_is_bad_input(
    fields: dict[str, Any], message: str, stack: LocalStack
) -> None:
    with pytest.raises(BadInputError, match=message):
        build_fault(spec(**fields), stack, INFO)


def test_faults_of_scenario_gives_each_fault_its_window(stack: LocalStack) -> None:
    faults = (
        spec(name="a", action="kill", target="app-1", **{"for": "5s"}),
        spec(name="b", action="maintenance", at="3s"),
    )
    scheduled = faults_of_scenario(faults, 60.0, stack, INFO)
    assert [(f.name, start, end) for f, start, end in scheduled] == [
        ("a", 1.0, 6.0),
        ("b", 3.0, 60.0),
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("not a mapping", "expected a mapping"),
        ({"v": 2, "kind": "kill", "name": "k"}, "format 2, this harness reads 1"),
        ({"v": 1, "kind": "flood", "name": "k"}, "unknown kind 'flood'"),
        (
            {"v": 1, "kind": "toxic", "name": "t", "target": "app-db", "toxiproxy_url": "x"},
            "toxics: expected a list",
        ),
        (
            {"v": 1, "kind": "maintenance", "name": "m", "admin_urls": [], "admin_token": "t"},
            "admin_urls: expected a list of strings",
        ),
        (
            {"v": 1, "kind": "kill", "name": "k", "target": "app-1", "healthz_url": "u"},
            "cannot find the stack again",
        ),
        (
            {
                "v": 1,
                "kind": "kill",
                "name": "k",
                "target": "app-1",
                "healthz_url": "u",
                "stack": {"kind": "unknown", "type": "ComposeStack"},
            },
            "only a local stack",
        ),
    ],
)
def test_a_record_this_harness_cannot_read_is_refused_saying_why(
    record: object, message: str
) -> None:
    with pytest.raises(BadInputError, match=message):
        fault_from_record(record)


def test_the_package_exports_exactly_what_it_names() -> None:
    for name in harness.faults.__all__:
        assert hasattr(harness.faults, name), name
    # isidentifier(): pytest's assert rewriting adds names like "@py_builtins" to the package.
    public = {n for n in vars(harness.faults) if n.isidentifier() and not n.startswith("_")}
    modules = {"base", "database", "factory", "http", "journal", "maintenance", "process"}
    modules |= {"envref", "exec_fault", "http_call", "http_toxic", "lease"}
    modules |= {
        "model",
        "registry",
        "rollback",
        "stackref",
        "sweep",
        "targets",
        "timeline",
        "toxic",
    }
    assert public - modules == set(harness.faults.__all__)


def test_a_compose_stack_reference_rebuilds_the_same_project(tmp_path: Path) -> None:
    from harness.faults.stackref import stack_from_ref, stack_ref
    from harness.stack.compose import ComposeStack, ComposeStackConfig

    compose_file = tmp_path / "docker-compose.yml"
    stack = ComposeStack(ComposeStackConfig(project="shop-x", compose_file=compose_file))
    ref = stack_ref(stack)
    assert ref == {"kind": "compose", "project": "shop-x", "compose_file": str(compose_file)}
    again = stack_from_ref(ref, required=True)
    assert isinstance(again, ComposeStack)
    assert again.to_ref() == ref
