"""``harness capacity``: find the breaking point, healthy and with faults held.

    result = run_capacity(CapacityRequest(Path("scenarios/capacity.yaml")))

Exit codes (:func:`exit_code`): 0 every search found a breaking point below its maximum, 1 one
did not (the system held at the maximum: raise it), 2 bad input, 3 infrastructure, 130
interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.capacity.analysis import SearchResult, StepResult, knee_of, summarise
from harness.capacity.report import show, write_report
from harness.capacity.runner import (
    STEP_STOP_EXTENSION,
    CapacityRequest,
    extensions_for,
    plan_rates,
    search,
    settings,
    staircase,
)
from harness.errors import BadInputError
from harness.history import record_run
from harness.run.preflight import check_scenario
from harness.scenario import load_scenario

__all__ = [
    "STEP_STOP_EXTENSION",
    "CapacityOutcome",
    "CapacityRequest",
    "SearchResult",
    "StepResult",
    "extensions_for",
    "knee_of",
    "plan_rates",
    "run_capacity",
    "staircase",
    "summarise",
]


@dataclass(frozen=True)
class CapacityOutcome:
    root: Path
    searches: tuple[SearchResult, ...]
    report: Path

    @property
    def exit_code(self) -> int:
        return 0 if all(s.found for s in self.searches) else 1


def run_capacity(
    request: CapacityRequest,
    *,
    tell: Callable[[str], None] = print,
    console: Console | None = None,
) -> CapacityOutcome:
    """Run the searches and write the capacity report. ``tell`` gets the progress lines,
    ``console`` the table of steps and the results at the end (stdout by default)."""
    scenario = load_scenario(request.scenario, allow_targets=request.allow_targets)
    if scenario.load.model != "open":
        raise BadInputError(
            f"{request.scenario}: load.model: capacity offers load as an arrival rate; "
            'set model: open (and user classes from harness.load.open_model), got "closed"'
        )
    check_scenario(scenario, request.scenario)
    capacity = settings(scenario, request)
    plan_rates(capacity)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    root = request.reports / f"{scenario.name}-capacity-{stamp}"
    root.mkdir(parents=True, exist_ok=False)
    tell(f"capacity directory: {root}")
    searches = [search(scenario, request, capacity, (), root, tell=tell)]
    if capacity.faults:
        searches.append(search(scenario, request, capacity, capacity.faults, root, tell=tell))
    paths = write_report(root, scenario.name, searches)
    if note := record_run(root):  # the reports directory's history (harness history)
        tell(note)
    show(searches, console or Console(), plot=paths["plot"], report=paths["html"])
    return CapacityOutcome(root, tuple(searches), paths["html"])
