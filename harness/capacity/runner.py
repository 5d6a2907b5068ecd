"""``harness capacity``: step the offered load up until an SLO breaks, once healthy and once with
faults held, and say where each search broke.

Each search is one run of the pipeline (:func:`harness.run.pipeline.run`) of a *staircase* made
from the scenario: a ``settle`` phase at ``start`` (the held faults take effect: a killed backend
leaves the load balancer), then open-model phases ``step-01``, ``step-02``, ... at ``start``,
``start + step``, ... up to ``max``, each ``hold`` long, with the held faults (``capacity.always``
and, in the degraded search, ``capacity.faults``) injected at 0 s and kept to the end. Every SLO
of the scenario that speaks of the whole run is judged over each step's phase
(``EXPR during phase step-NN``); SLOs with a window of their own, or about a fault's recovery,
mean nothing per step and are listed as skipped. The master judges each step as it ends and
stops the run at the first that broke (:mod:`harness.capacity.stepstop`, a run extension); the
run directory is an ordinary one (its report shows the staircase over time). The staircase is
also written to the capacity directory as a scenario file, for the record.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from rich.console import Console

from harness.capacity.analysis import SearchResult, summarise
from harness.capacity.steps import SETTLE_PHASE, measure_steps, step_slos
from harness.durations import format_duration
from harness.errors import BadInputError, InfrastructureError
from harness.exit_codes import ExitCode
from harness.run.pipeline import run
from harness.run.request import RunRequest
from harness.scenario import Capacity, Scenario, parse_scenario
from harness.stack.state import DEFAULT_STATE_DIR

__all__ = [
    "SETTLE_S",
    "STEP_STOP_EXTENSION",
    "CapacityRequest",
    "extensions_for",
    "plan_rates",
    "search",
    "staircase",
]

MAX_STEPS = 60
# Long enough for the load balancer's health checks to take a killed backend out of the pool
# (and for the first connections to be made) before the first step is measured.
SETTLE_S = 3.0
# The run extension that stops a staircase at its first broken step (imported by the Locust
# master only: it imports gevent).
STEP_STOP_EXTENSION: Final = "harness.capacity.stepstop"


def extensions_for(scenario: Scenario) -> tuple[str, ...]:
    """The run extensions a scenario needs from capacity: the early stop, when its ``capacity``
    section says ``stop_at_break`` (a staircase)."""
    if scenario.capacity is not None and scenario.capacity.stop_at_break:
        return (STEP_STOP_EXTENSION,)
    return ()


@dataclass(frozen=True)
class CapacityRequest:
    """What ``harness capacity`` was asked; None fields come from the scenario's ``capacity:``
    section, then from :class:`~harness.scenario.Capacity`'s defaults."""

    scenario: Path
    start: float | None = None
    step: float | None = None
    hold: float | None = None
    max: float | None = None
    faults: tuple[str, ...] | None = None
    reports: Path = Path("reports")
    state_dir: Path = DEFAULT_STATE_DIR
    # Hosts besides loopback the load may reach (--allow-target), on top of the scenario's.
    allow_targets: tuple[str, ...] = ()
    # The live metrics endpoint of each search's run and --otel, as `harness run` takes them.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    metrics_linger_s: float = 15.0
    otel: bool = False


