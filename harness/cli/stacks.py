"""Every stack the CLI builds, and every choice it makes by stack kind, in one module.

The stack commands (``up``, ``down``, ``status``) act on the local stack or a compose project,
as ``--stack`` says; here their flags become a :class:`LocalStack` or a :class:`ComposeStack`,
and the few things that differ by kind (what ``up`` and ``down`` report, ``--purge``) are
decided: these commands take flags (ports, the Toxiproxy flavour, ``--purge``) that only those
two backends have. The commands that run a scenario hand their ``--stack`` to the run pipeline,
which builds its stack through the stack registry (:mod:`harness.stack.registry`), so a new
backend runs scenarios without any change here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import BadInputError
from harness.stack.base import StackInfo, StackStatus
from harness.stack.config import LocalStackConfig, ToxiproxyKind, parse_env_pairs
from harness.stack.local import LocalStack
from harness.stack.ports import StackPorts

if TYPE_CHECKING:
    from harness.stack.compose import ComposeStack

__all__ = ["StackFlags", "UpFlags", "bring_up", "stack_for", "stack_status", "take_down"]


@dataclass(frozen=True)
class StackFlags:
    """Which stack a stack command acts on: ``kind`` is ``local`` or ``compose``; the compose
    project is named by ``project`` and ``compose_file``, else by ``scenario_file``'s stack
    section, else the defaults."""

    kind: str
    state_dir: Path
    project: str = ""
    compose_file: Path | None = None
    scenario_file: Path | None = None


@dataclass(frozen=True)
class UpFlags:
    """What ``up`` asks of the stack it starts. ``ports`` is keyed by :class:`StackPorts`
    field; a compose project takes only the entry and Toxiproxy ports, the token and the env."""

    ports: Mapping[str, Any]
    toxiproxy: ToxiproxyKind = "auto"
    admin_token: str = ""
    app_env: tuple[str, ...] = ()


def stack_for(flags: StackFlags, up: UpFlags | None = None) -> LocalStack | ComposeStack:
    """The stack ``flags`` name, configured as ``up`` asks (as it stands, without ``up``).
    Nothing is started."""
    if flags.kind == "compose":
        if up is None:
            return _compose_stack(flags)
        return _compose_stack(
            flags,
            entry_port=up.ports["entry"],
            toxiproxy_port=up.ports["toxiproxy_api"],
            admin_token=up.admin_token,
            app_env=parse_env_pairs(up.app_env),
        )
    if up is None:
        return LocalStack(flags.state_dir)
    ports = StackPorts(**up.ports)
    env = parse_env_pairs(up.app_env)
    config = LocalStackConfig(
        ports=ports,
        toxiproxy=up.toxiproxy,
        admin_token=up.admin_token,
        app_env=env,
        base_env=env,  # a person's settings: a run's stack.env goes on top of them
    )
    return LocalStack(flags.state_dir, config)


def bring_up(flags: StackFlags, up: UpFlags) -> tuple[str, StackInfo]:
    """Start the stack (or keep the healthy one that is up): a line that says which, and what
    it serves."""
    stack = stack_for(flags, up)
    started = time.monotonic()
    info = stack.up()
    elapsed = time.monotonic() - started
    if isinstance(stack, LocalStack):
        if stack.reused:
            return f"stack already up in {stack.state_dir}, healthy: left as is", info
        return f"stack up in {elapsed:.1f}s (state in {stack.state_dir})", info
    state = "already up, healthy: left as is" if stack.reused else f"up in {elapsed:.1f}s"
    return f"compose project {stack.project!r} {state}", info


def take_down(flags: StackFlags, *, purge: bool) -> str:
    """Stop the stack (``purge``: and delete the local stack's database); a line that says so.
    A compose project loses its containers, networks and volumes whatever ``purge`` says."""
    stack = stack_for(flags)
    if isinstance(stack, LocalStack):
        stack.down(purge=purge)
        return f"stack in {stack.state_dir} is down"
    stack.down()
    return f"compose project {stack.project!r} is down"


def stack_status(flags: StackFlags) -> StackStatus:
    """Each process (or container) of the stack, as it is now."""
    return stack_for(flags).status()


def _compose_stack(flags: StackFlags, **settings: Any) -> ComposeStack:
    """The compose project the flags name; ``--scenario``'s stack section fills in what they
    do not say, and the project's topology."""
    # deferred: the compose backend brings in the Toxiproxy client (requests), for compose alone
    from harness.stack.compose import (
        DEFAULT_COMPOSE_FILE,
        DEFAULT_PROJECT,
        ComposeStack,
        ComposeStackConfig,
        ComposeTopology,
    )
    from harness.stack.compose_config import topology_of  # deferred: as above

    project, compose_file = flags.project, flags.compose_file
    topology, env = ComposeTopology(), tuple(settings.pop("app_env", ()))
    if flags.scenario_file is not None:
        # deferred: pydantic (the scenario models), for --scenario alone
        from harness.scenario import load_scenario

        stack = load_scenario(flags.scenario_file).stack
        if stack.kind != "compose":
            raise BadInputError(
                f"{flags.scenario_file}: stack.kind: expected compose, got {stack.kind}"
            )
        topology = topology_of(stack)
        project = project or stack.project or ""
        compose_file = compose_file or stack.compose_file
        env = (*stack.env, *env)
    config = ComposeStackConfig(
        project=project or DEFAULT_PROJECT,
        compose_file=(compose_file or DEFAULT_COMPOSE_FILE).absolute(),
        app_env=env,
        topology=topology,
        **settings,
    )
    return ComposeStack(config)
