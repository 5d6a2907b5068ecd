"""The capacity report: summary.json, capacity.png and report.html in the capacity directory."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.capacity.analysis import SearchResult

__all__ = ["plot", "show", "write_report"]


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:g}/s"


def plot(searches: Sequence[SearchResult], path: Path) -> None:
    """Throughput, p99 and 503 ratio against offered load, one line per search."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file, also on a CI machine
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    for result in searches:
        x = [s.offered for s in result.steps]
        (line,) = axes[0].plot(
            x, [s.throughput for s in result.steps], marker="o", label=result.label
        )
        axes[1].plot(
            x, [1000 * (s.p99_s or 0.0) for s in result.steps], marker="o", label=result.label
        )
        axes[2].plot(
            x, [100 * (s.ratio_503 or 0.0) for s in result.steps], marker="o", label=result.label
        )
        if result.capacity is not None:
            for ax in axes:
                ax.axvline(result.capacity, linestyle="--", alpha=0.6, color=line.get_color())
    axes[0].set_ylabel("good responses/s")
    axes[1].set_ylabel("p99 latency (ms)")
    axes[2].set_ylabel("503 ratio (%)")
    axes[2].set_xlabel("offered load (arrivals/s)")
    for ax in axes:
        ax.set_ylim(bottom=0)  # a ratio or a rate: a flat zero must not read as a range
    axes[0].legend()
    axes[0].set_title("capacity: dashed lines mark the last load that held")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(root: Path, scenario: str, searches: Sequence[SearchResult]) -> dict[str, Path]:
    summary = {
        "scenario": scenario,
        "model": "open",
        "searches": [
            {
                **{k: v for k, v in asdict(result).items() if k != "steps"},
                "found": result.found,
                "steps": [{**asdict(step), "held": step.held} for step in result.steps],
            }
            for result in searches
        ],
    }
    summary_path = root / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    png = root / "capacity.png"
    plot(searches, png)
    image = base64.b64encode(png.read_bytes()).decode("ascii")
    rows = []
    for result in searches:
        rows.append(
            f"<h2>{html.escape(result.label)}</h2><p>capacity (last load that held): "
            f"<b>{_rate(result.capacity)}</b> · broke at {_rate(result.breaking)} · knee "
            f"{_rate(result.knee)} · 503 onset {_rate(result.onset_503)} · run "
            f"<code>{html.escape(result.run_dir)}</code></p><table><tr><th>step</th>"
            "<th>offered</th><th>good/s</th><th>p99</th><th>503</th><th>SLOs failed</th></tr>"
        )
        for s in result.steps:
            p99 = "-" if s.p99_s is None else f"{1000 * s.p99_s:.0f} ms"
            r503 = "-" if s.ratio_503 is None else f"{100 * s.ratio_503:.1f}%"
            rows.append(
                f"<tr><td>{s.name}</td><td>{s.offered:g}/s</td><td>{s.throughput:.1f}</td>"
                f"<td>{p99}</td><td>{r503}</td><td>{html.escape(', '.join(s.failed))}</td></tr>"
            )
        rows.append("</table>")
        rows.extend(f"<p>note: {html.escape(n)}</p>" for n in result.notes)
    page = (
        "<!doctype html><meta charset=utf-8><title>capacity: "
        f"{html.escape(scenario)}</title><style>body{{font-family:sans-serif}}"
        "td,th{padding:2px 8px;text-align:right}</style>"
        f"<h1>Capacity of {html.escape(scenario)}</h1>"
        "<p>load model: open (offered load = arrivals per second)</p>"
        + "".join(rows)
        + f'<p><img alt="capacity plot" src="data:image/png;base64,{image}"></p>'
    )
    html_path = root / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return {"summary": summary_path, "plot": png, "html": html_path}


def show(searches: Sequence[SearchResult], console: Console, *, plot: Path, report: Path) -> None:
    """The steps of each search and what they add up to, for the terminal."""
    for result in searches:
        table = Table(title=f"capacity search: {result.label}", title_justify="left")
        for column in ("step", "offered/s", "good/s", "p99", "503", "held"):
            table.add_column(column, justify="left" if column in ("step", "held") else "right")
        for s in result.steps:
            table.add_row(
                s.name,
                f"{s.offered:g}",
                f"{s.throughput:.1f}",
                "-" if s.p99_s is None else f"{1000 * s.p99_s:.0f} ms",
                "-" if s.ratio_503 is None else f"{100 * s.ratio_503:.1f}%",
                "yes" if s.held else f"no: {', '.join(s.failed) or 'no responses'}",
            )
        console.print(table)
        if result.found:
            found = f"capacity {_rate(result.capacity)} (broke at {_rate(result.breaking)})"
        else:
            found = f"held up to {_rate(result.capacity)}: no breaking point below the maximum"
        console.print(
            f"{result.label}: {found}, knee {_rate(result.knee)}, "
            f"503 onset {_rate(result.onset_503)}",
            markup=False,
            highlight=False,
        )
        for note in result.notes:
            console.print(f"  note: {note}", markup=False, highlight=False)
        console.print(f"  run: {result.run_dir}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"plot: {plot}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {report}", markup=False, highlight=False, soft_wrap=True)
