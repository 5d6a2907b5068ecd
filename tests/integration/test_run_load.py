"""`harness run` for real: the Locust master and workers as `harness run` starts them, against
the local stack or a tiny HTTP server of the test's own, read back from the run directory.

Each run is a short scenario written into ``tmp_path``; ``harness run`` is a real subprocess, so
every test also checks that nothing it started outlives it.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from run_support import (
    Target,
    finish,
    harness_env,
    run_harness,
    start_run,
    the_run,
    write_scenario,
)
from stack_support import RunningStack

from harness.load.launch import MASTER_MODULE, WORKER_MODULE
from harness.record import Event, EventKind, RunDir, RunStatus
from harness.record.buckets import Bucket
from harness.stack.ports import free_ports

pytestmark = pytest.mark.integration


def events(run: RunDir, kind: EventKind) -> list[Event]:
    return [e for e in run.events() if e.kind is kind]


def statuses(buckets: list[Bucket]) -> Counter[int]:
    total: Counter[int] = Counter()
    for bucket in buckets:
        total.update(bucket.statuses)
    return total


def children_of(process: subprocess.Popen[str], count: int, timeout_s: float = 30) -> list[int]:
    """The PIDs of the ``count`` processes `harness run` starts for the load (its Locust master
    and workers), once they all exist.

    Named by their module on the command line, not by being "not the probe": a child forked but
    not yet exec'd still shows the harness's own command line, so the short-lived preflight probe
    caught in that instant would pass for the master and be gone a moment later."""
    deadline = time.monotonic() + timeout_s
    while True:
        children = [
            c.pid for c in psutil.Process(process.pid).children(recursive=True) if _is_load(c)
        ]
        if len(children) >= count or time.monotonic() > deadline:
            assert len(children) == count, children
            return children
        time.sleep(0.05)


def _is_load(child: psutil.Process) -> bool:
    try:
        command = child.cmdline()
    except psutil.Error:  # gone already: not a process of the load
        return False
    return MASTER_MODULE in command or WORKER_MODULE in command


def no_harness_processes_left(before: list[int]) -> None:
    alive = [pid for pid in before if psutil.pid_exists(pid) and _not_zombie(pid)]
    assert alive == [], f"processes left running: {alive}"


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


TIGHT_USER = """\
    from locust import constant, task

    from harness.load.users import RetryingHttpUser


    class Browse(RetryingHttpUser):
        wait_time = constant(0.02)

        @task
        def products(self):
            self.logical_request("GET", "/products")
    """

PLAIN_USER = """\
    from locust import FastHttpUser, constant, task


    class Plain(FastHttpUser):
        wait_time = constant(0.01)

        @task
        def index(self):
            self.client.get("/")
    """


# --- 1. the local stack: phases on time, every bucket of every phase filled ----------------------


def test_a_run_on_the_local_stack_ends_by_itself_with_phases_on_time_and_no_empty_bucket(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=TIGHT_USER,
        body="""\
        load:
          locustfile: users.py
          phases:
            - {name: warmup, duration: 3s, users: 4, spawn_rate: 40}
            - {name: spike, duration: 4s, users: 12, spawn_rate: 60}
        """,
    )
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    started = time.monotonic()
    code, out, err = run_harness(scenario, "--reports", str(tmp_path / "reports"), env=env)
    assert code == 0, f"{out}\n{err}"
    assert time.monotonic() - started < 30
    assert "run completed" in out
    assert "using the local stack already up" in err
    assert "spike 2/2" in err  # the live progress line came through

    run = the_run(tmp_path / "reports")
    assert run.status is RunStatus.COMPLETED
    t0 = run.meta["load_started_at"]
    starts = events(run, EventKind.PHASE_START)
    ends = events(run, EventKind.PHASE_END)
    assert [e.name for e in starts] == [e.name for e in ends] == ["warmup", "spike"]
    for event, planned in zip(starts + ends, [0.0, 3.0, 3.0, 7.0], strict=True):
        assert abs(event.t - t0 - planned) <= 0.2, (event, planned)

    buckets = {b.idx: b for b in run.buckets()}
    for start, end in zip(starts, ends, strict=True):
        first, last = math.ceil(start.t * 10), math.floor(end.t * 10)
        empty = [idx - first for idx in range(first, last) if idx not in buckets]
        assert empty == [], f"phase {start.name}: buckets without requests: {empty}"
    counts = statuses(list(buckets.values()))
    assert counts[200] >= 0.99 * sum(counts.values()), counts
    assert counts[500] == 0


def test_the_shop_locustfile_shops_through_the_local_stack(
    stack: RunningStack, tmp_path: Path
) -> None:
    shop_locustfile = Path(__file__).parents[2] / "scenarios" / "shop_locustfile.py"
    scenario = tmp_path / "shop.yaml"
    scenario.write_text(
        textwrap.dedent(
            f"""\
            name: shop-it
            load:
              locustfile: {shop_locustfile}
              user_classes: [ShopUser]
              phases: [{{name: shop, duration: 6s, users: 15, spawn_rate: 30}}]
            """
        )
    )
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    code, out, err = run_harness(scenario, "--reports", str(tmp_path / "reports"), env=env)
    assert code == 0, f"{out}\n{err}"
    run = the_run(tmp_path / "reports")
    counts = statuses(run.buckets())
    assert counts[201] > 0, counts  # carts and orders were created
    assert counts[500] == counts[0] == 0, counts
    assert sum(counts.values()) > 50


# --- 2. a known outage shows as exactly that much status 0 ---------------------------------------


def test_a_three_second_outage_shows_as_three_seconds_of_status_0(
    target: Target, tmp_path: Path
) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=PLAIN_USER,
        entry_url=target.url,
        body="""\
        load:
          locustfile: users.py
          phases: [{name: steady, duration: 7s, users: 5, spawn_rate: 50}]
        """,
    )
    process = start_run(scenario, "--reports", str(tmp_path / "reports"))
    deadline = time.monotonic() + 30
    while target.requests < 50:
        assert process.poll() is None, finish(process)
        assert time.monotonic() < deadline, "no load arrived"
        time.sleep(0.01)
    time.sleep(1.5)
    down, up = target.outage(3.0)
    out, err = finish(process)
    assert process.returncode == 0, f"{out}\n{err}"

    buckets = the_run(tmp_path / "reports").buckets()
    failing = [b for b in buckets if b.count(0)]
    first, last = failing[0].start, failing[-1].start + 0.1
    assert abs(first - down) <= 0.2, (first, down)
    assert abs(last - up) <= 0.2, (last, up)
    assert abs((last - first) - 3.0) <= 0.2, last - first
    # Solid: every bucket of the outage failed, and nothing inside it succeeded.
    inside = [b for b in buckets if down + 0.1 <= b.start < up - 0.2]
    assert len(inside) >= 27
    assert all(b.count(0) == b.attempts for b in inside)
    assert sum(b.count(200) for b in buckets if b.start >= up + 0.2) > 100  # and it recovered


# --- 3. two workers: the store holds exactly what the workers recorded ---------------------------


def test_with_two_workers_the_stored_buckets_add_up_to_what_each_worker_recorded(
    target: Target, tmp_path: Path
) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=PLAIN_USER,
        entry_url=target.url,
        body="""\
        load:
          locustfile: users.py
          phases:
            - {name: a, duration: 2s, users: 2, spawn_rate: 50}
            - {name: b, duration: 3s, users: 6, spawn_rate: 50}
        """,
    )
    process = start_run(scenario, "--workers", "2", "--reports", str(tmp_path / "reports"))
    children = children_of(process, 3)  # the master and two workers
    out, err = finish(process)
    assert process.returncode == 0, f"{out}\n{err}"
    no_harness_processes_left(children)

    run = the_run(tmp_path / "reports")
    totals = events(run, EventKind.NOTE)
    assert sorted(e.detail["worker"] for e in totals if e.name == "worker_totals") == ["w0", "w1"]
    recorded: Counter[int] = Counter()
    requests = 0
    for event in totals:
        assert event.detail["requests"] > 0  # both workers ran users
        requests += event.detail["requests"]
        recorded.update({int(k): v for k, v in event.detail["statuses"].items()})
    stored = run.buckets()
    assert statuses(stored) == recorded
    assert sum(b.attempts for b in stored) == requests
    # The target may have seen a few more: a request in flight when its user is stopped at the
    # end never gets an answer, so there is nothing to record. At most one per user.
    assert 0 <= target.requests - requests <= 6
    assert run.meta["workers"] == 2


def test_a_remote_worker_gets_the_locustfile_from_the_master(
    target: Target, tmp_path: Path
) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=PLAIN_USER,
        entry_url=target.url,
        body="""\
        load:
          locustfile: users.py
          phases: [{name: a, duration: 3s, users: 3, spawn_rate: 50}]
        """,
    )
    port = free_ports(1)[0]
    process = start_run(
        scenario,
        "--workers",
        "0",
        "--remote-workers",
        "1",
        "--master-port",
        str(port),
        "--reports",
        str(tmp_path / "reports"),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # no locustfile here: the worker must ask the master for it
    worker = subprocess.Popen(
        [sys.executable, "-m", "harness", "worker", "--master", "127.0.0.1"],
        cwd=elsewhere,
        env=harness_env({"HARNESS_WORKER_MASTER_PORT": str(port)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = finish(process)
    _, worker_err = finish(worker, timeout_s=30)
    assert process.returncode == 0, f"{out}\n{err}\n{worker_err}"
    assert worker.returncode == 0, worker_err
    run = the_run(tmp_path / "reports")
    (totals,) = [e for e in events(run, EventKind.NOTE) if e.name == "worker_totals"]
    assert totals.detail["requests"] == sum(b.attempts for b in run.buckets()) > 0


# --- retries: Retry-After honoured by the polite client, ignored by the naive one ----------------

RETRY_USERS = """\
    from typing import ClassVar

    from locust import constant, task

    from harness.load.retry import RetryPolicy
    from harness.load.users import NaiveRetryUser, RetryingHttpUser


    class Polite(RetryingHttpUser):
        wait_time = constant(0.05)
        retry_policy: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=4, base_s=0.05, cap_s=0.2)

        @task
        def flaky(self):
            self.logical_request("GET", "/flaky")


    class Naive(NaiveRetryUser):
        wait_time = constant(0.05)

        @task
        def flaky(self):
            self.logical_request("GET", "/flaky")
    """


def every_other_request_is_shed(path: str, n: int) -> tuple[int, dict[str, str]]:
    return (503, {"Retry-After": "1"}) if n % 2 else (200, {})


@pytest.mark.parametrize("user", ["Polite", "Naive"])
def test_retrying_users_record_every_attempt_and_only_the_polite_wait_for_retry_after(
    tmp_path: Path, user: str
) -> None:
    target = Target(every_other_request_is_shed)
    try:
        scenario = write_scenario(
            tmp_path,
            users_py=RETRY_USERS,
            entry_url=target.url,
            body=f"""\
            load:
              locustfile: users.py
              user_classes: [{user}]
              phases: [{{name: a, duration: 5s, users: 3, spawn_rate: 30}}]
            """,
        )
        code, out, err = run_harness(scenario, "--reports", str(tmp_path / "reports"))
    finally:
        target.close()
    assert code == 0, f"{out}\n{err}"
    run = the_run(tmp_path / "reports")
    buckets = run.buckets()
    assert sum(b.retries for b in buckets) > 0
    assert sum(b.retry_after_503 for b in buckets) == statuses(buckets)[503]

    by_request: dict[str | int, list[Any]] = {}
    for record in run.attempts():
        by_request.setdefault(record.logical_id, []).append(record)
    assert by_request
    gaps = []
    for logical_id, attempts in by_request.items():
        assert str(logical_id).startswith("local:")
        assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
        assert len(attempts) <= (4 if user == "Polite" else 10)
        for before, after in itertools.pairwise(attempts):
            assert before.status == 503
            assert after.retry_after_followed == 1.0
            gaps.append(after.t - (before.t + before.latency))
    assert gaps
    if user == "Polite":
        assert min(gaps) >= 1.0 - 0.002, min(gaps)  # never before Retry-After is over
    else:
        assert max(gaps) < 0.5, max(gaps)  # at once, Retry-After ignored


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("users_py", "user_classes", "message"),
    [
        ("raise RuntimeError('boom')\n", "", "importing it failed: RuntimeError: boom"),
        (PLAIN_USER, "user_classes: [Nobody]", "no User class 'Nobody'"),
    ],
)
def test_a_locustfile_that_cannot_run_is_bad_input(
    target: Target, tmp_path: Path, users_py: str, user_classes: str, message: str
) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=users_py,
        entry_url=target.url,
        body=f"""\
        load:
          locustfile: users.py
          {user_classes}
          phases: [{{name: a, duration: 2s, users: 1, spawn_rate: 1}}]
        """,
    )
    code, out, err = run_harness(scenario, "--reports", str(tmp_path / "reports"))
    assert code == 2, f"{out}\n{err}"
    assert message in err
    # Found by the preflight, before anything starts: no run directory, no request.
    assert not (tmp_path / "reports").exists()
    assert target.requests == 0


def test_a_scenario_with_a_mistake_is_refused_before_anything_starts(tmp_path: Path) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=PLAIN_USER,
        entry_url="http://127.0.0.1:1",
        body="""\
        load:
          locustfile: users.py
          phases: [{name: a, duration: soon, users: 1, spawn_rate: 1}]
        """,
    )
    code, _, err = run_harness(scenario, "--reports", str(tmp_path / "reports"))
    assert code == 2
    assert 'load.phases[0].duration: expected a duration like 30s, got "soon"' in err
    assert not (tmp_path / "reports").exists()


def test_a_compose_run_without_docker_is_an_infrastructure_error(tmp_path: Path) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=PLAIN_USER,
        body="""\
        load:
          locustfile: users.py
          phases: [{name: a, duration: 1s, users: 1, spawn_rate: 1}]
        """,
    )
    # An engine address nothing listens on: "no Docker" even where CI runs a real engine.
    env = {**harness_env(), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    code, _, err = run_harness(
        scenario, "--stack", "compose", "--reports", str(tmp_path / "reports"), env=env
    )
    assert code == 3
    assert "Docker is not installed or not running" in err
    assert "--stack local" in err
    assert not (tmp_path / "reports").exists()


def test_faults_on_an_external_stack_whose_toxiproxy_does_not_answer_stop_before_anything_starts(
    tmp_path: Path,
) -> None:
    scenario = write_scenario(
        tmp_path,
        users_py=PLAIN_USER,
        body="""\
        stack: {kind: external, entry_url: "http://127.0.0.1:1", toxiproxy_url: "http://127.0.0.1:2"}
        load:
          locustfile: users.py
          phases: [{name: a, duration: 2s, users: 1, spawn_rate: 1}]
        faults: [{name: cut, action: down, target: lb-app-1, at: 1s}]
        """,
    )
    code, _, err = run_harness(
        scenario, "--reports", str(tmp_path / "reports"), "--state-dir", str(tmp_path / "state")
    )
    assert code == 3
    assert "the Toxiproxy API at http://127.0.0.1:2 does not answer" in err
    assert not (tmp_path / "reports").exists()
