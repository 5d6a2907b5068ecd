"""`harness run` judged for real: the sample shop under short scenarios with faults, against SLOs
that a resilient shop meets and a deliberately bad one does not, with the exit code, the reports
and the verdicts all telling the same story.

Each scenario is written into ``tmp_path`` from :data:`SHOP_SCENARIO` (34 s of load on the shop:
a backend killed, then two seconds of maintenance). The runs go against the session stack, healed
before and after each, except the one that needs a shop without ``Retry-After``, which gets a
stack of its own. Runs that two tests compare are made once per module.
"""

from __future__ import annotations

import json
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_support import (
    Harness,
    RunningStack,
    heal,
    own_stack,
)
from test_run_interrupt import assert_stack_whole
from test_run_load import events, harness_env, run_harness, the_run

from harness.record import EventKind, RunDir, RunStatus

pytestmark = pytest.mark.integration

SHOP_LOCUSTFILE = Path(__file__).parents[2] / "scenarios" / "shop_locustfile.py"

# The shop's own settings the session stack runs with (stack_support.APP_ENV), repeated where a
# verdict depends on them: a scenario says which shop it was written for, and the harness refuses
# a running stack that differs.
SHOP_SCENARIO = """\
    name: {name}
    stack:
      env: {env}
    load:
      locustfile: {locustfile}
      user_classes: [{user_class}]
      phases:
        - {{name: warmup, duration: 5s, users: 10, spawn_rate: 20}}
        - {{name: storm, duration: 13s, users: 20, spawn_rate: 20}}
        - {{name: after, duration: 16s, users: 10, spawn_rate: 20}}
    # Inside the storm, clear of the warm-up (a request cut by the kill must not count there), and
    # far enough apart that each recovery (5 s stable) is measured on its own fault. Maintenance
    # answers Retry-After: 5, so a client that met it last waits until about 5 s after the revert:
    # recovery can truly take that long, and the run goes on long enough to see it stay good.
    faults:
      - {{name: kill-app-1, action: kill, target: app-1, at: 6s, for: 3s}}
      - {{name: maintenance, action: maintenance, at: 16s, for: 2s}}
    slos:
      - {{name: no-500s, expr: "count(status == 500) == 0"}}
      - {{name: retry-after-on-503s, expr: "ratio(retry_after, where status == 503) >= 99%"}}
      - {{name: clients-wait-out-retry-after, expr: "retry_after_compliance >= 99%"}}
      - {{name: attempt-cap-respected, expr: "attempt_cap_respected == 100%"}}
      - {{name: warmup-available, expr: "availability >= 99% during phase warmup"}}
      - {{name: warmup-p99, expr: "p99(latency) < 500ms during phase warmup"}}
      - {{name: kill-app-1-recovers, expr: "recovery_time(kill-app-1) < 5s"}}
      - {{name: maintenance-recovers, expr: "recovery_time(maintenance) < 8s"}}
    guards:
      - "abort if ratio(status >= 500) > 90% for 10s"
    """
SLO_NAMES = [
    "no-500s",
    "retry-after-on-503s",
    "clients-wait-out-retry-after",
    "attempt-cap-respected",
    "warmup-available",
    "warmup-p99",
    "kill-app-1-recovers",
    "maintenance-recovers",
]
# The SLOs whose truth depends on the shop sending Retry-After with its 503s.
NEEDS_RETRY_AFTER = {"retry-after-on-503s", "clients-wait-out-retry-after"}
SESSION_ENV = '{SHOP_MAINTENANCE_RETRY_AFTER_S: "5"}'


def shop_scenario(
    tmp_path: Path, *, name: str, user_class: str = "ShopUser", env: str = SESSION_ENV
) -> Path:
    path = tmp_path / f"{name}.yaml"
    text = SHOP_SCENARIO.format(
        name=name, env=env, locustfile=SHOP_LOCUSTFILE, user_class=user_class
    )
    path.write_text(textwrap.dedent(text))
    return path


