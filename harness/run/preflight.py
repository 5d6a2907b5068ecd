"""The scenario of a run, checked before anything starts: a typo must cost a second, not a run.

:func:`resolve_scenario` is where a scenario file meets the command line (the overrides applied,
the result validated again); the pipeline takes the model it returns, or one a caller built
(:mod:`harness.testing`, the capacity search). :func:`preflight` is every check that needs
nothing started (``harness validate`` runs exactly it; ``harness run`` runs it first): the SLOs,
the locustfile imported in a subprocess and its user classes, the fault targets against the
parts the stack declares, the hosts against the policy. The checks name the scenario's source,
one line, exit 2; nothing is started and no run directory made before they pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from harness.errors import BadInputError, clip
from harness.run.request import RunRequest, ScenarioOverrides
from harness.run.stackup import check_faults_supported, scenario_stack
from harness.safety import run_policy
from harness.scenario import INSTANCE_ACTIONS, TOXIPROXY_ACTIONS, Scenario, load_scenario
from harness.stack.base import DeclaredParts, Stack
from harness.verdict import parse_checks
from harness.verdict.overlap import overlap_warnings

__all__ = [
    "LOCUSTFILE_TIMEOUT_S",
    "Checked",
    "check_catalogue_faults",
    "check_declared_targets",
    "check_hosts",
    "check_locustfile",
    "check_scenario",
    "preflight",
    "resolve_scenario",
    "source_of",
]

# Importing a locustfile (Locust and gevent included) takes about a second; one that takes
# this long hangs at import (a network call, an input()), and would hang every worker too.
LOCUSTFILE_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True)
class Checked:
    """What :func:`preflight` found: the stack the run would use (nothing of it started), and
    the User classes the load runs."""

    stack: Stack
    user_classes: tuple[str, ...]


def preflight(scenario: Scenario, request: RunRequest) -> Checked:
    """Every check that needs nothing started, in one place: ``harness validate`` runs exactly
    these, ``harness run`` runs them before its stack starts. ``BadInputError``, one line."""
    where = source_of(scenario, request)
    check_scenario(scenario, where)
    stack = scenario_stack(scenario, request)
    check_faults_supported(scenario, stack)
    check_declared_targets(scenario, stack.declared_parts(), where)
    check_hosts(scenario)
    return Checked(stack, check_locustfile(scenario, where))


def check_declared_targets(scenario: Scenario, parts: DeclaredParts, where: str) -> None:
    """Every instance and proxy the faults name is one the stack declares (those known only
    once it runs are checked again then, :func:`harness.run.stackup.check_fault_targets`)."""
    for index, fault in enumerate(scenario.faults):
        if fault.target is None:
            continue
        if fault.action in INSTANCE_ACTIONS:
            found, known, what = parts.has_instance(fault.target), parts.instances, "instance"
        elif fault.action in TOXIPROXY_ACTIONS:
            found, known, what = parts.has_proxy(fault.target), parts.proxies, "Toxiproxy proxy"
        else:
            continue
        if not found:
            raise BadInputError(
                f"{where}: faults[{index}].target: no {what} {fault.target!r} in the stack "
                f"(it has {', '.join(known or ()) or 'none'})"
            )


def check_hosts(scenario: Scenario) -> None:
    """The URLs the scenario names (a stack the harness did not start) are hosts the policy
    allows: loopback, ``allow_targets``, ``--allow-target``, ``$HARNESS_ALLOW_TARGETS``."""
    policy = run_policy(scenario.allow_targets)
    if scenario.stack.entry_url:
        policy.check_url(scenario.stack.entry_url, "stack.entry_url")
    if scenario.stack.toxiproxy_url:
        policy.check_url(scenario.stack.toxiproxy_url, "stack.toxiproxy_url")


def check_locustfile(scenario: Scenario, where: str) -> tuple[str, ...]:
    """Import the locustfile in a subprocess (:mod:`harness.load.probe`, with a timeout: a
    scenario's code never runs in this process) and check ``load.user_classes`` against the
    User classes it defines. The classes the load runs."""
    path = Path(scenario.load.locustfile)
    field = f"{where}: load.locustfile"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "harness.load.probe", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LOCUSTFILE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BadInputError(
            f"{field}: {path} did not import within {LOCUSTFILE_TIMEOUT_S:.0f}s"
        ) from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise BadInputError(f"{field}: {path} did not import: {clip(last, 300)}") from None
    if "error" in answer:
        text = " ".join(str(answer["error"]).split())
        raise BadInputError(f"{field}: {path}: {clip(text, 300)}")
    found = tuple(str(name) for name in answer.get("classes", ()))
    if not found:
        raise BadInputError(f"{field}: {path} defines no Locust User class to run")
    for index, name in enumerate(scenario.load.user_classes):
        if name not in found:
            raise BadInputError(
                f"{where}: load.user_classes[{index}]: no User class {name!r} in {path} "
                f"(it has {', '.join(found)})"
            )
    return scenario.load.user_classes or found


# The scenario's stack keys that only a compose stack reads.
_COMPOSE_ONLY: Final = ("compose_file", "project", "entry", "backends", "toxiproxy", "proxies")


def resolve_scenario(path: Path, overrides: ScenarioOverrides | None = None) -> Scenario:
    """The scenario file with the command line's overrides applied, validated again."""
    overrides = overrides or ScenarioOverrides()
    scenario = load_scenario(path, allow_targets=overrides.allow_targets)
    data = scenario.to_dict()
    if overrides.workers is not None:
        data["load"]["workers"] = overrides.workers
    if overrides.stack is not None:
        data["stack"]["kind"] = overrides.stack
        if overrides.stack != "compose":
            # A compose scenario run on another stack: its project and topology do not apply.
            for key in _COMPOSE_ONLY:
                data["stack"].pop(key, None)
    if data == scenario.to_dict():
        return scenario
    return Scenario.from_dict(data)


def source_of(scenario: Scenario, request: RunRequest) -> str:
    """What messages about the scenario name: its file, else its name."""
    return request.source or f"scenario {scenario.name!r}"


def check_scenario(scenario: Scenario, where: str | Path) -> None:
    """Parse the scenario's SLOs and guards and check the phases and faults they name, before
    anything starts: a typo must cost a second, not a run. One line, naming ``where``."""
    try:
        checks = parse_checks(scenario)
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None
    # Not an error: a scenario may mean to combine faults; but a recovery it cannot attribute
    # must not go unsaid.
    for line in overlap_warnings(scenario, checks.slos):
        print(f"{where}: warning: {line}", file=sys.stderr)


def check_catalogue_faults(scenario: Scenario, request: RunRequest) -> None:
    """A fault without ``at`` is only injected by hand, on a game day: in a run it would never
    happen, and an SLO about it would judge a fault that was never there."""
    if request.web_host:
        return
    for index, fault in enumerate(scenario.faults):
        if fault.at is None:
            raise BadInputError(
                f"{source_of(scenario, request)}: faults[{index}].at: required by `harness run` "
                f'(fault "{fault.name}" has none: a catalogue fault for `harness gameday`)'
            )
