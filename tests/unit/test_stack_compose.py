"""The compose stack without a Docker engine: the errors it gives and the pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import BadInputError
from harness.stack import compose
from harness.stack.compose import ComposeStack, ComposeStackConfig

pytestmark = pytest.mark.unit


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


def test_unknown_instance_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = ComposeStack()
    with pytest.raises(BadInputError, match="unknown instance 'app-9'"):
        stack._instance("app-9")


def test_reference_round_trips() -> None:
    stack = ComposeStack(ComposeStackConfig(project="p", compose_file=Path("/x/compose.yml")))
    again = ComposeStack.from_ref(stack.to_ref())
    assert again.config.project == "p"
    assert again.config.compose_file == Path("/x/compose.yml")


def test_compose_command_prefers_an_explicit_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_COMPOSE_COMMAND", "podman-compose")
    assert compose.compose_command() == ["podman-compose"]


def test_proxies_come_from_the_mounted_toxiproxy_config() -> None:
    proxies = ComposeStack()._proxies()
    by_name = {p.name: p for p in proxies}
    assert set(by_name) == {"lb-app-1", "lb-app-2", "lb-app-3", "app-db"}
    assert by_name["app-db"].upstream.address == "postgres:5432"
    assert by_name["lb-app-2"].upstream.address == "app-2:8000"
