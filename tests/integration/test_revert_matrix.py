"""The revert matrix: every fault family, on every way out of `harness run`, leaves the stack whole.

Rows: process kill, pause, each toxic type, a proxy link down, db-throttle, maintenance. Columns:
the run ends normally, a guard aborts it, a fault's inject raises, the locustfile raises, SIGINT,
SIGTERM, its Locust worker is SIGKILLed, and the harness itself is SIGKILLed (then `harness
rollback`). One short real run per column, on the session's local stack, with every family in
force at once at the moment the run is made to end: an instance killed, another paused, seven
toxics stacked on the three load-balancer proxies, one of them also cut, the database link
throttled, maintenance on. Then each family's cleanup is checked on its own (its toxics gone, its
proxy enabled, its instance alive and healthy, maintenance off, its journal entry closed) together
with the proof it was still in force when the run was made to end, so each cell is a check of its
own. The board (rows x columns, its count of cases) is printed at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from revert_board import BOARD
from run_support import start_in_own_session, stop_leftover_runs
from stack_support import RunningStack
from test_run_interrupt import wait_for_events
from test_run_load import children_of, events, finish, harness_env, the_run, write_scenario

from harness.faults import Journal
from harness.record import EventKind, RunDir, RunStatus
from harness.stack import ProcessState

pytestmark = pytest.mark.integration

# Plain users, no retries: every attempt is one request, and a 503 is not waited out.
USERS = """\
    from locust import FastHttpUser, constant, task


    class Shopper(FastHttpUser):
        wait_time = constant(0.05)
        connection_timeout = 2.0
        network_timeout = 3.0  # a request stuck on a paused instance must not outlive the run

        @task
        def products(self):
            self.client.get("/products")
    """

# The same users, but their locustfile raises: in on_start for every other user (that user's
# greenlet dies), and in every task after its request (Locust logs it and goes on).
RAISING_USERS = """\
    import itertools

    from locust import FastHttpUser, constant, task

    _started = itertools.count()


    class Shopper(FastHttpUser):
        wait_time = constant(0.05)
        connection_timeout = 2.0
        network_timeout = 3.0

        def on_start(self):
            if next(_started) % 2 == 0:
                raise RuntimeError("on_start raised on purpose")

        @task
        def products(self):
            self.client.get("/products")
            raise RuntimeError("the task raised on purpose")
    """


@dataclass(frozen=True)
class Family:
    row: str  # the board's row
    fault: str  # its fault's name in the scenario
    spec: str  # the scenario's entry, YAML flow style


# Maintenance first, on its own at 0 s: its switch is a database write, which the database faults
# injected at 1 s would slow down. Reverts go newest first, so it is switched off last, once the
# database link and the instances are back.
FAMILIES = (
    Family("maintenance", "maint", "{name: maint, action: maintenance, at: 0s}"),
    Family("process kill", "kill-app-1", "{name: kill-app-1, action: kill, target: app-1, at: 1s}"),
    Family("pause", "pause-app-2", "{name: pause-app-2, action: pause, target: app-2, at: 1s}"),
    Family(
        "toxic latency",
        "t-latency",
        "{name: t-latency, action: toxic, target: lb-app-1, at: 1s,"
        " params: {type: latency, latency: 100, jitter: 10}}",
    ),
    Family(
        "toxic bandwidth",
        "t-bandwidth",
        "{name: t-bandwidth, action: toxic, target: lb-app-1, at: 1s,"
        " params: {type: bandwidth, rate: 8, stream: upstream}}",
    ),
    Family(
        "toxic timeout",
        "t-timeout",
        "{name: t-timeout, action: toxic, target: lb-app-2, at: 1s,"
        " params: {type: timeout, timeout: 500}}",
    ),
    Family(
        "toxic reset_peer",
        "t-reset-peer",
        "{name: t-reset-peer, action: toxic, target: lb-app-2, at: 1s,"
        " params: {type: reset_peer, timeout: 50, stream: upstream}}",
    ),
    Family(
        "toxic slow_close",
        "t-slow-close",
        "{name: t-slow-close, action: toxic, target: lb-app-3, at: 1s,"
        " params: {type: slow_close, delay: 200}}",
    ),
    Family(
        "toxic limit_data",
        "t-limit-data",
        "{name: t-limit-data, action: toxic, target: lb-app-3, at: 1s,"
        " params: {type: limit_data, bytes: 2000, stream: upstream}}",
    ),
    Family(
        "toxic slicer",
        "t-slicer",
        "{name: t-slicer, action: toxic, target: lb-app-3, at: 1s,"
        " params: {type: slicer, average_size: 64, size_variation: 16, delay: 10}}",
    ),
    Family(
        "proxy link down", "cut-lb-3", "{name: cut-lb-3, action: down, target: lb-app-3, at: 1s}"
    ),
    Family(
        "db-throttle",
        "slow-db",
        "{name: slow-db, action: db-throttle, at: 1s, params: {latency: 20, jitter: 5, rate: 500}}",
    ),
)
FAULT_COUNT = len(FAMILIES)

# A second pause of the instance the kill took down: Toxiproxy and the stack are fine, yet its
# inject fails for real ("cannot pause app-1: it is not running") while every family is in force.
FAILING_FAULT = "pause-dead"
FAILING_SPEC = f"{{name: {FAILING_FAULT}, action: pause, target: app-1, at: 2s}}"

SHORT, LONG = "4s", "40s"  # a run that ends by itself; one the test (or a guard) cuts short
GUARD = '{name: all-503, expr: "abort if ratio(status == 503) > 50% for 2s"}'
# After the reverts: a restarted instance must pass the load balancer's health check, and every
# instance must have seen maintenance go off (they poll the flag).
WHOLE_WITHIN_S = 20.0


def scenario_body(
    *, duration: str, workers: int = 0, faults: tuple[str, ...] = (), guards: tuple[str, ...] = ()
) -> str:
    specs = [f.spec for f in FAMILIES] + list(faults)
    lines = [
        "load:",
        "  locustfile: users.py",
        f"  workers: {workers}",
        f"  phases: [{{name: matrix, duration: {duration}, users: 4, spawn_rate: 40}}]",
        "faults:",
        *(f"  - {spec}" for spec in specs),
    ]
    if guards:
        lines += ["guards:", *(f"  - {guard}" for guard in guards)]
    return "\n".join(lines) + "\n"


# --- what the stack looks like after the run ---------------------------------------------------


@dataclass
class Aftermath:
    """The stack after a way out, once it had ``WHOLE_WITHIN_S`` to settle."""

    proxies: dict[str, Any]  # Toxiproxy's GET /proxies
    states: dict[str, ProcessState]
    healthy: dict[str, bool]
    maintenance_on: dict[str, bool | None]  # None: the instance did not answer
    pending: list[str]  # fault names the journal still has in force

    def toxics(self, proxy: str) -> list[str]:
        return [t["name"] for t in self.proxies.get(proxy, {}).get("toxics", [])]

    def toxic_types(self) -> set[str]:
        return {t["type"] for p in self.proxies.values() for t in p["toxics"]}


def aftermath(stack: RunningStack) -> Aftermath:
    deadline = time.monotonic() + WHOLE_WITHIN_S
    while True:
        seen = _look(stack)
        settled = all(s is ProcessState.ALIVE for s in seen.states.values()) and all(
            seen.healthy.values()
        )
        if (settled and not any(seen.maintenance_on.values())) or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def _look(stack: RunningStack) -> Aftermath:
    info = stack.info
    proxies = httpx.get(f"{info.toxiproxy_url}/proxies", timeout=5, trust_env=False).json()
    status = stack.harness.stack().status()
    maintenance: dict[str, bool | None] = {}
    for instance in info.instances:
        try:
            stats = httpx.get(
                instance.endpoint.url("/admin/stats"),
                headers={"Authorization": f"Bearer {info.admin_token}"},
                timeout=1,
                trust_env=False,
            )
            maintenance[instance.name] = bool(stats.json()["maintenance"])
        except (httpx.HTTPError, ValueError, KeyError):
            maintenance[instance.name] = None
    pending = [p.name for p in Journal.in_state_dir(stack.harness.state_dir).pending()]
    return Aftermath(
        proxies=proxies,
        states={p.name: p.state for p in status.processes},
        healthy={p.name: p.healthy for p in status.processes},
        maintenance_on=maintenance,
        pending=pending,
    )


def _instance_whole(name: str) -> Callable[[Aftermath], list[str]]:
    def check(after: Aftermath) -> list[str]:
        state, healthy = after.states.get(name), after.healthy.get(name)
        if state is not ProcessState.ALIVE or not healthy:
            return [f"{name} is {state} (healthy: {healthy})"]
        return []

    return check


def _toxic_gone(proxy: str, fault: str, kind: str) -> Callable[[Aftermath], list[str]]:
    def check(after: Aftermath) -> list[str]:
        problems = []
        if f"harness-{fault}" in after.toxics(proxy):
            problems.append(f"toxic harness-{fault} still on {proxy}")
        if kind in after.toxic_types():
            problems.append(f"a {kind} toxic is still on a proxy")
        return problems

    return check


def _every_proxy_enabled(after: Aftermath) -> list[str]:
    return [f"proxy {name} is disabled" for name, p in after.proxies.items() if not p["enabled"]]


def _db_unthrottled(after: Aftermath) -> list[str]:
    left = [name for name in after.toxics("app-db") if name.startswith("harness-slow-db")]
    return [f"db-throttle toxics still on app-db: {left}"] if left else []


def _maintenance_off(after: Aftermath) -> list[str]:
    # The flag lives in the database, shared by every instance: the instances that answer speak
    # for it (one left paused by another family's failure cannot, and is that family's cell).
    answered = {name: on for name, on in after.maintenance_on.items() if on is not None}
    if not answered:
        return ["no instance answered whether maintenance is off"]
    on = sorted(name for name, is_on in answered.items() if is_on)
    return [f"maintenance still on, as seen by {on}"] if on else []


CLEAN: dict[str, Callable[[Aftermath], list[str]]] = {
    "maintenance": _maintenance_off,
    "process kill": _instance_whole("app-1"),
    "pause": _instance_whole("app-2"),
    "toxic latency": _toxic_gone("lb-app-1", "t-latency", "latency"),
    "toxic bandwidth": _toxic_gone("lb-app-1", "t-bandwidth", "bandwidth"),
    "toxic timeout": _toxic_gone("lb-app-2", "t-timeout", "timeout"),
    "toxic reset_peer": _toxic_gone("lb-app-2", "t-reset-peer", "reset_peer"),
    "toxic slow_close": _toxic_gone("lb-app-3", "t-slow-close", "slow_close"),
    "toxic limit_data": _toxic_gone("lb-app-3", "t-limit-data", "limit_data"),
    "toxic slicer": _toxic_gone("lb-app-3", "t-slicer", "slicer"),
    "proxy link down": _every_proxy_enabled,
    "db-throttle": _db_unthrottled,
}


# --- the ways out ------------------------------------------------------------------------------


@dataclass
class Ending:
    """How one way out went: what the run said, and when the run was made to end (unix time;
    a fault in force then must be reverted at or after it)."""

    code: int
    out: str
    err: str
    cut_at: float | None = None
    run: RunDir | None = None
    # Rollback's way out: the journal before the rollback, and what the rollback printed.
    pending_before: list[str] = field(default_factory=list)
    rollback_out: str = ""


@dataclass(frozen=True)
class WayOut:
    column: str
    drive: Callable[[Path, RunningStack], Ending]
    code: int  # the exit code `harness run` (or, killed, `harness rollback`) must give
    status: RunStatus | None  # what the run store says; None: not asked (harness killed)


@pytest.fixture(autouse=True)
def _stack_left_whole(stack: RunningStack) -> Iterator[None]:
    """Whatever a case does, it leaves no fault behind on the session's shared stack. A case that
    fails half-way would otherwise leave its links cut and its instances killed, and the tests
    after it would error on those rather than pass or fail on their own."""
    yield
    stop_leftover_runs()
    if Journal.in_state_dir(stack.harness.state_dir).pending():
        stack.harness.run("rollback", "--state-dir", str(stack.harness.state_dir))


def _start(
    tmp_path: Path, stack: RunningStack, body: str, users: str = USERS
) -> subprocess.Popen[str]:
    scenario = write_scenario(tmp_path, users_py=users, body=body, name="matrix")
    env = harness_env({"HARNESS_STATE_DIR": str(stack.harness.state_dir)})
    return start_in_own_session(scenario, "--reports", str(tmp_path / "reports"), env=env)


def _all_injected(tmp_path: Path, process: subprocess.Popen[str]) -> RunDir:
    return wait_for_events(tmp_path / "reports", EventKind.FAULT_INJECTED, FAULT_COUNT, process)


def _ended(process: subprocess.Popen[str], tmp_path: Path, cut_at: float | None) -> Ending:
    out, err = finish(process, timeout_s=120)
    return Ending(process.returncode, out, err, cut_at, the_run(tmp_path / "reports"))


def normal_end(tmp_path: Path, stack: RunningStack) -> Ending:
    return _ended(_start(tmp_path, stack, scenario_body(duration=SHORT)), tmp_path, None)


def guard_abort(tmp_path: Path, stack: RunningStack) -> Ending:
    process = _start(tmp_path, stack, scenario_body(duration=LONG, guards=(GUARD,)))
    ending = _ended(process, tmp_path, None)
    assert ending.run is not None
    breaches = events(ending.run, EventKind.GUARD_BREACH)
    ending.cut_at = breaches[0].t if breaches else None
    return ending


def fault_raises(tmp_path: Path, stack: RunningStack) -> Ending:
    body = scenario_body(duration=SHORT, faults=(FAILING_SPEC,))
    return _ended(_start(tmp_path, stack, body), tmp_path, None)


def locustfile_raises(tmp_path: Path, stack: RunningStack) -> Ending:
    process = _start(tmp_path, stack, scenario_body(duration=SHORT), users=RAISING_USERS)
    return _ended(process, tmp_path, None)


def _signalled(signum: signal.Signals) -> Callable[[Path, RunningStack], Ending]:
    def drive(tmp_path: Path, stack: RunningStack) -> Ending:
        process = _start(tmp_path, stack, scenario_body(duration=LONG))
        _all_injected(tmp_path, process)
        cut_at = time.time()
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)  # Ctrl-C at a terminal: the foreground group
        else:
            process.send_signal(signum)
        return _ended(process, tmp_path, cut_at)

    return drive


def worker_dies(tmp_path: Path, stack: RunningStack) -> Ending:
    process = _start(tmp_path, stack, scenario_body(duration=LONG, workers=1))
    children = children_of(process, 2)
    _all_injected(tmp_path, process)
    (worker,) = [p for p in children if "harness.load.worker" in psutil.Process(p).cmdline()]
    cut_at = time.time()
    os.kill(worker, signal.SIGKILL)
    return _ended(process, tmp_path, cut_at)


def harness_killed(tmp_path: Path, stack: RunningStack) -> Ending:
    process = _start(tmp_path, stack, scenario_body(duration=LONG))
    (master,) = children_of(process, 1)
    _all_injected(tmp_path, process)
    cut_at = time.time()
    # The master stopped first, so it cannot start reverting its faults when its lifeline breaks;
    # then the harness, so it cannot roll anything back itself; then the master for good.
    os.kill(master, signal.SIGSTOP)
    process.kill()
    os.kill(master, signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(master).wait(timeout=30)
    pending = [p.name for p in Journal.in_state_dir(stack.harness.state_dir).pending()]
    harness = stack.harness
    rollback = harness.run("rollback", "--state-dir", str(harness.state_dir))
    return Ending(
        rollback.returncode,
        out + rollback.stdout,
        err + rollback.stderr,
        cut_at,
        the_run(tmp_path / "reports"),
        pending_before=pending,
        rollback_out=rollback.stdout,
    )


WAYS_OUT = (
    WayOut("normal end", normal_end, 0, RunStatus.COMPLETED),
    WayOut("guard abort", guard_abort, 4, RunStatus.ABORTED),
    WayOut("inject raises", fault_raises, 0, RunStatus.COMPLETED),
    WayOut("locustfile raises", locustfile_raises, 0, RunStatus.COMPLETED),
    WayOut("SIGINT", _signalled(signal.SIGINT), 130, RunStatus.INTERRUPTED),
    WayOut("SIGTERM", _signalled(signal.SIGTERM), 130, RunStatus.INTERRUPTED),
    WayOut("worker -9", worker_dies, 3, RunStatus.CRASHED),
    WayOut("harness -9 + rollback", harness_killed, 0, None),
)

BOARD.declare(tuple(f.row for f in FAMILIES), tuple(w.column for w in WAYS_OUT))


def in_force_at_the_end(family: Family, ending: Ending) -> list[str]:
    """Proof the family's fault was in force when the run was made to end, and that whoever
    reverted it did so afterwards: the run store's events, or for a killed harness the journal
    and what `harness rollback` printed."""
    if ending.pending_before or ending.rollback_out:
        problems = []
        if family.fault not in ending.pending_before:
            problems.append("not in force in the journal when the harness was killed")
        if f"reverted: {family.fault}:" not in ending.rollback_out:
            problems.append("`harness rollback` did not say it reverted it")
        return problems
    assert ending.run is not None
    run = ending.run
    injected = [e.t for e in events(run, EventKind.FAULT_INJECTED) if e.name == family.fault]
    reverted = [e.t for e in events(run, EventKind.FAULT_REVERTED) if e.name == family.fault]
    if not injected:
        return ["never injected"]
    if len(reverted) != 1:
        return [f"reverted {len(reverted)} times in the run store, not once"]
    cut_at = ending.cut_at
    if cut_at is None:  # it ended by itself: the end of the phase is when
        phase_ends = events(run, EventKind.PHASE_END)
        cut_at = phase_ends[0].t if phase_ends else None
    if cut_at is None:
        return ["the run recorded no end of its phase"]
    if injected[0] > cut_at:
        return ["injected only after the run was made to end"]
    if reverted[0] < cut_at - 0.2:  # the phase mark and the stop race by a tick at most
        return [f"reverted {cut_at - reverted[0]:.1f}s before the run was made to end"]
    return []


@pytest.mark.parametrize("way_out", WAYS_OUT, ids=[w.column for w in WAYS_OUT])
def test_every_fault_family_in_force_is_reverted_on_this_way_out(
    stack: RunningStack, tmp_path: Path, way_out: WayOut
) -> None:
    started = time.monotonic()
    ending = way_out.drive(tmp_path, stack)
    after = aftermath(stack)
    failed = {}
    for family in FAMILIES:
        problems = in_force_at_the_end(family, ending) + CLEAN[family.row](after)
        if family.fault in after.pending:
            problems.append("still pending in the fault journal")
        BOARD.record(family.row, way_out.column, problems)
        if problems:
            failed[family.row] = problems
    print(f"{way_out.column}: exit {ending.code} after {time.monotonic() - started:.1f}s")

    context = f"exit {ending.code}\n{ending.out}\n{ending.err[-3000:]}"
    assert failed == {}, context
    assert after.pending == [], after.pending  # the journal is closed: nothing at all in force
    # Not a toxic of any name on any proxy, and every proxy enabled.
    assert {name: (p["enabled"], p["toxics"]) for name, p in after.proxies.items()} == {
        name: (True, []) for name in after.proxies
    }
    assert ending.code == way_out.code, context
    if way_out.status is not None:
        assert ending.run is not None
        assert ending.run.status is way_out.status, context
    if way_out.column == "inject raises":
        assert ending.run is not None
        errors = [e for e in events(ending.run, EventKind.FAULT_ERROR) if e.name == FAILING_FAULT]
        assert [e.detail.get("step") for e in errors] == ["inject"], errors
        assert "not running" in str(errors[0].detail.get("error")), errors
        reverted = [e.name for e in events(ending.run, EventKind.FAULT_REVERTED)]
        assert FAILING_FAULT in reverted  # a failed inject is reverted too: it may half-apply
    if way_out.column == "locustfile raises":
        assert "on_start raised on purpose" in ending.err
        assert "the task raised on purpose" in ending.err
    if way_out.column == "harness -9 + rollback":
        assert ending.rollback_out.rstrip().endswith(
            f"rollback done: {FAULT_COUNT} fault(s) reverted, journal set aside"
        ), ending.rollback_out


def test_a_locustfile_that_fails_at_import_is_exit_2_and_no_fault_is_ever_injected(
    stack: RunningStack, tmp_path: Path
) -> None:
    body = scenario_body(duration=SHORT)
    process = _start(tmp_path, stack, body, users="raise ImportError('no such module, on purpose')")
    out, err = finish(process, timeout_s=60)
    assert process.returncode == 2, f"{out}\n{err}"
    assert "on purpose" in err
    assert "Traceback" not in err
    # Found by the preflight, before any fault could be: not even a run directory is made.
    assert not (tmp_path / "reports").exists()
    after = _look(stack)
    assert after.pending == []
    assert {name: (p["enabled"], p["toxics"]) for name, p in after.proxies.items()} == {
        name: (True, []) for name in after.proxies
    }
    assert all(state is ProcessState.ALIVE for state in after.states.values()), after.states
    assert not any(after.maintenance_on.values()), after.maintenance_on
