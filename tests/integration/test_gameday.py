"""`harness gameday` on the local stack: faults injected and reverted by hand, from the chaos tab
in a real browser (headless Chromium from the system, driven by Playwright) and from a second
terminal, journaled with who did it, and shown in the run's report like the scheduled ones.

A missing Chromium (or Playwright) skips the browser test, unless HARNESS_REQUIRE_BROWSER=1
(CI sets it), which makes it a failure. Nothing is downloaded: Playwright launches the system's
Chromium by its path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from run_support import run_dirs
from stack_support import RunningStack
from test_run_load import children_of, events, finish, harness_env, no_harness_processes_left

from harness.faults import Journal
from harness.gameday import ControlFile, NoGameday
from harness.record import EventKind, RunDir

pytestmark = pytest.mark.integration

USERS = """\
    from locust import FastHttpUser, constant, task


    class Browse(FastHttpUser):
        wait_time = constant(0.1)

        @task
        def products(self):
            self.client.get("/products")
    """

# One catalogue fault (no `at`): it happens only when someone injects it.
SCENARIO = """\
    name: gd
    load:
      locustfile: users.py
      phases: [{name: steady, duration: 20s, users: 3, spawn_rate: 10}]
    faults:
      - {name: slow-db, action: toxic, target: app-db,
         params: {type: latency, latency: 30}}
    slos:
      - {name: no-500s, expr: "count(status == 500) == 0"}
    """


def chromium() -> str:
    """The system's Chromium, or a skip (a failure when HARNESS_REQUIRE_BROWSER=1)."""
    path = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    problem = ""
    if not Path(path).exists():
        problem = f"no Chromium at {path} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright is not installed (pip install playwright)"
    if problem:
        if os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"HARNESS_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return path


