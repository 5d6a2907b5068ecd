"""``harness run --baseline SPEC``: the run judged against a baseline run as well as its SLOs.

:func:`with_baseline` compares the judged run (its summary, before anything is written) with
the run ``SPEC`` names in the history of the reports directory (:mod:`harness.compare`), writes
compare.json, compare.xml and compare.html beside the report, and gives the report the
comparison (its HTML section and the terminal table show it), a note saying what it found, and
the exit code the two decide together: 1 when either the SLOs or the comparison fail.

No baseline to be found (the first run of a scenario in a fresh CI cache, no passing run yet)
is a note, not a failure: the run is judged by its SLOs alone. A SPEC that cannot name a run
at all is refused before the run starts (:func:`check_baseline_spec`).

``harness report`` rebuilds a compared run against the same baseline run it was compared with
(:func:`recorded_baseline`, from its compare.json), so the rebuilt report keeps the section and
the exit code the comparison decided; a baseline since deleted is a note in the rebuilt report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.compare import compare_with_history, scenario_regression, write_comparison
from harness.compare.output import FILES
from harness.errors import BadInputError, HarnessError
from harness.exit_codes import ExitCode
from harness.history import read_row, resolve_ref, resolve_run
from harness.history.row import row_from_summary
from harness.record import RunDir
from harness.report.data import RunReport
from harness.report.summary import summary
from harness.safety import loads_json

__all__ = ["check_baseline_spec", "recorded_baseline", "with_baseline"]

COMPARE_JSON = FILES[0]
# A compare.json holds one row per figure: a few hundred kilobytes for the largest scenario.
MAX_COMPARE_JSON_BYTES = 8 * 1024 * 1024


def check_baseline_spec(spec: str) -> None:
    """Refuse, before any load, a ``--baseline`` that can name no run: not ``latest``,
    ``latest-pass``, an existing directory or a git ref of this checkout."""
    if spec in ("latest", "latest-pass") or Path(spec).is_dir():
        return
    if resolve_ref(spec) is None:
        raise BadInputError(
            f"--baseline {spec}: not a run directory, latest, latest-pass or a git ref"
        )


def with_baseline(report: RunReport, run_dir: RunDir, spec: str | None) -> RunReport:
    """``report`` compared with the baseline ``spec`` names (unchanged when ``spec`` is None)."""
    if spec is None:
        return report
    root = Path(run_dir.root)
    run = row_from_summary(root, summary(report))
    try:
        base_dir = resolve_run(
            spec, root.parent, scenario=run.scenario, exclude=run.run, what="baseline"
        )
        baseline = read_row(base_dir)
        comparison = compare_with_history(baseline, run, root.parent, scenario_regression(root))
        write_comparison(comparison, root)
    except HarnessError as exc:
        note = f"not compared with a baseline: {exc}"
        return replace(report, notes=(*report.notes, note))
    if comparison.regressed:
        worse = ", ".join(f.label for f in comparison.regressions)
        note = (
            f"baseline {baseline.run}: {len(comparison.regressions)} regression(s) beyond "
            f"tolerance and noise: {worse}"
        )
    else:
        note = f"baseline {baseline.run}: no regression"
    code = report.exit_code
    if code == ExitCode.OK and comparison.regressed:
        code = ExitCode.FAILED
    return replace(report, comparison=comparison, exit_code=code, notes=(*report.notes, note))


def recorded_baseline(run_dir: RunDir) -> tuple[str | None, str | None]:
    """The baseline a run was compared with, from its compare.json: ``(run directory, None)``
    to compare with again, ``(None, note)`` when that cannot be, ``(None, None)`` when the run
    was never compared."""
    root = Path(run_dir.root)
    path = root / COMPARE_JSON
    if not path.is_file():
        return None, None
    try:
        if path.stat().st_size > MAX_COMPARE_JSON_BYTES:
            raise ValueError(f"larger than {MAX_COMPARE_JSON_BYTES} bytes")
        data = loads_json(path.read_bytes())
        name = data["baseline"]["run"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"not compared with a baseline again: {path}: unreadable ({exc})"
    # A name from a file: one directory beside this run, nothing that climbs out of the reports.
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        return None, f"not compared with a baseline again: {path}: baseline.run {name!r}"
    baseline = root.parent / name
    if not baseline.is_dir():
        return None, f"not compared with baseline {name} again: it is no longer in {root.parent}"
    return str(baseline), None
