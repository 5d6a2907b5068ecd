"""Moved: the run is :mod:`harness.run` now. This shim keeps the old names working until every
caller uses the new ones; it is deleted then.

====================================  ============================================================
old (``harness.engine``)              new
====================================  ============================================================
``run(RunRequest(scenario=path))``    ``harness.run.pipeline.run_file(path, request, overrides)``,
                                      or ``run(scenario, request)`` with a model; a game day:
                                      ``harness.gameday.runner.run_gameday``
``RunRequest`` (path and flags)       ``harness.run.request.RunRequest`` (flags) and
                                      ``ScenarioOverrides`` (workers, stack, allow_targets)
``resolve_scenario(request)``         ``harness.run.preflight.resolve_scenario(path, overrides)``
``check_scenario``                    ``harness.run.preflight.check_scenario``
``check_catalogue_faults``            ``harness.run.preflight.check_catalogue_faults``
``conclude``, ``judge``               ``harness.run.conclude``
``exec_worker``                       ``harness.run.children.exec_worker``
``compose_stack_of``, ...             ``harness.run.stackup``
``rollback_faults``                   ``harness.run.settle.rollback_faults``
``RunOutcome``                        ``harness.run.request.RunOutcome``
====================================  ============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.capacity import extensions_for
from harness.gameday.runner import GAMEDAY_EXTENSION
from harness.run import pipeline, preflight
from harness.run import request as requests
from harness.run.children import exec_worker
from harness.run.conclude import conclude, judge
from harness.run.preflight import check_scenario
from harness.run.request import RunOutcome, ScenarioOverrides
from harness.run.settle import rollback_faults
from harness.run.stackup import (
    bring_up_stack,
    check_fault_targets,
    check_faults_supported,
    compose_stack_of,
    compose_topology,
)
from harness.scenario import Scenario, StackKind
from harness.stack.state import DEFAULT_STATE_DIR

__all__ = [
    "RunOutcome",
    "RunRequest",
    "bring_up_stack",
    "check_catalogue_faults",
    "check_fault_targets",
    "check_faults_supported",
    "check_scenario",
    "compose_stack_of",
    "compose_topology",
    "conclude",
    "exec_worker",
    "judge",
    "resolve_scenario",
    "rollback_faults",
    "run",
]


@dataclass(frozen=True)
class RunRequest:
    """The old request: the scenario file, and every flag of ``harness run`` and ``gameday``."""

    scenario: Path
    workers: int | None = None
    stack: StackKind | None = None
    reports: Path = Path("reports")
    state_dir: Path = DEFAULT_STATE_DIR
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    worker_timeout_s: float = 60.0
    compose_project: str = ""
    compose_file: Path | None = None
    web_host: str = ""
    web_port: int = 8089
    allow_targets: tuple[str, ...] = ()

    @property
    def overrides(self) -> ScenarioOverrides:
        return ScenarioOverrides(self.workers, self.stack, self.allow_targets)

    def request(self, scenario: Scenario) -> requests.RunRequest:
        """The new request; the extensions the old code wired into the master by itself."""
        extensions = (GAMEDAY_EXTENSION,) if self.web_host else ()
        return requests.RunRequest(
            reports=self.reports,
            state_dir=self.state_dir,
            remote_workers=self.remote_workers,
            master_bind=self.master_bind,
            master_port=self.master_port,
            worker_timeout_s=self.worker_timeout_s,
            compose_project=self.compose_project,
            compose_file=self.compose_file,
            web_host=self.web_host,
            web_port=self.web_port,
            extensions=(*extensions, *extensions_for(scenario)),
            source=str(self.scenario),
        )


def resolve_scenario(request: RunRequest) -> Scenario:
    """The scenario file with the command line's overrides applied, validated again."""
    return preflight.resolve_scenario(request.scenario, request.overrides)


def check_catalogue_faults(scenario: Scenario, request: RunRequest) -> None:
    preflight.check_catalogue_faults(scenario, request.request(scenario))


def run(
    request: RunRequest,
    *,
    say: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Run a scenario file from start to verdict (:func:`harness.run.pipeline.run`)."""
    scenario = resolve_scenario(request)
    return pipeline.run(scenario, request.request(scenario), say=say, console=console)
