"""Resolve two runs, compare them with the scenario's tolerances and the history's noise.

Used by ``harness compare BASELINE RUN`` and by ``harness run --baseline``. The tolerances are
the defaults, then the run's scenario's ``regression:`` section (as the run directory stored
it), then the ``--tolerance`` flags. The noise comes from the history of the run's reports
directory (:mod:`~.noise`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.compare.diff import Comparison, compare_rows
from harness.compare.noise import estimate_noise
from harness.errors import BadInputError, HarnessError
from harness.history import HistoryIndex, HistoryRow, read_row, resolve_run
from harness.record import RunDir
from harness.scenario.regression import FigureKind, Regression

__all__ = ["compare_specs", "compare_with_history", "scenario_regression"]


def scenario_regression(root: Path) -> Regression:
    """The ``regression:`` section the run directory's stored scenario has (defaults if none)."""
    try:
        stored = RunDir.open(root).meta.get("scenario")
    except HarnessError:
        stored = None
    section = stored.get("regression") if isinstance(stored, Mapping) else None
    if not isinstance(section, Mapping):
        return Regression()
    try:
        return Regression.model_validate(section, context={"resolved": True})
    except ValueError as exc:
        raise BadInputError(f"{root}: scenario regression section: {exc}") from None


def compare_with_history(
    baseline: HistoryRow,
    run: HistoryRow,
    reports: Path,
    regression: Regression,
    flags: Mapping[FigureKind, float] | None = None,
) -> Comparison:
    """:func:`compare_rows` with the tolerances and the noise of ``reports``' history."""
    tolerances = {**regression.tolerances(), **(flags or {})}
    history = HistoryIndex(reports).rows(run.scenario, kind="run")
    keys = list(dict.fromkeys([*run.figures, *baseline.figures]))
    noise = estimate_noise(history, keys, runs=regression.noise_runs, exclude=run.run)
    return compare_rows(baseline, run, tolerances=tolerances, noise=noise)


def compare_specs(
    baseline_spec: str,
    run_spec: str,
    reports: Path,
    flags: Mapping[FigureKind, float] | None = None,
) -> tuple[Comparison, Path]:
    """``harness compare``: each spec a run directory, ``latest``, ``latest-pass`` or a git ref
    (:func:`harness.history.resolve_run`). The run is resolved first, and the baseline among the
    runs of its scenario, never the run itself. The comparison, and the run's directory."""
    run_dir = resolve_run(run_spec, reports, what="RUN")
    run = read_row(run_dir)
    history_dir = run_dir.parent
    base_dir = resolve_run(
        baseline_spec, history_dir, scenario=run.scenario, exclude=run.run, what="BASELINE"
    )
    baseline = read_row(base_dir)
    if baseline.kind != run.kind:
        raise BadInputError(f"BASELINE: {base_dir} is a {baseline.kind}, RUN a {run.kind}")
    regression = scenario_regression(run_dir)
    return compare_with_history(baseline, run, history_dir, regression, flags), run_dir
