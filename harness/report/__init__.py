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
again with :mod:`harness.verdict` and writes them, for ``harness report``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness import verdict
from harness.errors import BadInputError, HarnessError, InfrastructureError
from harness.record import RunDir, RunStatus
from harness.report.data import RunReport, collect
from harness.report.exitcode import Settled, decide, settled_of
from harness.report.model import JudgementLike, Outcome, Unjudged
from harness.scenario import Scenario

__all__ = [
    "JudgementLike",
    "Outcome",
    "ReportPaths",
    "RunReport",
    "judge_run",
    "judge_stored",
    "rebuild",
    "with_settled",
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
    # matplotlib and Jinja2 cost a second of start-up that `harness run` should pay only once
    # the run is over (html, plots; junit and summary go with them).
    # deferred: Jinja2
    from harness.report.html import render_html
    from harness.report.junit import render_junit  # deferred: see above
    from harness.report.plots import render_all  # deferred: see above
    from harness.report.summary import render_summary  # deferred: see above

    paths = ReportPaths(run_dir.summary_json, run_dir.junit_xml, run_dir.report_html)
    # Everything rendered before anything is written: a rendering that fails leaves no summary
    # behind that the HTML (or the exit code) would contradict.
    files = (
        (paths.summary_json, render_summary(report).encode("utf-8")),
        (paths.junit_xml, render_junit(report)),
        (paths.report_html, render_html(report, render_all(report.series)).encode()),
    )
    for path, data in files:
        _write_atomically(path, data)
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


def judge_run(run_dir: RunDir, scenario: Scenario) -> tuple[JudgementLike, tuple[str, ...]]:
    """The verdict on a recorded run (:func:`harness.verdict.judge`), and the notes its report
    must carry.

    Never raises: a verdict that cannot be reached (the store unreadable, a bug) is a judgement
    with nothing judged that does not pass, and a note saying why, so a broken verdict can
    neither turn a gate green nor pass for an SLO that failed.
    """
    try:
        return verdict.judge(run_dir, scenario), ()
    except Exception as exc:  # a report of what was recorded beats no report at all
        return _unjudged(run_dir), (
            f"SLOs not judged: the verdict failed: {type(exc).__name__}: {exc}",
        )


def judge_stored(run_dir: RunDir) -> tuple[JudgementLike, tuple[str, ...]]:
    """:func:`judge_run` with the scenario the run stored (``harness report``); a run that
    stored none, or one that cannot be read, is not judged and does not pass."""
    raw = run_dir.meta.get("scenario")
    if not isinstance(raw, dict):
        return _unjudged(run_dir), (
            "SLOs not judged: the run stored no scenario (it ended before the load started)",
        )
    try:
        scenario = Scenario.from_dict(raw)
    except BadInputError as exc:
        return _unjudged(run_dir), (f"SLOs not judged: the stored scenario cannot be read: {exc}",)
    return judge_run(run_dir, scenario)


def _unjudged(run_dir: RunDir) -> Unjudged:
    try:
        status = run_dir.status
    except HarnessError:
        status = RunStatus.CRASHED
    return Unjudged(
        passed=False,
        aborted=status is RunStatus.ABORTED,
        incomplete=status in (RunStatus.RUNNING, RunStatus.CRASHED, RunStatus.INTERRUPTED),
    )


def rebuild(path: Path, *, step: float = 1.0) -> tuple[RunReport, ReportPaths]:
    """Judge the run stored at ``path`` again and rewrite its reports (``harness report``).

    BadInputError when ``path`` is not a run directory.
    """
    run_dir = RunDir.open(path)
    judgement, notes = judge_stored(run_dir)
    report = collect(run_dir, judgement, notes=notes, step=step)
    report = with_settled(report, settled_of(run_dir), notes)
    # deferred: the comparison reads the history index, which only a compared run needs
    from harness.report.baseline import recorded_baseline, with_baseline

    baseline, note = recorded_baseline(run_dir)
    if note is not None:
        report = replace(report, notes=(*report.notes, note))
    report = with_baseline(report, run_dir, baseline)
    return report, write_report(run_dir, report)


def with_settled(
    report: RunReport, settled: Settled | None, notes: Sequence[str] = ()
) -> RunReport:
    """``report`` with the exit code the run's end and its verdict decide together
    (:func:`harness.report.exitcode.decide`; ``notes``: why the verdict was not reached, from
    :func:`judge_run`), and the run's own reason for a code it decided; as collected when the
    run stored no end (an older harness)."""
    if settled is None:
        return report
    return replace(
        report,
        exit_code=decide(settled.exit_code, report.exit_code, notes),
        error=settled.reason or report.error,
    )
