"""One run (or capacity search) as the history keeps it: who, when, from what, and its figures.

A row is read from the files a run directory already has: ``summary.json`` for the verdict and
the figures, the run store's meta for the resolved scenario (hashed, so runs of the same
scenario text can be told from runs of an edited one), and ``provenance.json``, which
:func:`~harness.history.record.record_run` writes beside them with the git commit and branch
(the run directory alone cannot say which commit it was made from). Everything the index holds
can be read again from the run directories: that is how a lost index is rebuilt.

Figures are flat, ``key -> value`` in the units the key names::

    phase:<name>:rps        attempts per second in that phase      (throughput)
    phase:<name>:p50_ms     p50 / p95 / p99 latency, milliseconds   (latency)
    phase:<name>:ratio_503  503 share, a fraction 0..1              (share)
    total:rps, total:p99_ms, total:ratio_503, ...   the same over the whole run
    recovery:<fault>        recovery time in seconds, None: never recovered
    capacity:<search>       the last offered load that held, arrivals per second
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from harness.errors import BadInputError, HarnessError
from harness.record import RunDir
from harness.safety import loads_json

__all__ = [
    "PROVENANCE_FILE",
    "STAT_KEYS",
    "HistoryRow",
    "RowKind",
    "figure_kind",
    "read_row",
    "row_from_summary",
    "scenario_hash",
]

PROVENANCE_FILE: Final = "provenance.json"
SUMMARY_FILE: Final = "summary.json"
# summary.json of the longest run is a few hundred kilobytes; more than this is not a summary.
MAX_JSON_BYTES: Final = 16 * 1024 * 1024
# The per-window numbers of summary.json a row keeps, per phase and for the whole run.
STAT_KEYS: Final = ("rps", "p50_ms", "p95_ms", "p99_ms", "ratio_503")

RowKind: TypeAlias = Literal["run", "capacity"]


@dataclass(frozen=True)
class HistoryRow:
    """A run directory's row. ``outcome`` is the report's badge (PASS, FAIL, ABORTED,
    INCOMPLETE), or CAPACITY for a capacity search; ``slos`` maps each SLO's name to its
    ``observed``, ``unit`` and ``outcome`` as summary.json has them."""

    run: str
    kind: RowKind
    scenario: str
    started_at: float
    outcome: str
    exit_code: int | None = None
    stack: str = ""
    scenario_hash: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    figures: Mapping[str, float | None] = field(default_factory=dict)
    slos: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "PASS"

    def figure(self, key: str) -> float | None:
        return self.figures.get(key)


def figure_kind(key: str) -> str:
    """The kind of a figure, by its key: throughput, latency, share, recovery or capacity."""
    last = key.rsplit(":", 1)[-1]
    if key.startswith("recovery:"):
        return "recovery"
    if key.startswith("capacity:"):
        return "capacity"
    if last == "rps":
        return "throughput"
    if last.endswith("_ms"):
        return "latency"
    if last == "ratio_503":
        return "share"
    return "other"


def scenario_hash(scenario: object) -> str | None:
    """A short content hash of the resolved scenario (canonical JSON), or None without one."""
    if not isinstance(scenario, Mapping) or not scenario:
        return None
    text = json.dumps(scenario, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _json(path: Path) -> dict[str, Any]:
    # A run directory is a file tree anyone may have written into: bounded, and parsed with the
    # depth checked first (json.loads would die of RecursionError on a deep one).
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise ValueError(f"larger than {MAX_JSON_BYTES} bytes")
        loaded = loads_json(raw)
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BadInputError(f"{path}: not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise BadInputError(f"{path}: expected a JSON object, got {type(loaded).__name__}")
    return loaded


def _provenance(root: Path) -> dict[str, Any]:
    path = root / PROVENANCE_FILE
    if not path.is_file():
        return {}
    try:
        return _json(path)
    except BadInputError:
        return {}  # a damaged sidecar costs the commit, not the row


def _stats(into: dict[str, float | None], prefix: str, stats: object) -> None:
    if not isinstance(stats, Mapping):
        return
    for key in STAT_KEYS:
        into[f"{prefix}:{key}"] = _number(stats.get(key))


def _run_row(root: Path, summary: dict[str, Any], *, read_store: bool = True) -> HistoryRow:
    figures: dict[str, float | None] = {}
    for phase in summary.get("phases") or []:
        if isinstance(phase, Mapping) and phase.get("name"):
            _stats(figures, f"phase:{phase['name']}", phase)
    _stats(figures, "total", summary.get("totals"))
    for rec in summary.get("recoveries") or []:
        if isinstance(rec, Mapping) and rec.get("fault"):
            figures[f"recovery:{rec['fault']}"] = _number(rec.get("recovery_time_s"))
    slos = {
        str(s["name"]): {
            "observed": _number(s.get("observed")),
            "unit": s.get("unit"),
            "outcome": s.get("outcome"),
        }
        for s in summary.get("slos") or []
        if isinstance(s, Mapping) and s.get("name")
    }
    meta: dict[str, Any] = {}
    if read_store:
        # A store that is gone or damaged: the summary still makes a row.
        with contextlib.suppress(HarnessError):
            meta = RunDir.open(root).meta
    exit_code = summary.get("exit_code")
    provenance = _provenance(root)
    return HistoryRow(
        run=root.name,
        kind="run",
        scenario=str(summary.get("scenario") or "unknown"),
        started_at=_number(summary.get("started_at")) or 0.0,
        outcome=str(summary.get("outcome") or "INCOMPLETE"),
        exit_code=exit_code if type(exit_code) is int else None,
        stack=str(summary.get("stack") or ""),
        scenario_hash=scenario_hash(meta.get("scenario")),
        git_commit=provenance.get("git_commit"),
        git_branch=provenance.get("git_branch"),
        figures=figures,
        slos=slos,
    )


def _capacity_row(root: Path, summary: dict[str, Any]) -> HistoryRow:
    figures: dict[str, float | None] = {}
    for search in summary.get("searches") or []:
        if isinstance(search, Mapping) and search.get("label"):
            figures[f"capacity:{search['label']}"] = _number(search.get("capacity"))
    provenance = _provenance(root)
    try:
        started = root.stat().st_mtime
    except OSError:
        started = 0.0
    return HistoryRow(
        run=root.name,
        kind="capacity",
        scenario=str(summary.get("scenario") or "unknown"),
        started_at=_number(provenance.get("recorded_at")) or started,
        outcome="CAPACITY",
        stack="",
        git_commit=provenance.get("git_commit"),
        git_branch=provenance.get("git_branch"),
        figures=figures,
    )


def read_row(root: Path) -> HistoryRow:
    """The row of a run or capacity directory. BadInputError when it has no summary.json (a
    run still going, or not a run directory) or one this cannot read."""
    path = root / SUMMARY_FILE
    if not path.is_file():
        raise BadInputError(
            f"{root}: has no {SUMMARY_FILE} (not a finished run or capacity search)"
        )
    return row_from_summary(root, _json(path))


def row_from_summary(
    root: Path, summary: Mapping[str, Any], *, read_store: bool = True
) -> HistoryRow:
    """The row of the run directory ``root`` whose summary is ``summary`` (as summary.json has
    it, or before it is written); ``read_store=False`` leaves the run store (and so the
    scenario's hash) unread."""
    data = dict(summary)
    if "searches" in data and "slos" not in data:
        return _capacity_row(root, data)
    return _run_row(root, data, read_store=read_store)
