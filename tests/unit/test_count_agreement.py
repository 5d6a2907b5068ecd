"""One run, one count: the totals line at the end of the run, a whole-run ``count(...)`` SLO,
``no-500s``'s detail, summary.json's totals, the JUnit messages and the HTML totals row all give
the same number of requests, and every judged value reads the same in the terminal, the HTML,
the JUnit file and (formatted from its raw number in its written unit) the JSON.

Through the real code: a run store written as the master writes it, judged by
:mod:`harness.verdict` and reported by :func:`harness.run.conclude.conclude`. The store has what
made counts disagree before: attempts before the first phase and after the last (the users
stopping), and phase edges recorded a few milliseconds off the bucket boundaries.
"""

from __future__ import annotations

import html
import io
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from rich.console import Console

from harness.record import EventKind, RunDir, RunStatus
from harness.record.buckets import Bucket
from harness.report import fmt
from harness.run.conclude import conclude
from harness.run.preflight import resolve_scenario
from harness.run.settle import settle

from .fake_plots import plots_not_drawn

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
FIRST, LAST = -3, 45  # buckets recorded, relative to T0: 3 before the load, 5 after it ended

SCENARIO = """\
name: counts
load:
  locustfile: lf.py
  phases:
    - {name: warm, duration: 2s, users: 1, spawn_rate: 1}
    - {name: spike, duration: 2s, users: 5, spawn_rate: 5}
slos:
  - {name: no-500s, expr: "count(status == 500) == 0"}
  - {name: every-request, expr: "count(status >= 0) < 1"}
  - {name: available, expr: "availability >= 99.9%"}
  - {name: fast, expr: "p99(latency) < 1ms"}
  - {name: few-503s, expr: "ratio(status == 503) < 0.1% during phase spike"}
"""


def statuses_at(i: int) -> dict[int, int]:
    """Bucket ``i``'s responses: mostly 200, some 409 (answers), 503, 500 and no response."""
    found = {200: 1000 + i, 409: 2, 503: 3, 0: 1, 500: 1 if i % 7 == 0 else 0}
    return {status: n for status, n in found.items() if n}


def expected_in_window() -> dict[str, int]:
    """The truth, counted here by hand: buckets 0..39 (the phases' 4 s)."""
    window = [statuses_at(i) for i in range(40)]
    return {
        "attempts": sum(sum(s.values()) for s in window),
        "500": sum(s.get(500, 0) for s in window),
        "failed": sum(n for s in window for status, n in s.items() if status == 0 or status >= 500),
    }


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("counts")
    (tmp / "lf.py").write_text("# users\n")
    (tmp / "s.yaml").write_text(SCENARIO)
    scenario = resolve_scenario(tmp / "s.yaml")
    run = RunDir.create(tmp / "reports", "counts", clock=lambda: T0 - 1)
    with run.writer(clock=lambda: T0 + 4.5) as writer:
        writer.set_scenario(scenario.to_dict())
        writer.set_meta("load_started_at", T0)
        # Observed, not planned, times: a few milliseconds off the 100 ms boundaries.
        for index, (name, start, end) in enumerate(
            (("warm", 0.003, 2.004), ("spike", 2.004, 3.97))
        ):
            writer.event(EventKind.PHASE_START, name, {"index": index}, t=T0 + start)
            writer.event(EventKind.PHASE_END, name, {"index": index}, t=T0 + end)
        parts = []
        for i in range(FIRST, LAST):
            bucket = Bucket(round(T0 * 10) + i)
            bucket.statuses = statuses_at(i)
            n = sum(bucket.statuses.values())
            bucket.latency.record(0.0271, n)
            bucket.attempts = n
            bucket.done = n - 3
            parts.append(bucket.to_dict())
        writer.upsert_buckets(parts)
        writer.finish(RunStatus.COMPLETED)
    out = io.StringIO()
    settled = settle(run, 0, interrupted=False, state_dir=None, tell=lambda _: None)
    with plots_not_drawn():  # what is counted is text; the plots: test_report_plots.py
        conclude(settled, scenario, tell=lambda _: None, console=Console(file=out, width=100))
    page = html.unescape(re.sub(r"<[^>]+>", " ", run.report_html.read_text()))
    return {
        "terminal": out.getvalue(),
        "summary": json.loads(run.summary_json.read_text()),
        "junit": ET.parse(run.junit_xml).getroot(),
        "html": re.sub(r"\s+", " ", page),
    }


def junit_message(reported: dict[str, Any], slo: str) -> str:
    case = next(c for c in reported["junit"].iter("testcase") if c.get("name") == slo)
    failure = case.find("failure")
    assert failure is not None, f"{slo} passed: the store was meant to fail it"
    return str(failure.get("message"))


def terminal_row(reported: dict[str, Any], slo: str) -> list[str]:
    for line in reported["terminal"].splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) > 1 and cells[1] == slo:
            return cells
    raise AssertionError(f"no row for {slo} in:\n{reported['terminal']}")


def test_every_rendering_counts_the_same_requests_as_the_truth(reported: dict[str, Any]) -> None:
    truth = expected_in_window()
    attempts = fmt.count(truth["attempts"])
    summary = reported["summary"]
    slos = {s["name"]: s for s in summary["slos"]}

    assert summary["totals"]["attempts"] == truth["attempts"]
    assert summary["totals"]["failed"] == truth["failed"]
    assert slos["every-request"]["observed"] == truth["attempts"]
    assert slos["no-500s"]["observed"] == truth["500"]
    # Left out of every count alike, and said so.
    assert summary["outside_window"] == sum(
        sum(statuses_at(i).values()) for i in (*range(FIRST, 0), *range(40, LAST))
    )

    terminal = reported["terminal"]
    assert f"totals: {attempts} attempts," in terminal
    assert f"{fmt.count(truth['failed'])} failed" in terminal
    assert terminal_row(reported, "every-request")[3] == attempts
    assert f"{truth['500']} of {attempts} responses match status == 500" in terminal
    assert f"{fmt.count(truth['failed'])} of {attempts} responses failed" in terminal

    assert junit_message(reported, "every-request").startswith(f"observed {attempts},")
    assert f"of {attempts} responses" in slos["no-500s"]["detail"]

    page = reported["html"]
    assert re.search(rf"whole run .*? {re.escape(attempts)} ", page), "no totals row"
    assert f"{truth['500']} of {attempts} responses match status == 500" in page


def test_a_judged_value_reads_the_same_in_every_rendering(reported: dict[str, Any]) -> None:
    slos = {s["name"]: s for s in reported["summary"]["slos"]}
    shown = {}
    for name, slo in slos.items():
        # The JSON holds the raw number in ``unit``; a person reads it in the written unit.
        shown[name] = fmt.measured(slo["observed"], slo["written_unit"] or "")
        assert terminal_row(reported, name)[3] == shown[name]
        assert junit_message(reported, name).startswith(f"observed {shown[name]},")
        assert f" {shown[name]} " in reported["html"], name
    assert shown == {
        "no-500s": "6",
        "every-request": fmt.count(expected_in_window()["attempts"]),
        "available": "99.6%",
        "fast": "26.89ms",
        "few-503s": "0.2897%",  # 60 of the spike's 20,713 (buckets 20..39)
    }
