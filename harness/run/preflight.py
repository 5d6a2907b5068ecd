"""The scenario of a run, checked before anything starts: a typo must cost a second, not a run.

:func:`resolve_scenario` is where a scenario file meets the command line (the overrides applied,
the result validated again); the pipeline takes the model it returns, or one a caller built
(:mod:`harness.testing`, the capacity search). The checks name the scenario's source, one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from harness.errors import BadInputError
from harness.run.request import RunRequest, ScenarioOverrides
from harness.scenario import Scenario, load_scenario
from harness.verdict import parse_checks

__all__ = ["check_catalogue_faults", "check_scenario", "resolve_scenario", "source_of"]

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
        parse_checks(scenario)
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None


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
