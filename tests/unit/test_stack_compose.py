"""The compose stack without a Docker engine: the errors it gives and the pure helpers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness.cli import main
from harness.errors import BadInputError
from harness.run.preflight import resolve_scenario
from harness.run.request import ScenarioOverrides
from harness.run.stackup import check_fault_targets, compose_stack_of
from harness.scenario import load_scenario
from harness.stack import compose, compose_docker
from harness.stack.base import Endpoint, Instance, Proxy, StackInfo
from harness.stack.compose import (
    COMPOSE_DIR,
    DEFAULT_COMPOSE_FILE,
    ComposeStack,
    ComposeStackConfig,
    ComposeTopology,
    ProxySpec,
)

REPO = Path(__file__).resolve().parents[2]

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on port 1: the SDK's ping fails at once.
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")


@pytest.mark.parametrize("command", [["up"], ["down"], ["status"]])
def test_docker_not_running_is_exit_3_suggesting_the_local_stack(
    no_docker: None, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*command, "--stack", "compose", "--project", "harness-unit"])
    err = capsys.readouterr().err
    assert code == 3
    assert "Docker is not installed or not running" in err
    assert "--stack local" in err


def test_reference_round_trips() -> None:
    stack = ComposeStack(ComposeStackConfig(project="p", compose_file=Path("/x/compose.yml")))
    again = ComposeStack.from_ref(stack.to_ref())
    assert again.config.project == "p"
    assert again.config.compose_file == Path("/x/compose.yml")


def test_compose_command_prefers_an_explicit_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_COMPOSE_COMMAND", "podman-compose")
    assert compose_docker.compose_command() == ["podman-compose"]


def test_default_topology_is_the_sample_compose_file() -> None:
    # The defaults a scenario's stack section falls back to must name what the sample file has.
    sample = yaml.safe_load(DEFAULT_COMPOSE_FILE.read_text())
    topology = ComposeTopology()
    services = sample["services"]
    for service in (topology.entry_service, topology.toxiproxy_service, *topology.backends):
        assert service in services
    assert f"{topology.entry_port}" in services[topology.entry_service]["ports"][0]
    assert f"{topology.toxiproxy_port}" in services[topology.toxiproxy_service]["ports"][0]
    # Each backend is reached through a proxy of its own, found by its upstream's host.
    proxies = json.loads((COMPOSE_DIR / "config" / "toxiproxy.json").read_text())
    upstreams = {p["upstream"] for p in proxies}
    for backend in topology.backends:
        assert f"{backend}:{topology.backend_port}" in upstreams


@pytest.mark.integration  # runs the load probe, a Python child
def test_docker_not_running_makes_a_compose_run_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    code = main(
        [
            "run",
            str(REPO / "scenarios" / "ci_gate.yaml"),
            "--stack",
            "compose",
            "--reports",
            str(tmp_path / "reports"),
            "--state-dir",
            str(tmp_path / "state"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "Docker is not installed or not running" in err
    assert "--stack local" in err
    assert not (tmp_path / "reports").exists()  # nothing started, nothing recorded


@pytest.mark.parametrize(
    ("numbers", "names"),
    [([1], ["web"]), ([1, 2], ["web-1", "web-2"]), ([1, 3], ["web-1", "web-3"]), ([], [])],
)
def test_instances_are_named_by_service_or_by_container_number_when_scaled(
    numbers: list[int], names: list[str]
) -> None:
    assert compose.instance_names("web", numbers) == names


def _container(name: str, service: str, number: int = 1) -> Any:
    labels = {compose.SERVICE_LABEL: service, compose.NUMBER_LABEL: str(number)}
    return SimpleNamespace(name=name, labels=labels)


def _proxy(name: str, upstream: str) -> Proxy:
    return Proxy(name, Endpoint("0.0.0.0", 1), Endpoint(*upstream.split(":")[:1], 8000))


def test_the_proxy_in_front_of_an_instance_is_the_one_whose_upstream_is_it() -> None:
    proxies = [_proxy("lb-app-1", "app-1:8000"), _proxy("lb-web", "web:8000")]
    single = _container("harness-app-1-1", "app-1")
    assert compose_docker.proxy_in_front(proxies, "app-1", single) == "lb-app-1"
    # A proxy to a scaled service's name reaches any replica: it fronts none of them alone.
    replica = _container("own-web-2", "web", 2)
    assert compose_docker.proxy_in_front(proxies, "web-2", replica) == ""
    by_container = [_proxy("to-web-2", "own-web-2:8000")]
    assert compose_docker.proxy_in_front(by_container, "web-2", replica) == "to-web-2"


def test_a_reference_carries_an_own_topology_and_omits_the_default() -> None:
    assert "topology" not in ComposeStack().to_ref()
    topology = ComposeTopology(
        entry_service="gateway",
        entry_port=8080,
        ready_path="/ping",
        backends=("web", "worker"),
        backend_port=9000,
        health_path="/alive",
        toxiproxy_service="chaos",
        toxiproxy_port=9474,
        proxies=(ProxySpec("web-db", "0.0.0.0:15432", "db:5432"),),
    )
    stack = ComposeStack(ComposeStackConfig(project="own", topology=topology))
    ref = json.loads(json.dumps(stack.to_ref()))  # as the master gets it: through JSON
    assert ComposeStack.from_ref(ref).topology == topology


def test_a_reference_with_a_broken_topology_is_bad_input() -> None:
    ref = {"kind": "compose", "project": "p", "compose_file": "/x", "topology": {"entry": 1}}
    with pytest.raises(BadInputError, match="not a compose topology"):
        ComposeStack.from_ref(ref)


OWN_STACK = """\
stack:
  kind: compose
  compose_file: compose.yml
  project: own
  entry: {service: gateway, port: 80}
  backends: {services: [web]}
  toxiproxy: {service: chaos, port: 8474}
  proxies: [{name: web-db, listen: "0.0.0.0:15432", upstream: "db:5432"}]
