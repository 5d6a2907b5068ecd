"""Reports of a run: what a person reads in a minute, and what a CI gates on.

::

    model     the verdict's shape the report reads (protocols), the outcome badge, exit codes
    series    buckets + events -> per-second series, phase / fault / recovery marks
    stats     per-phase and whole-run numbers
    data      RunReport: everything above, read from a run directory once
    plots     three PNGs (matplotlib Figures on Agg canvases, no pyplot)
    html      report.html, self-contained (template in templates/, found via importlib.resources)
    junit     junit.xml: one test case per SLO, plus "run completed"
    summary   summary.json, with its documented keys
    terminal  the verdict table at the end of a run (Rich on a TTY, plain text otherwise)

:func:`write_reports` writes the three files of a judged run; :func:`rebuild` judges a stored run
again (when :mod:`harness.verdict` is there) and writes them, for ``harness report``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from harness.errors import BadInputError, InfrastructureError
from harness.record import RunDir, RunStatus
from harness.report.data import RunReport, collect
from harness.report.model import JudgementLike, Outcome, Unjudged
from harness.scenario import Scenario

__all__ = [
    "JudgementLike",
    "Outcome",
    "ReportPaths",
    "RunReport",
    "judge_stored",
    "rebuild",
    "write_report",
    "write_reports",
]


@dataclass(frozen=True)
class ReportPaths:
    summary_json: Path
    junit_xml: Path
    report_html: Path

    @property
    def all(self) -> tuple[Path, Path, Path]:
        return (self.summary_json, self.junit_xml, self.report_html)


def _write_atomically(path: Path, data: bytes) -> None:
    # A reader (a CI step, a browser) never sees half a file, and a failed write leaves the
    # previous report in place rather than a truncated one.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        why = exc.strerror or exc
        raise InfrastructureError(f"report {path}: cannot write it: {why}") from None


def write_report(run_dir: RunDir, report: RunReport) -> ReportPaths:
    """Render ``report`` and write summary.json, junit.xml and report.html into ``run_dir``."""
    # Imported here: matplotlib and Jinja2 cost a second of start-up that `harness run` should
    # pay only once the run is over.
    from harness.report.html import render_html
    from harness.report.junit import render_junit
    from harness.report.plots import render_all
    from harness.report.summary import render_summary

    paths = ReportPaths(run_dir.summary_json, run_dir.junit_xml, run_dir.report_html)
    _write_atomically(paths.summary_json, render_summary(report).encode("utf-8"))
    _write_atomically(paths.junit_xml, render_junit(report))
    _write_atomically(paths.report_html, render_html(report, render_all(report.series)).encode())
    return paths


def write_reports(
    run_dir: RunDir,
    judgement: JudgementLike,
    *,
    notes: Sequence[str] = (),
    step: float = 1.0,
) -> ReportPaths:
    """Read the run, put it together with ``judgement``, and write the three report files.

    ``notes`` are shown in every report (the HTML banner, the JUnit properties, the JSON);
    ``step`` is the plots' resolution in seconds.
    """
    return write_report(run_dir, collect(run_dir, judgement, notes=notes, step=step))


def _unjudged(status: RunStatus, *, passed: bool) -> Unjudged:
    return Unjudged(
        passed=passed,
        aborted=status is RunStatus.ABORTED,
        incomplete=status in (RunStatus.RUNNING, RunStatus.CRASHED, RunStatus.INTERRUPTED),
    )


def judge_stored(run_dir: RunDir) -> tuple[JudgementLike, tuple[str, ...]]:
    """Judge a stored run with ``harness.verdict.judge(run_dir, scenario)``, and the notes the
    report must carry. Never raises for a missing or failing verdict: the report then says the
    SLOs were not judged, and why.

    A missing verdict module counts as "nothing failed" (so a checkout without it can still make
    reports); a verdict that is there but fails does not, so it cannot turn a CI gate green.
    """
    status = run_dir.status
    raw = run_dir.meta.get("scenario")
    if not isinstance(raw, dict):
        return _unjudged(status, passed=False), (
            "SLOs not judged: the run stored no scenario (it ended before the load started)",
        )
    try:
        scenario = Scenario.from_dict(raw)
    except BadInputError as exc:
        return _unjudged(status, passed=False), (
            f"SLOs not judged: the stored scenario cannot be read: {exc}",
        )
    try:
        # By name, not an import statement: the module may not exist yet in this checkout, and
        # mypy would then refuse the import.
        verdict = importlib.import_module("harness.verdict")
        judge = cast(Callable[[RunDir, Scenario], JudgementLike], verdict.judge)
    except (ImportError, AttributeError) as exc:
        return _unjudged(status, passed=True), (
            f"SLOs not judged: the verdict module is not available ({exc})",
        )
    try:
        return judge(run_dir, scenario), ()
    except Exception as exc:  # a report of what was recorded beats no report at all
        return _unjudged(status, passed=False), (
            f"SLOs not judged: the verdict failed: {type(exc).__name__}: {exc}",
        )


def rebuild(path: Path, *, step: float = 1.0) -> tuple[RunReport, ReportPaths]:
    """Judge the run stored at ``path`` again and rewrite its reports (``harness report``).

    BadInputError when ``path`` is not a run directory.
    """
    run_dir = RunDir.open(path)
    judgement, notes = judge_stored(run_dir)
    report = collect(run_dir, judgement, notes=notes, step=step)
    return report, write_report(run_dir, report)
