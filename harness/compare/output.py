"""A comparison for people and for CI: a terminal table (100 columns), JSON, JUnit and HTML.

Files, written into the run's directory (or ``--out``)::

    compare.json   every figure: key, label, kind, baseline, run, delta, allowed, noise, status
    compare.xml    JUnit: one test case per figure; a regression is a failure, n/a skipped
    compare.html   the table, self-contained (the run's report.html shows the same section)
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

from rich.table import Table
from rich.text import Text

from harness.compare.diff import Comparison, FigureDiff
from harness.compare.noise import MIN_RUNS, NOISE_SPREAD
from harness.errors import InfrastructureError

__all__ = [
    "FILES",
    "NOISE_METHOD",
    "comparison_html",
    "comparison_json",
    "comparison_junit",
    "comparison_rows",
    "comparison_table",
    "headline",
    "write_comparison",
]

FILES: Final = ("compare.json", "compare.xml", "compare.html")
NOISE_METHOD: Final = (
    f"{NOISE_SPREAD:g} x the sample standard deviation of the figure over the latest passing "
    f"runs of the scenario in the history (at least {MIN_RUNS}; else no noise is assumed)"
)
_STYLE: Final = {"regression": "bold red", "noise": "yellow", "improved": "green"}


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def headline(c: Comparison) -> str:
    """One line: what was compared with what, and the upshot."""
    n = len(c.regressions)
    upshot = f"{n} regression{'s' if n != 1 else ''}" if n else "no regression"
    noisy = sum(1 for f in c.figures if f.status == "noise")
    extra = f", {noisy} within noise" if noisy else ""
    return f"{c.run.run} against baseline {c.baseline.run}: {upshot}{extra}"


def comparison_rows(c: Comparison) -> list[dict[str, str]]:
    """The table as strings, for the terminal and the HTML alike."""
    return [
        {
            "figure": f.label,
            "baseline": f.shown(f.baseline),
            "run": f.shown(f.run),
            "delta": f.delta_text,
            "allowed": f.tolerance_text,
            "noise": f.noise_text,
            "status": f.status,
        }
        for f in c.figures
    ]


def comparison_table(c: Comparison) -> Table:
    table = Table(title=headline(c), title_justify="left")
    for name in ("figure", "baseline", "run", "delta", "allowed", "noise", "status"):
        table.add_column(
            name,
            justify="left" if name in ("figure", "status") else "right",
            no_wrap=name != "figure",
            max_width=28 if name == "figure" else None,
            overflow="fold",
        )
    for row in comparison_rows(c):
        cells = list(row.values())
        cells[-1] = Text(row["status"], style=_STYLE.get(row["status"], ""))  # type: ignore[call-overload]
        table.add_row(*cells)
    return table


def _figure_json(f: FigureDiff) -> dict[str, Any]:
    return {
        "key": f.key,
        "label": f.label,
        "kind": f.kind,
        "baseline": _num(f.baseline),
        "run": _num(f.run),
        "delta": _num(f.delta),
        "allowed": _num(f.allowed),
        "noise": _num(f.noise),
        "status": f.status,
    }


def comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "format": 1,
        "baseline": {"run": c.baseline.run, "git_commit": c.baseline.git_commit},
        "run": {"run": c.run.run, "git_commit": c.run.git_commit},
        "scenario": c.run.scenario,
        "regressed": c.regressed,
        "exit_code": 1 if c.regressed else 0,
        "tolerances": dict(c.tolerances),
        "noise": {"method": NOISE_METHOD, "runs": list(c.noise.runs)},
        "figures": [_figure_json(f) for f in c.figures],
    }


def comparison_junit(c: Comparison) -> bytes:
    """One test case per figure (classname ``compare.<kind>``): a regression fails, a figure
    only one run has is skipped."""
    suite = ET.Element(
        "testsuite",
        name=f"compare {c.run.scenario}",
        tests=str(len(c.figures)),
        failures=str(len(c.regressions)),
        skipped=str(sum(1 for f in c.figures if f.status == "n/a")),
    )
    for f in c.figures:
        case = ET.SubElement(suite, "testcase", classname=f"compare.{f.kind}", name=f.label)
        text = (
            f"baseline {f.shown(f.baseline)}, run {f.shown(f.run)} ({f.delta_text}); allowed "
            f"{f.tolerance_text}; status {f.status}"
        )
        if f.status == "regression":
            ET.SubElement(case, "failure", message=text, type="regression").text = text
        elif f.status == "n/a":
            ET.SubElement(case, "skipped", message="only one of the runs has this figure")
        else:
            ET.SubElement(case, "system-out").text = text
    suites = ET.Element("testsuites")
    suites.append(suite)
    written: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return written


def comparison_html(c: Comparison, *, standalone: bool = True) -> str:
    """The comparison table as HTML (escaped); a whole page when ``standalone``."""
    head = "".join(
        f"<th>{name}</th>"
        for name in ("figure", "baseline", "run", "delta", "allowed", "noise", "status")
    )
    body = "".join(
        f'<tr class="{html.escape(row["status"]).replace("/", "")}">'
        + "".join(f"<td>{html.escape(value)}</td>" for value in row.values())
        + "</tr>"
        for row in comparison_rows(c)
    )
    section = (
        f"<p>{html.escape(headline(c))}. Noise: {html.escape(NOISE_METHOD)}.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    if not standalone:
        return section
    return (
        "<!doctype html><meta charset=utf-8><title>comparison</title><style>"
        "body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}"
        "tr.regression{background:#fdd}tr.noise{background:#ffc}</style>"
        f"<h1>Comparison with a baseline</h1>{section}"
    )


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InfrastructureError(f"{path}: cannot write it: {exc.strerror or exc}") from None


def write_comparison(c: Comparison, out: Path) -> list[Path]:
    """compare.json, compare.xml and compare.html into ``out``; their paths."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InfrastructureError(f"{out}: cannot create it: {exc.strerror or exc}") from None
    paths = [out / name for name in FILES]
    data = (
        (json.dumps(comparison_json(c), indent=2, allow_nan=False) + "\n").encode("utf-8"),
        comparison_junit(c),
        comparison_html(c).encode("utf-8"),
    )
    for path, content in zip(paths, data, strict=True):
        _write(path, content)
    return paths
