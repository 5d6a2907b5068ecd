"""Every place the run layer builds a stack or asks which kind it is, in one module: the stack a
run goes against (brought up, or a healthy one reused), the faults it can take, the compose
project a scenario names, and, in the Locust master, the stack found again from its command line.

The rest of the run layer gets a :class:`RunStack` and never asks for a stack's kind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInputError, InfrastructureError, StackError
from harness.load.launch import MasterArgs
from harness.run.request import RunRequest
from harness.run.settle import rollback_faults
from harness.scenario import INSTANCE_ACTIONS, TOXIPROXY_ACTIONS, Scenario
from harness.scenario import Stack as ScenarioStack
from harness.stack.base import Stack, StackInfo
from harness.stack.compose import (
    DEFAULT_COMPOSE_FILE,
    DEFAULT_PROJECT,
    ComposeStack,
    ComposeStackConfig,
    ComposeTopology,
)
from harness.stack.compose_config import COMPOSE_FILE_ENV, PROJECT_ENV, topology_of
from harness.stack.config import LocalStackConfig
from harness.stack.local import LocalStack
from harness.stack.state import StateDir

__all__ = [
    "RunStack",
    "bring_up_stack",
    "check_fault_targets",
    "check_faults_supported",
    "compose_stack_of",
    "compose_topology",
    "fault_journal_dir",
    "master_stack",
    "stack_up",
]


@dataclass(frozen=True)
class RunStack:
    """The stack a run goes against, up: what the pipeline passes on to the master, the fault
    rollback and the post-run checks."""

    kind: str
    info: StackInfo
    # Where its fault journal lives: the state directory, for every stack the harness runs;
    # None for an external stack (no faults).
    state_dir: Path | None
    compose: ComposeStack | None = None

    @property
    def ref(self) -> str:
        """JSON of the reference the master finds the stack again from; empty: none needed."""
        return json.dumps(self.compose.to_ref()) if self.compose is not None else ""

    @property
    def compose_project(self) -> str:
        return self.compose.project if self.compose is not None else ""


def stack_up(scenario: Scenario, request: RunRequest, tell: Callable[[str], None]) -> RunStack:
    """The scenario's stack, up (:func:`bring_up_stack`), with the command line's compose
    project and file for a compose scenario."""
    kind = scenario.stack.kind
    compose = (
        compose_stack_of(scenario, request.compose_project, request.compose_file)
        if kind == "compose"
        else None
    )
    info = bring_up_stack(scenario, request.state_dir, tell, compose=compose)
    return RunStack(
        kind=kind,
        info=info,
        state_dir=request.state_dir if kind != "external" else None,
        compose=compose,
    )


def check_faults_supported(scenario: Scenario) -> None:
    """Refuse faults this harness cannot inject, before anything starts: running the load
    without them would pass a test that never happened."""
    if scenario.faults and scenario.stack.kind == "external":
        raise BadInputError(
            f"scenario {scenario.name!r}: faults need a stack the harness runs (local or "
            f"compose), not {scenario.stack.kind}"
        )


def compose_stack_of(
    scenario: Scenario, project: str = "", compose_file: Path | None = None
) -> ComposeStack:
    """The compose project a scenario of stack kind compose runs against. The command line
    (``project``, ``compose_file``, or their variables) overrides the scenario's stack section,
    which overrides the sample stack (``harness``, compose/docker-compose.yml). The topology
    (entry, backends, Toxiproxy, proxies) is the scenario's, else the sample's."""
    stack = scenario.stack
    file = (
        compose_file
        or Path(os.environ.get(COMPOSE_FILE_ENV) or stack.compose_file or DEFAULT_COMPOSE_FILE)
    ).absolute()
    if not file.is_file():
        raise BadInputError(f"compose file not found: {file}")
    topology = compose_topology(stack)
    return ComposeStack(
        ComposeStackConfig(
            project=project or os.environ.get(PROJECT_ENV) or stack.project or DEFAULT_PROJECT,
            compose_file=file,
            app_env=tuple(stack.env),
            topology=topology,
        )
    )


def compose_topology(stack: ScenarioStack) -> ComposeTopology:
    """Which services of a compose project play which part, as the scenario's stack section
    says; what it leaves out is the sample stack's."""
    return topology_of(stack)


def check_fault_targets(scenario: Scenario, info: StackInfo, where: str) -> None:
    """Every instance and proxy the faults name exists in the stack that is up (a compose
    project's are known only once it runs): one line naming the fault, before any load."""
    for index, fault in enumerate(scenario.faults):
        if fault.target is None:
            continue
        if fault.action in INSTANCE_ACTIONS:
            known = [i.name for i in info.instances]
            what = "instance"
        elif fault.action in TOXIPROXY_ACTIONS:
            known = [p.name for p in info.proxies]
            what = "Toxiproxy proxy"
        else:
            continue
        if fault.target not in known:
            raise BadInputError(
                f"{where}: faults[{index}].target: no {what} {fault.target!r} in the stack "
                f"(it has {', '.join(known) or 'none'})"
            )