@dataclass(frozen=True)
class Judged:
    """One `harness run`, as a CI sees it: the exit code, the output and the three reports."""

    code: int
    out: str
    err: str
    run: RunDir
    summary: dict[str, Any]
    junit: ET.Element
    html: str
    seconds: float

    @property
    def verdicts(self) -> dict[str, dict[str, Any]]:
        return {slo["name"]: slo for slo in self.summary["slos"]}

    @property
    def failed(self) -> set[str]:
        return {name for name, slo in self.verdicts.items() if not slo["passed"]}

    def phase(self, name: str) -> dict[str, Any]:
        (phase,) = [p for p in self.summary["phases"] if p["name"] == name]
        return phase

    def recovery(self, fault: str) -> dict[str, Any]:
        (recovery,) = [r for r in self.summary["recoveries"] if r["fault"] == fault]
        return recovery

    def __str__(self) -> str:  # what a failed assertion shows
        return f"exit {self.code}\n{self.out}\n{self.err[-3000:]}"


def judged_run(scenario: Path, state_dir: Path, reports: Path) -> Judged:
    env = harness_env({"HARNESS_STATE_DIR": str(state_dir)})
    started = time.monotonic()
    code, out, err = run_harness(scenario, "--reports", str(reports), env=env)
    seconds = time.monotonic() - started
    run = the_run(reports)
    return Judged(
        code=code,
        out=out,
        err=err,
        run=run,
        summary=json.loads(run.summary_json.read_text()),
        junit=ET.parse(run.junit_xml).getroot(),
        html=run.report_html.read_text(),
        seconds=seconds,
    )


def on_session_stack(
    local_stack: RunningStack, tmp_path: Path, *, name: str, user_class: str = "ShopUser"
) -> Judged:
    heal(local_stack)
    try:
        scenario = shop_scenario(tmp_path, name=name, user_class=user_class)
        return judged_run(scenario, local_stack.harness.state_dir, tmp_path / "reports")
    finally:
        heal(local_stack)


def junit_counts(junit: ET.Element) -> tuple[int, int]:
    suite = junit if junit.tag == "testsuite" else junit.find("testsuite")
    assert suite is not None
    return int(suite.get("tests", "-1")), int(suite.get("failures", "-1"))


def junit_failures(junit: ET.Element) -> set[str]:
    return {
        case.get("name", "")
        for case in junit.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    }


