"""report.html: one self-contained, escaped page that says what happened."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from harness.record import EventKind, RunDir, RunStatus
from harness.report import write_reports
from harness.report.data import collect
from harness.report.html import TEMPLATE, render_html
from harness.report.model import Unjudged

from .test_report_plots import assert_decodes
from .test_report_synthetic import T0, build_run, judgement

pytestmark = pytest.mark.unit


class _Links(HTMLParser):
    """Every URL-bearing attribute and every tag, to check nothing is fetched."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The synthetic run's report.html, plots drawn, written once for the tests that read it."""
    paths = write_reports(build_run(tmp_path_factory.mktemp("page")), judgement())
    return paths.report_html.read_text(encoding="utf-8")


def test_the_page_is_self_contained(page: str) -> None:
    html = page
    links = _Links()
    links.feed(html)
    assert links.urls, "the plots should be there"
    assert all(url.startswith("data:image/png;base64,") for url in links.urls)
    assert not {"script", "link", "iframe", "object"} & links.tags
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.IGNORECASE)
    assert "@import" not in html
    assert "url(" not in html


def test_the_embedded_plots_decode(page: str) -> None:
    html = page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3
    for encoded in images:
        assert_decodes(base64.b64decode(encoded, validate=True))


def test_the_page_names_every_slo_fault_and_phase(page: str) -> None:
    html = page
    for text in (
        "spike-503",
        "no-500s",
        "p99-warmup",
        "kill-app-1",
        "slow-db",
        "warmup",
        "spike",
        "cooldown",
    ):
        assert text in html, text
    assert ">FAIL<" in html  # the badge
    assert "never recovered" in html
    assert "not judged" in html  # the "recovery" SLO the fake verdict leaves out
    # observed and threshold in the unit the SLO was written in (base units in the verdict)
    assert "12%" in html
    assert "&lt; 5%" in html
    assert "20ms" in html


def test_everything_from_the_run_is_escaped(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    hostile = '<script>alert("x")</script>'
    writer = run.writer(clock=lambda: T0 + 41)
    writer.event(EventKind.NOTE, hostile, {"why": hostile})
    writer.close()  # without finish(): the run already ended
    html = render_html(collect(run, judgement(), notes=(hostile,)), {})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.usefixtures("plots_not_drawn")  # drawn for real: test_report_plots.py
def test_a_crashed_run_says_incomplete_loudly(tmp_path: Path) -> None:
    run = build_run(tmp_path, upto=20.0, finish=None)
    # Even a verdict that says nothing of it: the store's status decides.
    paths = write_reports(run, Unjudged(passed=True, aborted=False, incomplete=False))
    html = paths.report_html.read_text(encoding="utf-8")
    assert ">INCOMPLETE<" in html
    assert "INCOMPLETE: the run did not reach the end of its phases" in html
    assert "status: crashed" in html
    assert "did not end" in html


@pytest.mark.usefixtures("plots_not_drawn")  # drawn for real: test_report_plots.py
def test_an_aborted_run_shows_aborted(tmp_path: Path) -> None:
    run = build_run(tmp_path, upto=20.0, finish=RunStatus.ABORTED, error="guard 5xx-storm")
    html = write_reports(run, judgement(aborted=True)).report_html.read_text(encoding="utf-8")
    assert ">ABORTED<" in html
    assert "guard 5xx-storm" in html


@pytest.mark.usefixtures("plots_not_drawn")  # drawn for real: test_report_plots.py
def test_an_empty_run_still_renders(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "empty", clock=lambda: T0)
    with run.writer(clock=lambda: T0 + 1):
        pass
    html = write_reports(run, Unjudged(passed=True, aborted=False, incomplete=False))
    text = html.report_html.read_text(encoding="utf-8")
    assert "No phase was recorded" in text
    assert "No fault was injected" in text


def test_the_template_is_package_data_found_through_importlib_resources() -> None:
    template = resources.files("harness.report").joinpath("templates", TEMPLATE)
    assert template.is_file()
    assert "<!DOCTYPE html>" in template.read_text(encoding="utf-8")