def settings(scenario: Scenario, request: CapacityRequest) -> Capacity:
    """The search's settings: flags over the scenario's section over the defaults, validated."""
    base = scenario.capacity or Capacity()
    data: dict[str, Any] = base.model_dump(mode="json")
    for key in ("start", "step", "hold", "max", "faults"):
        value = getattr(request, key)
        if value is not None:
            data[key] = list(value) if key == "faults" else value
    data["hold"] = format_duration(float(data["hold"]))
    try:
        capacity = Capacity.model_validate(data)
    except Exception as exc:  # pydantic's error: one line, naming the setting
        raise BadInputError(f"{request.scenario}: capacity: {_first_error(exc)}") from None
    known = {fault.name for fault in scenario.faults}
    for name in (*capacity.faults, *capacity.always):
        if name not in known:
            raise BadInputError(
                f"{request.scenario}: --fault: unknown fault {name!r} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
    return capacity


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        ctx = first.get("ctx") or {}
        where = ".".join(str(p) for p in (*first["loc"], *ctx.get("loc", ())))
        return f"{where}: {ctx.get('message', first['msg'])}"
    return str(exc)


def plan_rates(capacity: Capacity) -> list[float]:
    """The offered loads of the steps: start, start + step, ... up to max (inclusive)."""
    count = math.floor((capacity.max - capacity.start) / capacity.step + 1e-9) + 1
    if count > MAX_STEPS:
        raise BadInputError(
            f"capacity: {count} steps from {capacity.start:g}/s to {capacity.max:g}/s by "
            f"{capacity.step:g}/s; at most {MAX_STEPS}: take a larger step"
        )
    return [round(capacity.start + i * capacity.step, 6) for i in range(count)]


def staircase(
    scenario: Scenario,
    rates: Sequence[float],
    hold: float,
    faults: Sequence[str],
    *,
    always: Sequence[str] = (),
) -> dict[str, Any]:
    """The scenario file of one search (YAML-ready, durations as text): ``faults`` and
    ``always`` held from 0 s to the end, the run stopped at the first step that breaks."""
    data = scenario.to_dict()
    stack = {k: v for k, v in data["stack"].items() if v not in (None, {}, [])}
    load = data["load"]
    judged, _ = step_slos(scenario)
    held = []
    for fault in data["faults"]:
        if fault["name"] in faults or fault["name"] in always:
            fault = {k: v for k, v in fault.items() if k not in ("for", "target") or v is not None}
            fault.pop("for", None)
            fault["at"] = "0s"
            held.append(fault)
    suffix = "-with-" + "-".join(faults) if faults else ""
    return {
        "name": f"{scenario.name}-capacity{suffix}"[:64],
        "stack": stack,
        "allow_targets": data["allow_targets"],
        "load": {
            "locustfile": load["locustfile"],
            "user_classes": load["user_classes"],
            "workers": load["workers"],
            "model": "open",
            "max_in_flight": load["max_in_flight"],
            "phases": [
                {"name": SETTLE_PHASE, "duration": format_duration(SETTLE_S), "rate": rates[0]},
                *(
                    {"name": step_name(i), "duration": format_duration(hold), "rate": rate}
                    for i, rate in enumerate(rates)
                ),
            ],
        },
        "faults": held,
        # Judged per step by the master (the early stop) and by the search; the run's own
        # verdict judges them over the whole staircase, which is no step's answer.
        "slos": [{"name": name, "expr": expr} for name, expr in judged],
        "guards": [{"name": g["name"], "expr": g["expr"]} for g in data["guards"]],
        "capacity": {"stop_at_break": True},
    }


def step_name(index: int) -> str:
    return f"step-{index + 1:02d}"


def search(
    scenario: Scenario,
    request: CapacityRequest,
    capacity: Capacity,
    faults: Sequence[str],
    out_dir: Path,
    *,
    tell: Callable[[str], None],
) -> SearchResult:
    """Run one staircase and measure it step by step."""
    rates = plan_rates(capacity)
    label = "with " + ", ".join(faults) + " held" if faults else "healthy"
    path = out_dir / (f"staircase-{'-'.join(faults)}.yaml" if faults else "staircase.yaml")
    stair_data = staircase(scenario, rates, capacity.hold, faults, always=capacity.always)
    text = yaml.safe_dump(stair_data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    tell(
        f"capacity search ({label}): up to {len(rates)} steps of "
        f"{format_duration(capacity.hold)}, {rates[0]:g}/s to {rates[-1]:g}/s, stopping at the "
        "first that breaks"
    )
    # Validated as `harness run` would read the file (messages name it), without reading it back.
    stair = parse_scenario(text, path, allow_targets=request.allow_targets)
    quiet = Console(file=io.StringIO(), width=160)
    outcome = run(
        stair,
        RunRequest(
            reports=out_dir,
            state_dir=request.state_dir,
            extensions=extensions_for(stair),
            source=str(path),
            metrics_host=request.metrics_host,
            metrics_port=request.metrics_port,
            metrics_linger_s=request.metrics_linger_s,
            otel=request.otel,
        ),
        say=tell,
        console=quiet,
    )
    if outcome.exit_code in (ExitCode.BAD_INPUT, ExitCode.INFRASTRUCTURE):
        raise (BadInputError if outcome.exit_code == ExitCode.BAD_INPUT else InfrastructureError)(
            f"the capacity run in {outcome.run_dir.root} failed: "
            f"{outcome.detail.get('error', outcome.status.value)}"
        )
    if outcome.exit_code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    judged, skipped = step_slos(scenario)
    steps = measure_steps(outcome.run_dir, stair, judged)
    notes = (
        [f"not judged per step (a window or a fault of its own): {', '.join(skipped)}"]
        if skipped
        else []
    )
    if capacity.always:
        notes.append(f"held in every search: {', '.join(capacity.always)}")
    broke = bool(steps) and not steps[-1].held
    if len(steps) < len(rates) and not broke:
        # Not the early stop at a broken step: the run itself ended (a guard, a crash).
        notes.append(
            f"the run ended after {len(steps)} of {len(rates)} steps ({outcome.status.value}"
            f"{': ' + str(outcome.detail['error']) if outcome.detail.get('error') else ''})"
        )
    return summarise(label, faults, steps, run_dir=str(outcome.run_dir.root), notes=notes)
