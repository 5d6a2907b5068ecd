"""Compare a run with a baseline run: every figure side by side, its delta, and a verdict
against per-kind tolerances and the run-to-run noise of the history.

::

    noise    the noise of each figure, from the history's passing runs
    diff     FigureDiff and Comparison: the verdict of each figure
    output   terminal table, compare.json, compare.xml (JUnit), compare.html
    gate     resolve two runs (paths, latest, latest-pass, git refs) and compare them
"""

from __future__ import annotations

from harness.compare.diff import Comparison, FigureDiff, compare_rows
from harness.compare.gate import compare_specs, compare_with_history, scenario_regression
from harness.compare.noise import Noise, estimate_noise
from harness.compare.output import (
    comparison_html,
    comparison_json,
    comparison_rows,
    comparison_table,
    headline,
    write_comparison,
)

__all__ = [
    "Comparison",
    "FigureDiff",
    "Noise",
    "compare_rows",
    "compare_specs",
    "compare_with_history",
    "comparison_html",
    "comparison_json",
    "comparison_rows",
    "comparison_table",
    "estimate_noise",
    "headline",
    "scenario_regression",
    "write_comparison",
]
