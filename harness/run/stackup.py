"""The stack a run goes against: built through the stack registry from the scenario's section
and the command line, brought up (or a healthy one reused), and found again in the Locust master
from its reference. The run layer never asks which kind of stack it has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInputError, StackError
from harness.faults import check_http_support
from harness.load.launch import MasterArgs
from harness.run.request import RunRequest
from harness.run.settle import rollback_faults
from harness.scenario import INSTANCE_ACTIONS, TOXIPROXY_ACTIONS, Scenario
from harness.stack.base import Stack, StackInfo, StackOptions
from harness.stack.compose import ComposeStack
from harness.stack.registry import stack_for, stack_from_ref
from harness.stack.state import DEFAULT_STATE_DIR

__all__ = [
    "RunStack",
    "check_fault_targets",
    "check_faults_supported",
    "compose_stack_of",
    "master_stack",
    "scenario_stack",
    "stack_up",
]


@dataclass(frozen=True)
class RunStack:
    """The stack a run goes against, up: what the pipeline passes on to the master, the fault
    rollback and the post-run checks."""

    stack: Stack
    info: StackInfo

    @property
    def ref(self) -> str:
        """JSON of the reference the master finds the stack again from."""
        return json.dumps(self.stack.to_ref())

    @property
    def journal_dir(self) -> Path | None:
        return self.stack.journal_dir

    @property
    def compose_project(self) -> str:
        """The compose project whose containers the post-run checks may query; empty for a
        stack that is not one."""
        return self.stack.project if isinstance(self.stack, ComposeStack) else ""


def scenario_stack(scenario: Scenario, request: RunRequest) -> Stack:
    """The stack the scenario's section and the command line name (nothing is started)."""
    options = StackOptions(
        state_dir=request.state_dir,
        compose_project=request.compose_project,
        compose_file=request.compose_file,
        ports=dict(request.ports),
    )
    return stack_for(scenario.stack, options)


def compose_stack_of(
    scenario: Scenario, project: str = "", compose_file: Path | None = None
) -> Stack:
    """The compose project a compose scenario runs against (``project`` and ``compose_file``
    as the command line would give them)."""
    return scenario_stack(scenario, RunRequest(compose_project=project, compose_file=compose_file))


def check_faults_supported(scenario: Scenario, stack: Stack) -> None:
    """Refuse faults a stack cannot take, before anything starts: running the load without
    them would pass a test that never happened."""
    if scenario.faults and stack.journal_dir is None:
        raise BadInputError(
            f"scenario {scenario.name!r}: faults need a stack the harness runs (local or "
            f"compose), not {stack.kind}"
        )


def stack_up(stack: Stack, scenario: Scenario, tell: Callable[[str], None]) -> RunStack:
    """The stack, up: faults an earlier run left in force are rolled back first, then a
    healthy stack that fits is reused, or one is started (and left up for the next run); the
    instances and proxies the faults name are checked against it."""
    # Docker missing or stopped: InfrastructureError (exit 3) with the backend's own message,
    # before the journal is read (its records would need Docker to be reverted).
    stack.status()
    journal = stack.journal_dir
    # Faults an earlier run left in force (a crash, a failed revert) would skew this one.
    if journal is not None and not rollback_faults(journal, tell):
        raise StackError(
            f"faults of an earlier run are still in force (journal in {journal}); "
            "run `harness rollback` once the cause is fixed"
        )
    info = stack.bring_up(tell)
    check_fault_targets(scenario, info, scenario.name)
    # HTTP faults need the harness's own Toxiproxy: a real one is refused before any load.
    check_http_support(scenario.faults, info)
    return RunStack(stack, info)


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


# --- in the Locust master -------------------------------------------------------------------------


def master_stack(args: MasterArgs) -> tuple[Stack, StackInfo]:
    """The stack the faults act on, found again (through the stack registry) from the
    reference the pipeline passed the master."""
    try:
        ref = json.loads(args.stack_ref)
    except ValueError:
        raise BadInputError(f"--stack-ref: expected JSON, got {args.stack_ref!r}") from None
    stack = stack_from_ref(ref, state_dir=args.state_dir or DEFAULT_STATE_DIR)
    return stack, stack.info()
