"""The stack registry: every stack is built through it, from a scenario section or a reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import BadInputError, StackError
from harness.stack.base import ProcessState, Stack, StackOptions
from harness.stack.compose import ComposeStack
from harness.stack.external import ExternalStack
from harness.stack.local import LocalStack
from harness.stack.registry import BACKENDS, KINDS, backend, stack_for, stack_from_ref

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Section:
    """A scenario's stack section as the registry reads it (harness.scenario.Stack in real use)."""

    kind: str = "local"
    entry_url: str | None = None
    toxiproxy_url: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    compose_file: Path | None = None
    project: str | None = None
    entry: None = None
    backends: None = None
    toxiproxy: None = None
    proxies: tuple[()] = ()


def test_every_backend_is_registered_under_its_own_kind() -> None:
    assert KINDS == ("local", "compose", "external")
    for kind, found in BACKENDS.items():
        assert found.kind == kind


def test_an_unknown_kind_is_bad_input_naming_the_kinds() -> None:
    with pytest.raises(BadInputError, match="expected one of local, compose, external, got 'k8s'"):
        backend("k8s")


def test_a_local_section_is_a_local_stack_in_the_state_dir_with_the_scenario_env(
    tmp_path: Path,
) -> None:
    stack = stack_for(Section(env=(("SHOP_MAX_INFLIGHT", "8"),)), StackOptions(tmp_path))
    assert isinstance(stack, LocalStack)
    assert stack.state_dir == tmp_path.absolute()
    assert stack.journal_dir == tmp_path.absolute()
    assert stack.to_ref() == {"kind": "local", "state_dir": str(tmp_path.absolute())}


def test_a_compose_section_takes_the_command_line_project_over_the_scenario(
    tmp_path: Path,
) -> None:
    section = Section(kind="compose", project="from-scenario")
    stack = stack_for(section, StackOptions(tmp_path, compose_project="from-flag"))
    assert isinstance(stack, ComposeStack)
    assert stack.project == "from-flag"
    assert stack.config.compose_file == (REPO / "compose" / "docker-compose.yml").absolute()
    assert stack.journal_dir == tmp_path.absolute()


def test_an_external_section_starts_nothing_and_describes_its_urls(tmp_path: Path) -> None:
    section = Section(kind="external", entry_url="http://127.0.0.1:9/")
    stack = stack_for(section, StackOptions(tmp_path))
    assert isinstance(stack, ExternalStack)
    lines: list[str] = []
    info = stack.bring_up(lines.append)
    assert (info.entry_url, info.toxiproxy_url, info.proxies) == ("http://127.0.0.1:9/", "", ())
    assert stack.reused
    assert stack.journal_dir == tmp_path.absolute()  # its faults are journaled like any other
    assert not stack.status().exists
    stack.down()  # never stops what it did not start
    with pytest.raises(BadInputError, match="no instances the harness controls"):
        stack.kill("app-1")
    assert stack.owns_host("127.0.0.1")
    assert not stack.owns_host("192.0.2.1")


def test_an_external_stacks_proxies_are_those_its_toxiproxy_lists(tmp_path: Path) -> None:
    section = Section(
        kind="external", entry_url="http://127.0.0.1:9/", toxiproxy_url="http://127.0.0.1:1/"
    )
    stack = stack_for(section, StackOptions(tmp_path))
    with pytest.raises(StackError, match=r"the Toxiproxy API at http://127.0.0.1:1/ does not"):
        stack.info()
    # Not the harness's to watch: taken as alive, so an unreachable revert is never "gone".
    (server,) = stack.status().processes
    assert server.state is ProcessState.ALIVE


def test_front_proxy_and_a_toxiproxy_of_ones_own_do_not_go_together(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"not with stack\.toxiproxy_url"):
        ExternalStack(
            "http://127.0.0.1:9", "http://127.0.0.1:8", state_dir=tmp_path, front_proxy=True
        )


@pytest.mark.parametrize(
    "section",
    [
        Section(),
        Section(kind="external", entry_url="http://127.0.0.1:9/"),
    ],
)
def test_a_reference_rebuilds_the_same_stack_through_the_registry(
    section: Section, tmp_path: Path
) -> None:
    stack = stack_for(section, StackOptions(tmp_path))
    again = stack_from_ref(stack.to_ref(), state_dir=tmp_path)
    assert type(again) is type(stack)
    assert again.to_ref() == stack.to_ref()


@pytest.mark.parametrize(
    "ref",
    [
        None,
        "local",
        {"kind": "unknown", "type": "ComposeStack"},
        {"kind": "local"},
        {"kind": "local", "state_dir": 7},
        {"kind": "compose", "project": "p"},
        {"kind": "external"},
        {"kind": "external", "entry_url": "http://127.0.0.1/", "toxiproxy_url": 3},
    ],
)
def test_a_reference_that_names_no_known_stack_is_bad_input(ref: object, tmp_path: Path) -> None:
    with pytest.raises(BadInputError):
        stack_from_ref(ref, state_dir=tmp_path)


def test_every_backend_satisfies_the_stack_protocol(tmp_path: Path) -> None:
    stacks = [
        stack_for(Section(), StackOptions(tmp_path)),
        stack_for(Section(kind="compose"), StackOptions(tmp_path)),
        stack_for(Section(kind="external", entry_url="http://127.0.0.1/"), StackOptions(tmp_path)),
    ]
    assert all(isinstance(stack, Stack) for stack in stacks)