@contextlib.contextmanager
def running_gameday(
    tmp_path: Path, stack: RunningStack
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A game day in the background; a test that fails half-way still ends it (Ctrl-C first,
    so its faults are reverted for the tests that follow) and closes its pipes."""
    process, reports = start_gameday(tmp_path, stack)
    try:
        yield process, reports
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
                process.kill()
        if process.stdout is not None and not process.stdout.closed:
            process.communicate()  # closes the pipes, which finish() may have done already


def start_gameday(tmp_path: Path, stack: RunningStack) -> tuple[subprocess.Popen[str], Path]:
    (tmp_path / "users.py").write_text(textwrap.dedent(USERS))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(textwrap.dedent(SCENARIO))
    reports = tmp_path / "reports"
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "gameday",
            str(scenario),
            "--web-port",
            "0",
            "--reports",
            str(reports),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, reports


def control_of(stack: RunningStack, process: subprocess.Popen[str]) -> ControlFile:
    deadline = time.monotonic() + 30
    while True:
        try:
            return ControlFile.read(stack.harness.state_dir)
        except NoGameday:
            if process.poll() is not None or time.monotonic() > deadline:
                out, err = process.communicate()
                pytest.fail(f"the game day never wrote its control file:\n{out}\n{err}")
            time.sleep(0.1)


def cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        env=harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def toxics_on_app_db(stack: RunningStack) -> list[str]:
    from harness.proxy.client import ToxiproxyClient

    client = ToxiproxyClient(stack.info.toxiproxy_url)
    return [toxic.name for toxic in client.toxics("app-db")]


def the_report(reports: Path) -> tuple[RunDir, dict[str, Any], str]:
    (root,) = run_dirs(reports)
    summary = json.loads((root / "summary.json").read_text())
    return RunDir.open(root), summary, (root / "report.html").read_text()


def _click_through(
    executable: str, stack: RunningStack, process: subprocess.Popen[str]
) -> tuple[str, str]:
    """Inject slow-db with a click in the chaos tab, see it active (there and in Locust's own
    Chaos tab), revert it with a click; then the game day's own end, and its output."""
    from playwright.sync_api import expect, sync_playwright

    children = children_of(process, 1)
    control = control_of(stack, process)
    assert control.url.startswith("http://127.0.0.1:")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page()
            page.goto(control.page)
            page.fill("#who", "ana (browser)")
            page.dispatch_event("#who", "change")
            inject = page.locator("#inject-slow-db")
            expect(inject).to_be_enabled(timeout=15_000)  # once the load has started
            inject.click()
            active = page.locator('#timeline tr[data-fault="slow-db"][data-state="active"]')
            expect(active).to_be_visible(timeout=15_000)
            expect(active).to_contain_text("ana (browser)")
            assert toxics_on_app_db(stack) != []  # really in force on the stack
            # Locust's own UI carries a Chaos tab with the same timeline.
            locust = browser.new_page()
            locust.goto(control.url + "/?tab=chaos")
            expect(locust.get_by_text("fault slow-db")).to_be_visible(timeout=15_000)
            locust.close()

            page.locator("#revert-slow-db").click()
            reverted = page.locator('#timeline tr[data-fault="slow-db"][data-state="reverted"]')
            expect(reverted).to_be_visible(timeout=15_000)
            assert toxics_on_app_db(stack) == []
        finally:
            browser.close()
    out, err = finish(process, timeout_s=90)
    no_harness_processes_left(children)
    return out, err


def test_a_fault_injected_and_reverted_by_clicks_in_the_chaos_tab_is_in_the_report(
    stack: RunningStack, tmp_path: Path
) -> None:
    executable = chromium()
    with running_gameday(tmp_path, stack) as (process, reports):
        out, err = _click_through(executable, stack, process)
    assert process.returncode == 0, f"{out}\n{err}"

    run, summary, html = the_report(reports)
    injected = events(run, EventKind.FAULT_INJECTED)
    assert [(e.name, e.detail.get("manual"), e.detail.get("who")) for e in injected] == [
        ("slow-db", True, "ana (browser)")
    ]
    (reverted_event,) = events(run, EventKind.FAULT_REVERTED)
    assert reverted_event.detail.get("reverted_by") == "ana (browser)"
    (fault,) = summary["faults"]
    assert fault["name"] == "slow-db"
    assert fault["manual"] is True
    assert fault["who"] == "ana (browser)"
    assert fault["reverted"] is True
    assert fault["reverted_s"] > fault["injected_s"]
    assert "manual, by ana (browser)" in html
    assert html.count("fault_injected") >= 1
    assert html.count("fault_reverted") >= 1
    assert Journal.in_state_dir(stack.harness.state_dir).pending() == []
    assert not ControlFile.path(stack.harness.state_dir).exists()


def test_inject_status_and_revert_from_a_second_terminal(
    stack: RunningStack, tmp_path: Path
) -> None:
    nothing = cli(stack, "inject", "slow-db")
    assert nothing.returncode == 3, nothing.stderr
    assert "no game day is running" in nothing.stderr

    with running_gameday(tmp_path, stack) as (process, reports):
        control_of(stack, process)
        deadline = time.monotonic() + 20
        while (
            injected := cli(stack, "inject", "slow-db", "--for", "4s", "--who", "bo")
        ).returncode:
            # Refused (exit 1) until the load has started; anything else is a failure.
            assert injected.returncode == 1, injected.stderr
            assert time.monotonic() < deadline, injected.stderr
            time.sleep(0.5)
        assert "slow-db  active  manual, by bo" in injected.stdout

        unknown = cli(stack, "inject", "slow-dbb")
        assert unknown.returncode == 2
        assert "no fault 'slow-dbb'" in unknown.stderr
        assert "slow-db" in unknown.stderr
        again = cli(stack, "inject", "slow-db")
        assert again.returncode == 1
        assert "already in force" in again.stderr

        status = cli(stack, "status")
        assert "game day gd: phase steady" in status.stdout, status.stdout + status.stderr
        assert "slow-db  active  manual, by bo" in status.stdout

        # Its `--for 4s` reverts it by itself; then by hand again, and reverted with --all.
        time.sleep(5)
        assert toxics_on_app_db(stack) == []
        assert cli(stack, "revert", "slow-db").returncode == 1  # not in force any more
        assert cli(stack, "inject", "slow-db", "--who", "cy").returncode == 0
        reverted = cli(stack, "revert", "--all", "--who", "cy")
        assert reverted.returncode == 0, reverted.stderr
        assert "slow-db  reverted" in reverted.stdout
        assert toxics_on_app_db(stack) == []

        out, err = finish(process, timeout_s=90)
    assert process.returncode == 0, f"{out}\n{err}"
    run, summary, html = the_report(reports)
    assert [(f["name"], f["who"], f["reverted"]) for f in summary["faults"]] == [
        ("slow-db", "bo", True),
        ("slow-db", "cy", True),
    ]
    (first, second) = events(run, EventKind.FAULT_REVERTED)
    assert "reverted_by" not in first.detail  # its duration was up
    assert second.detail["reverted_by"] == "cy"
    assert "manual, by bo" in html
    assert "manual, by cy" in html
    after = cli(stack, "status")
    assert "no game day is running" in after.stdout