@pytest.fixture(scope="module")
def backoff_run(local_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Judged:
    return on_session_stack(local_stack, tmp_path_factory.mktemp("backoff"), name="shop-backoff")


@pytest.fixture(scope="module")
def naive_run(local_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Judged:
    return on_session_stack(
        local_stack, tmp_path_factory.mktemp("naive"), name="shop-naive", user_class="NaiveShopUser"
    )


# --- a resilient shop passes, and every report says so ---------------------------------------


def test_a_shop_run_with_a_kill_fault_passes_and_its_reports_agree(backoff_run: Judged) -> None:
    judged = backoff_run
    assert judged.code == 0, str(judged)
    assert judged.seconds < 60, judged.seconds
    assert judged.run.status is RunStatus.COMPLETED

    summary = judged.summary
    assert (summary["outcome"], summary["passed"], summary["exit_code"]) == ("PASS", True, 0)
    assert [slo["name"] for slo in summary["slos"]] == SLO_NAMES
    assert all(slo["judged"] and slo["passed"] for slo in summary["slos"]), summary["slos"]
    # The faults did happen: the kill was felt, and maintenance answered 503s (with Retry-After,
    # which the clients waited out), from which the shop recovered.
    assert summary["recoveries"], summary
    assert all(r["recovered"] for r in judged.summary["recoveries"])
    assert judged.verdicts["retry-after-on-503s"]["observed"] == 1.0
    assert judged.phase("storm")["status_503"] > 0

    tests, failures = junit_counts(judged.junit)
    assert failures == 0
    assert tests >= len(SLO_NAMES)
    assert set(SLO_NAMES) <= {case.get("name") for case in judged.junit.iter("testcase")}

    assert "PASS" in judged.html
    for name in SLO_NAMES:
        assert name in judged.html
    assert judged.out.startswith("PASS  shop-backoff  (completed, exit 0")
    assert f"report: {judged.run.report_html}" in judged.out
    # The report says which client made the load.
    (client,) = summary["clients"]
    assert client.startswith("ShopUser (up to 4 attempts, backoff")
    assert "Retry-After honoured" in client
    assert "ShopUser (up to 4 attempts" in judged.html


# --- a shop without Retry-After fails, on exactly the SLOs that need it --------------------------


@pytest.fixture(scope="module")
def shop_without_retry_after() -> Iterator[Harness]:
    """A stack of its own whose shop sends no Retry-After (the session's settings otherwise)."""
    with own_stack("harness-it-no-retry-after-", {"SHOP_RETRY_AFTER": "off"}) as running:
        yield running.harness


def test_without_retry_after_the_run_fails_on_the_slos_that_need_it_and_only_those(
    shop_without_retry_after: Harness, tmp_path: Path
) -> None:
    scenario = shop_scenario(
        tmp_path,
        name="shop-no-retry-after",
        env='{SHOP_MAINTENANCE_RETRY_AFTER_S: "5", SHOP_RETRY_AFTER: "off"}',
    )
    judged = judged_run(scenario, shop_without_retry_after.state_dir, tmp_path / "reports")
    assert judged.code == 1, judged
    assert judged.run.status is RunStatus.COMPLETED
    assert judged.summary["outcome"] == "FAIL"
    # Caddy's own 503s (no instance ready) still carry its Retry-After; the shop's do not.
    assert judged.verdicts["retry-after-on-503s"]["observed"] < 0.99
    assert "retry-after-on-503s" in judged.failed
    assert judged.failed <= NEEDS_RETRY_AFTER, judged.summary["slos"]

    _, failures = junit_counts(judged.junit)
    assert failures == len(judged.failed)
    assert junit_failures(judged.junit) == judged.failed
    for name in judged.failed:
        assert any(line.startswith("FAIL") and name in line for line in judged.out.splitlines())


# --- a naive client storms where the backoff client waits -------------------------------------


def test_a_naive_client_amplifies_its_retries_far_more_than_the_backoff_client(
    backoff_run: Judged, naive_run: Judged
) -> None:
    backoff, naive = backoff_run, naive_run
    assert naive.run.status is RunStatus.COMPLETED, naive
    # The same faults, two clients: the report says which one made each run.
    (client,) = naive.summary["clients"]
    assert client.startswith("NaiveShopUser (up to 10 attempts, immediate retries")
    assert "NaiveShopUser" in naive.html

    # Maintenance falls in the storm phase: every attempt answered 503 for two seconds.
    polite = backoff.phase("storm")["retry_amplification"]
    storm = naive.phase("storm")["retry_amplification"]
    assert storm > 1.5 * polite, (storm, polite)
    assert (
        naive.summary["totals"]["retry_amplification"]
        > (backoff.summary["totals"]["retry_amplification"])
    )
    assert naive.phase("storm")["attempts"] > backoff.phase("storm")["attempts"]
    # It ignores Retry-After, and the verdict says so; the shop itself still never failed.
    assert naive.code == 1, naive
    assert "clients-wait-out-retry-after" in naive.failed
    assert naive.verdicts["clients-wait-out-retry-after"]["observed"] < 0.5
    assert naive.verdicts["no-500s"]["passed"]
    print(
        f"retry amplification in the storm: backoff {polite:.2f}, naive {storm:.2f}; "
        f"maintenance recovery: backoff {backoff.recovery('maintenance')['recovery_time_s']}, "
        f"naive {naive.recovery('maintenance')['recovery_time_s']}"
    )


# --- a guard stops the run ------------------------------------------------------------------------


def test_a_guard_that_trips_aborts_the_run_with_exit_4_faults_reverted_and_a_report(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario = tmp_path / "guarded.yaml"
    scenario.write_text(
        textwrap.dedent(
            f"""\
            name: shop-guarded
            load:
              locustfile: {SHOP_LOCUSTFILE}
              user_classes: [ShopUser]
              phases: [{{name: shop, duration: 25s, users: 10, spawn_rate: 20}}]
            faults:
              - {{name: maintenance, action: maintenance, at: 2s, for: 20s}}
            slos:
              - {{name: no-500s, expr: "count(status == 500) == 0"}}
            guards:
              - {{name: too-many-503s, expr: "abort if ratio(status == 503) > 10% for 3s"}}
            """
        )
    )
    judged = judged_run(scenario, stack.harness.state_dir, tmp_path / "reports")
    assert judged.code == 4, judged
    assert "run aborted" in judged.out
    assert judged.out.startswith("ABORTED  shop-guarded  (aborted, exit 4")
    assert "aborted by guard: abort if ratio(status == 503) > 10% for 3s" in judged.out

    run = judged.run
    assert run.status is RunStatus.ABORTED
    (breach,) = events(run, EventKind.GUARD_BREACH)
    assert breach.name == "too-many-503s"
    assert breach.detail["observed"] > 0.1
    (injected,) = events(run, EventKind.FAULT_INJECTED)
    (reverted,) = events(run, EventKind.FAULT_REVERTED)
    # The guard needs three one-second steps in a row that hold. Clients honour the 5 s
    # Retry-After, so a second can pass with no response at all (silence is not evidence) and the
    # stretch may start a few seconds into maintenance: how soon it starts is the clients' doing.
    # What the guard owes: exactly three steps, reported a settle (2 s) plus at most one check
    # after the stretch ends, the fault reverted right after, all long before maintenance's 20 s.
    assert breach.detail["until"] - breach.detail["since"] == 3
    assert breach.detail["since"] >= injected.t - 1
    assert 2 <= breach.t - breach.detail["until"] < 4
    assert breach.t - injected.t < 15
    assert 0 <= reverted.t - breach.t < 3
    (end,) = events(run, EventKind.RUN_END)
    assert end.detail["guards"] == ["too-many-503s"]
    (phase_end,) = events(run, EventKind.PHASE_END)
    assert phase_end.detail["cut_short"] is True

    assert (judged.summary["status"], judged.summary["outcome"]) == ("aborted", "ABORTED")
    assert judged.summary["exit_code"] == 4
    assert judged.summary["aborted_by"]
    assert "ABORTED by a guard" in judged.html
    assert_stack_whole(stack)
    products = httpx.get(f"{stack.info.entry_url}/products", timeout=5, trust_env=False)
    assert products.status_code == 200  # out of maintenance


# --- bad SLO text -----------------------------------------------------------------------------


def test_bad_slo_text_is_exit_2_with_a_column_pointer_before_anything_starts(
    tmp_path: Path,
) -> None:
    scenario = shop_scenario(tmp_path, name="typo")
    text = scenario.read_text().replace(
        '"count(status == 500) == 0"', '"count(status == 500) == 0 during phase wramup"'
    )
    text = text.replace('"availability >= 99% during', '"availability >= 99 during')
    scenario.write_text(text)
    state_dir = tmp_path / "state"
    env = harness_env({"HARNESS_STATE_DIR": str(state_dir)})
    started = time.monotonic()
    code, out, err = run_harness(scenario, "--reports", str(tmp_path / "reports"), env=env)
    assert code == 2, f"{out}\n{err}"
    assert time.monotonic() - started < 15
    (line,) = err.strip().splitlines()
    assert line.startswith(f"harness: {scenario}: slos[0]: ")
    assert 'unknown phase "wramup" (did you mean "warmup"?)' in line
    # Nothing started: no stack, no run directory.
    assert not state_dir.exists()
    assert not (tmp_path / "reports").exists()

    # The first mistake is reported; fixed, the next one shows where it is.
    scenario.write_text(text.replace(" during phase wramup", ""))
    code, out, err = run_harness(scenario, "--reports", str(tmp_path / "reports"), env=env)
    assert code == 2, f"{out}\n{err}"
    assert "slos[4]: availability is a share at column 17 (write it with %, like 99%): " in err
    assert "availability >= <<here>>99 during phase warmup" in err
    assert not state_dir.exists()