"""
LOAD = """\
load:
  locustfile: users.py
  phases: [{name: only, duration: 10s, users: 1, spawn_rate: 1}]
faults:
  - {name: kill-web, action: kill, target: web-2, at: 1s, for: 2s}
"""


def _own_scenario(tmp_path: Path, stack: str = OWN_STACK) -> Path:
    (tmp_path / "compose.yml").write_text("services: {}\n")
    (tmp_path / "users.py").write_text("")
    path = tmp_path / "own.yaml"
    path.write_text(stack + LOAD)
    return path


def test_a_scenario_names_its_own_compose_topology(tmp_path: Path) -> None:
    stack = compose_stack_of(load_scenario(_own_scenario(tmp_path)))
    assert stack.project == "own"
    assert stack.config.compose_file == tmp_path / "compose.yml"
    topology = stack.topology
    assert (topology.entry_service, topology.entry_port, topology.ready_path) == (
        "gateway",
        80,
        "/readyz",  # what the section leaves out is the sample's
    )
    assert (topology.backends, topology.backend_port) == (("web",), 8000)
    assert (topology.toxiproxy_service, topology.toxiproxy_port) == ("chaos", 8474)
    assert topology.proxies == (ProxySpec("web-db", "0.0.0.0:15432", "db:5432"),)


def test_command_line_project_and_compose_file_override_the_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(_own_scenario(tmp_path))
    other = tmp_path / "other.yml"
    other.write_text("services: {}\n")
    assert compose_stack_of(scenario, "cli", other).project == "cli"
    assert compose_stack_of(scenario, "cli", other).config.compose_file == other
    monkeypatch.setenv("HARNESS_RUN_PROJECT", "from-env")
    monkeypatch.setenv("HARNESS_RUN_COMPOSE_FILE", str(other))
    assert compose_stack_of(scenario).project == "from-env"
    assert compose_stack_of(scenario).config.compose_file == other


def test_a_local_scenario_run_on_compose_gets_the_sample_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HARNESS_RUN_PROJECT", raising=False)
    monkeypatch.delenv("HARNESS_RUN_COMPOSE_FILE", raising=False)
    overrides = ScenarioOverrides(stack="compose")
    scenario = resolve_scenario(REPO / "scenarios" / "ci_gate.yaml", overrides)
    assert scenario.stack.kind == "compose"
    stack = compose_stack_of(scenario)
    assert (stack.project, stack.config.compose_file) == ("harness", DEFAULT_COMPOSE_FILE)
    assert stack.topology == ComposeTopology()


def test_a_compose_scenario_run_on_the_local_stack_drops_its_compose_section(
    tmp_path: Path,
) -> None:
    # Its faults must fit the local stack then: this one names none.
    path = _own_scenario(tmp_path)
    path.write_text(OWN_STACK + LOAD.split("faults:")[0])
    scenario = resolve_scenario(path, ScenarioOverrides(stack="local"))
    assert scenario.stack.kind == "local"
    assert (scenario.stack.project, scenario.stack.backends, scenario.stack.proxies) == (
        None,
        None,
        (),
    )


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        (
            OWN_STACK.replace("kind: compose", "kind: local"),
            "stack.compose_file: only for kind compose, not local",
        ),
        (
            OWN_STACK.replace("services: [web]", "services: []"),
            "stack.backends.services: expected at least one service",
        ),
        (
            OWN_STACK.replace("services: [web]", "services: [web, web]"),
            'stack.backends.services[1]: "web" is listed twice',
        ),
        (
            OWN_STACK.replace("port: 80}", "port: 0}"),
            "stack.entry.port: expected a port number from 1 to 65535, got 0",
        ),
        (
            OWN_STACK.replace("port: 80}", "port: 80, ready_path: ping}"),
            'stack.entry.ready_path: expected a URL path like /healthz, got "ping"',
        ),
        (
            OWN_STACK.replace('"db:5432"', '"db"'),
            'stack.proxies[0].upstream: expected host:port like 0.0.0.0:15432 or db:5432, got "db"',
        ),
        (
            OWN_STACK.replace("project: own", "project: Own.Shop"),
            "stack.project: expected a compose project name (lowercase letters, digits, '-' and "
            "'_'), got \"Own.Shop\"",
        ),
        (
            OWN_STACK.replace("{service: chaos, port: 8474}", "{service: chaos, api: 8474}"),
            'stack.toxiproxy.api: unknown key "api"',
        ),
    ],
)
def test_a_wrong_compose_stack_section_is_one_line_naming_the_field(
    tmp_path: Path, stack: str, message: str
) -> None:
    with pytest.raises(BadInputError) as caught:
        load_scenario(_own_scenario(tmp_path, stack))
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path / 'own.yaml'}: {message}")


def _info(instances: tuple[str, ...], proxies: tuple[str, ...]) -> StackInfo:
    return StackInfo(
        entry_url="http://127.0.0.1:1",
        toxiproxy_url="http://127.0.0.1:2",
        services=(),
        instances=tuple(Instance(n, Endpoint("10.0.0.1", 8000), "") for n in instances),
        proxies=tuple(_proxy(n, "db:5432") for n in proxies),
        admin_token="",
    )


def test_a_fault_on_an_instance_the_project_lacks_is_named_before_the_load(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(_own_scenario(tmp_path))
    check_fault_targets(scenario, _info(("web-1", "web-2"), ("web-db",)), "own.yaml")
    with pytest.raises(
        BadInputError,
        match=r"^own.yaml: faults\[0\].target: no instance 'web-2' in the stack \(it has web\)$",
    ):
        check_fault_targets(scenario, _info(("web",), ("web-db",)), "own.yaml")


def test_only_ports_a_compose_file_publishes_through_our_variables_are_checked(
    tmp_path: Path,
) -> None:
    """The sample publishes the entry and the API on HARNESS_*_PORT; a project of a user's own
    that lets Docker pick its host ports takes neither, so a local stack on 8080 is no clash."""
    sample = compose._variables_used(compose.DEFAULT_COMPOSE_FILE)
    assert sample == {"HARNESS_ENTRY_PORT", "HARNESS_TOXIPROXY_PORT"}
    own = Path(__file__).parents[1] / "docker" / "own_project" / "compose.yml"
    assert compose._variables_used(own) == frozenset()
    assert compose._variables_used(tmp_path / "missing.yml") == sample  # unreadable: check all
