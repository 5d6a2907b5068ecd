"""The GitHub Actions workflow of docs/ci that keeps the run history between runs: it restores
and saves the reports directory under the same key, gates with --baseline latest-pass, and trims
only the heavy files (never a summary.json or the index) before saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "ci" / "github-actions-baseline.yml"


def steps() -> list[dict[str, Any]]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = data["jobs"]["resilience"]["steps"]
    return found


def step(uses_or_name: str) -> dict[str, Any]:
    for s in steps():
        if uses_or_name in (s.get("uses", ""), s.get("name", "")):
            return s
    raise AssertionError(f"no step {uses_or_name}")


def test_the_history_is_restored_before_the_gate_and_saved_after_it() -> None:
    names = [s.get("uses") or s.get("name") for s in steps()]
    restore = names.index("actions/cache/restore@v4")
    gate = names.index("Run the CI gate scenario against the last passing run")
    save = names.index("actions/cache/save@v4")
    assert restore < gate < save
    restored, saved = step("actions/cache/restore@v4"), step("actions/cache/save@v4")
    assert restored["with"]["path"] == saved["with"]["path"] == "reports/"
    assert restored["with"]["key"] == saved["with"]["key"]
    assert "harness-history-main-" in restored["with"]["restore-keys"]
    assert saved["if"] == "always()"


def test_the_gate_compares_with_the_last_passing_run() -> None:
    run = step("Run the CI gate scenario against the last passing run")["run"]
    assert "--baseline latest-pass" in run
    assert "--reports reports" in run


def test_the_trim_keeps_summaries_and_the_index() -> None:
    trim = step("Trim the history for the cache")["run"]
    assert "run.sqlite" in trim
    assert "summary.json" not in trim
    assert "history.sqlite" not in trim
    assert "-mindepth 2" in trim  # inside run directories only: the index is at depth 1