def bring_up_stack(
    scenario: Scenario,
    state_dir: Path,
    tell: Callable[[str], None],
    *,
    compose: ComposeStack | None = None,
) -> StackInfo:
    """The stack the scenario runs against: a healthy local stack or compose project already up
    is reused; else one is started (and left up for the next run). External stacks are taken as
    they are. ``compose``: the project of a compose scenario (:func:`compose_stack_of`)."""
    kind = scenario.stack.kind
    if kind == "external":
        assert scenario.stack.entry_url is not None  # the scenario model requires it
        return StackInfo(
            entry_url=scenario.stack.entry_url,
            toxiproxy_url=scenario.stack.toxiproxy_url or "",
            services=(),
            instances=(),
            proxies=(),
            admin_token="",
        )
    if kind == "compose":
        info = _bring_up_compose(compose or compose_stack_of(scenario), state_dir, tell)
        check_fault_targets(scenario, info, scenario.name)
        return info
    if kind != "local":
        raise InfrastructureError(
            f"stack kind {kind!r} is not available in this harness yet; use --stack local"
        )
    env = dict(scenario.stack.env)
    stack = LocalStack(state_dir, LocalStackConfig(app_env=tuple(env.items())))
    # Faults an earlier run left in force (a crash, a failed revert) would skew this one.
    if not rollback_faults(stack.state_dir, tell):
        raise StackError(
            f"faults of an earlier run are still in force on the stack in {stack.state_dir}; "
            "run `harness rollback` once the cause is fixed"
        )
    if stack.status().healthy:
        state = StateDir(stack.state_dir).load()
        running = dict(state.config.app_env) if state is not None else {}
        differing = {k: v for k, v in env.items() if running.get(k) != v}
        if differing:
            raise StackError(
                f"the stack up in {stack.state_dir} runs the shop without "
                f"{', '.join(f'{k}={v}' for k, v in sorted(differing.items()))}, which the "
                "scenario asks for; run `harness down` first"
            )
        tell(f"using the local stack already up in {stack.state_dir}")
        return stack.info()
    tell(f"starting the local stack in {stack.state_dir} ...")
    started = time.monotonic()
    info = stack.up()
    tell(
        f"stack up in {time.monotonic() - started:.1f}s; it stays up for the next run "
        "(`harness down` stops it)"
    )
    return info


def _bring_up_compose(
    stack: ComposeStack, state_dir: Path, tell: Callable[[str], None]
) -> StackInfo:
    # Docker missing or stopped: InfrastructureError (exit 3) with ComposeStack's own message,
    # before the journal is read (its records would need Docker to be reverted).
    stack.status()
    if not rollback_faults(state_dir, tell):
        raise StackError(
            f"faults of an earlier run are still in force (journal in {state_dir}); "
            "run `harness rollback` once the cause is fixed"
        )
    if stack.status().healthy:
        tell(f"using the compose project {stack.project!r} already up")
        return stack.info()
    tell(f"starting the compose project {stack.project!r} ...")
    started = time.monotonic()
    info = stack.up()
    tell(
        f"compose project up in {time.monotonic() - started:.1f}s; it stays up for the next run "
        f"(`harness down --stack compose --project {stack.project}` stops it)"
    )
    return info


# --- in the Locust master -------------------------------------------------------------------------


def master_stack(args: MasterArgs) -> tuple[Stack | None, StackInfo]:
    """The stack the faults act on, found again from what the pipeline passed the master."""
    if args.stack_kind == "local":
        if args.state_dir is None:
            raise BadInputError("a local stack needs --state-dir")
        stack = LocalStack(args.state_dir)
        return stack, stack.info()
    if args.stack_kind == "compose":
        try:
            ref = json.loads(args.stack_ref)
        except ValueError:
            ref = None
        if not isinstance(ref, dict):
            raise BadInputError(f"a compose stack needs --stack-ref JSON, got {args.stack_ref!r}")
        compose = ComposeStack.from_ref(ref)
        return compose, compose.info()
    if args.stack_kind == "external":
        info = StackInfo(
            entry_url=args.host,
            toxiproxy_url=args.toxiproxy_url,
            services=(),
            instances=(),
            proxies=(),
            admin_token="",
        )
        return None, info
    raise InfrastructureError(f"stack kind {args.stack_kind!r} is not supported by this harness")


def fault_journal_dir(stack: Stack | None, state_dir: Path | None) -> Path | None:
    """Where the fault journal of a run on ``stack`` lives: a local stack's own state
    directory, else ``state_dir`` (a compose project's); None: nowhere (no faults possible)."""
    if stack is None:
        return None
    if isinstance(stack, LocalStack):
        return stack.state_dir
    return state_dir
