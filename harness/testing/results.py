"""What a run gives a Python caller (:mod:`harness.testing`): the judged result, and the failed
SLOs written for ``assert result.passed, result.failed_slos``.

Standard library only, like :mod:`harness.testing`, which exports these names: the pytest plugin
imports them in every pytest session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.report.model import JudgementLike

__all__ = ["FailedSlos", "RunResult", "shown", "slo_line", "why"]


class FailedSlos(tuple[str, ...]):
    """The SLOs a run failed, one line each: ``name: observed X, needs < Y (window)``.

    Its repr is written for ``assert result.passed, result.failed_slos``: pytest shows that
    message's repr, so it reads as the failure (why the run failed, each failed SLO, the report
    to open) rather than as a tuple. pytest shortens a long repr in the middle; the plugin adds
    the whole story to the failed test's report as well.
    """

    why: str
    report: Path

    # Defaults, so copy and pickle (which call ``cls(lines)``) work; they restore the rest.
    def __new__(
        cls, lines: Iterable[str] = (), *, why: str = "", report: Path = Path()
    ) -> FailedSlos:
        failed = super().__new__(cls, lines)
        failed.why = why
        failed.report = report
        return failed

    def __repr__(self) -> str:
        return "\n".join([self.why, *(f"  {line}" for line in self), f"report: {self.report}"])


@dataclass(frozen=True)
class RunResult:
    """A judged run. ``summary`` is its summary.json (keys in :mod:`harness.report.summary`);
    ``judgement`` the verdict's own objects; ``exit_code`` what ``harness run`` would exit
    with: 0 every SLO met, 1 one failed, 4 aborted by a guard."""

    exit_code: int
    status: str
    run_dir: Path
    # Out of the repr: pytest shows it under a failed ``assert result.passed``, where the whole
    # summary would bury the failed SLOs.
    summary: Mapping[str, Any] = field(repr=False)
    judgement: JudgementLike = field(repr=False)
    failed_slos: FailedSlos

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    def explain(self) -> str:
        """Everything a failed check should say, on a few lines."""
        return repr(self.failed_slos)


def slo_line(slo: Mapping[str, Any]) -> str:
    """One SLO of summary.json as a person reads it: observed against the threshold, in the
    unit the SLO was written in."""
    # deferred: lark, with the verdict, which a pytest session that never judges must not pay
    from harness.verdict.units import measured, measured_pair

    name = str(slo.get("name"))
    if not slo.get("judged", True):
        return f"{name}: not judged"
    # Format 2 keeps the written unit apart ("unit" names the stored one: s, ratio, number);
    # format 1 had the written unit under "unit". The values are stored the same in both.
    unit = str(slo.get("written_unit", slo.get("unit")) or "")
    observed, threshold = slo.get("observed"), slo.get("threshold")
    if observed is not None and threshold is not None:
        seen, needs = measured_pair(float(observed), float(threshold), unit)
    else:
        seen = "no value" if observed is None else measured(float(observed), unit)
        needs = "?" if threshold is None else measured(float(threshold), unit)
    line = f"{name}: observed {seen}, needs {slo.get('comparator')} {needs}"
    line += f" ({slo.get('window') or 'whole run'})"
    detail = str(slo.get("detail") or "")
    # Without a value the detail is the reason (never recovered, no requests in the window).
    return f"{line}: {detail}" if observed is None and detail else line


def why(summary: Mapping[str, Any], exit_code: int, failed: int) -> str:
    """The first line of a failed check's message: the outcome, how many SLOs failed, why."""
    slos = summary.get("slos") or []
    words = f"run {summary.get('outcome', '?')} (exit {exit_code})"
    if failed:
        words += f": {failed} of {len(slos)} SLO(s) failed"
    elif exit_code == 0:
        words += f": every SLO met ({len(slos)})"
    reasons = [str(summary.get("error") or ""), *map(str, summary.get("notes") or [])]
    return "; ".join([words, *(r for r in reasons if r)])


def shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it: shorter in messages."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
