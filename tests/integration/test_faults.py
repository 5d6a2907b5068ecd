"""Fault injectors against the real local stack, and ``harness rollback`` after a run that was
SIGKILLed with faults in force. Every test leaves the stack healthy (the ``stack`` fixture heals it
too, but each test checks its own reverts first)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from stack_support import RunningStack, processes_alive, wait_until

from harness import scenario
from harness.faults import Fault, Journal, build_fault
from harness.stack import ProcessState, ProcessStatus, StackInfo

pytestmark = pytest.mark.integration

ALIVE, PAUSED, DEAD = ProcessState.ALIVE, ProcessState.PAUSED, ProcessState.DEAD
# Caddy notices an instance is back within one active health check (500 ms) and a margin.
ROUTED_AGAIN_S = 5.0

_ANY_FAULT: TypeAdapter[Any] = TypeAdapter(scenario.AnyFault)


def _fault(running: RunningStack, **fields: Any) -> Fault:
    local = running.harness.stack()
    spec: scenario.Fault = _ANY_FAULT.validate_python({"name": "f", "at": "0s", **fields})
    return build_fault(spec, local, local.info())


def _process(running: RunningStack, name: str) -> ProcessStatus:
    return next(p for p in running.harness.stack().status().processes if p.name == name)


def _get(url: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(url, timeout=timeout, trust_env=False)


def _toxics(info: StackInfo) -> dict[str, list[dict[str, Any]]]:
    proxies = _get(f"{info.toxiproxy_url}/proxies").json()
    return {name: proxy["toxics"] for name, proxy in proxies.items()}


def _accepts(info: StackInfo, proxy: str) -> bool:
    listen = info.proxy(proxy).listen
    try:
        with socket.create_connection((listen.host, listen.port), timeout=1):
            return True
    except OSError:
        return False


def _maintenance_on(info: StackInfo, instance: str) -> bool:
    stats = httpx.get(
        info.instance(instance).endpoint.url("/admin/stats"),
        headers={"Authorization": f"Bearer {info.admin_token}"},
        timeout=2,
        trust_env=False,
    )
    stats.raise_for_status()
    return bool(stats.json()["maintenance"])


def _serves(url: str) -> bool:
    try:
        return _get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- one family at a time ---------------------------------------------------------------------


def test_kill_leaves_the_instance_dead_and_revert_brings_it_back_healthy(
    stack: RunningStack,
) -> None:
    info = stack.info
    before = _process(stack, "app-1")
    kill = _fault(stack, action="kill", target="app-1")

    kill.inject()
    assert processes_alive([before.pid]) == []
    assert _process(stack, "app-1").state is DEAD

    kill.revert()
    after = _process(stack, "app-1")
    assert after.state is ALIVE
    assert after.pid != before.pid
    assert _get(info.instance("app-1").endpoint.url("/healthz")).status_code == 200
    kill.revert()  # it runs again: nothing to do, above all no second restart
    assert _process(stack, "app-1").pid == after.pid


def test_pause_freezes_the_instance_and_revert_resumes_the_same_process(
    stack: RunningStack,
) -> None:
    healthz = stack.info.instance("app-3").endpoint.url("/healthz")
    before = _process(stack, "app-3")
    pause = _fault(stack, action="pause", target="app-3")

    pause.inject()
    assert _process(stack, "app-3").state is PAUSED
    with pytest.raises(httpx.TimeoutException):
        _get(healthz, timeout=0.5)

    pause.revert()
    pause.revert()
    after = _process(stack, "app-3")
    assert (after.state, after.pid) == (ALIVE, before.pid)
    assert _get(healthz).status_code == 200


def test_a_latency_toxic_on_app_db_is_in_the_toxiproxy_api_until_reverted(
    stack: RunningStack,
) -> None:
    info = stack.info
    app_1 = info.instance("app-1").endpoint.url("/products")
    params = {"type": "latency", "latency": 800, "jitter": 50}
    toxic = _fault(stack, name="slow-db", action="toxic", target="app-db", params=params)

    toxic.inject()
    (added,) = _toxics(info)["app-db"]
    assert added["name"] == "harness-slow-db"
    assert (added["type"], added["stream"]) == ("latency", "downstream")
    assert added["attributes"] == {"latency": 800, "jitter": 50}
    assert _get(app_1).status_code == 503  # the shop fails fast on a slow database

    toxic.revert()
    assert _toxics(info)["app-db"] == []
    toxic.revert()  # gone already: not an error
    wait_until(lambda: _serves(app_1), ROUTED_AGAIN_S, "app-1 to serve again")


def test_db_throttle_adds_its_toxics_to_app_db_and_revert_removes_them_all(
    stack: RunningStack,
) -> None:
    info = stack.info
    throttle = _fault(stack, name="db", action="db-throttle", params={"latency": 100, "rate": 100})
    throttle.inject()
    assert sorted(t["name"] for t in _toxics(info)["app-db"]) == [
        "harness-db-latency",
        "harness-db-rate-downstream",
        "harness-db-rate-upstream",
    ]
    throttle.revert()
    assert _toxics(info)["app-db"] == []


def test_down_on_lb_app_2_refuses_connections_until_reverted(stack: RunningStack) -> None:
    info = stack.info
    down = _fault(stack, action="down", target="lb-app-2")

    down.inject()
    assert _get(f"{info.toxiproxy_url}/proxies/lb-app-2").json()["enabled"] is False
    assert not _accepts(info, "lb-app-2")

    down.revert()
    down.revert()
    assert _get(f"{info.toxiproxy_url}/proxies/lb-app-2").json()["enabled"] is True
    assert _accepts(info, "lb-app-2")


def test_maintenance_answers_503_with_retry_after_through_caddy_until_reverted(
    stack: RunningStack,
) -> None:
    products = f"{stack.info.entry_url}/products"
    maintenance = _fault(stack, action="maintenance")

    def in_maintenance() -> bool:
        response = _get(products)
        return response.status_code == 503 and bool(response.headers.get("Retry-After"))

    maintenance.inject()
    wait_until(in_maintenance, ROUTED_AGAIN_S, "a 503 with Retry-After through Caddy")

    maintenance.revert()
    maintenance.revert()
    wait_until(lambda: _serves(products), ROUTED_AGAIN_S, "a 200 through Caddy")


def test_reverting_faults_that_were_never_injected_leaves_the_stack_untouched(
    stack: RunningStack,
) -> None:
    before = {p.name: (p.pid, p.state) for p in stack.harness.stack().status().processes}
    faults = [
        _fault(stack, name="k", action="kill", target="app-1"),
        _fault(stack, name="p", action="pause", target="app-2"),
        _fault(stack, name="r", action="restart", target="app-3"),
        _fault(stack, name="t", action="toxic", target="app-db", params={"type": "timeout"}),
        _fault(stack, name="d", action="down", target="lb-app-1"),
        _fault(stack, name="m", action="maintenance"),
    ]
    for fault in faults:
        fault.revert()
    after = {p.name: (p.pid, p.state) for p in stack.harness.stack().status().processes}
    assert after == before
    assert _serves(f"{stack.info.entry_url}/products")


# --- a run SIGKILLed with faults in force, then `harness rollback` --------------------------------

CRASHING_RUN = textwrap.dedent(
    """
    import sys, time
    from pydantic import TypeAdapter
    from harness import scenario
    from harness.faults import FaultTimeline, Journal, build_fault
    from harness.stack import LocalStack

    stack = LocalStack(sys.argv[1])
    info = stack.info()
    specs = TypeAdapter(list[scenario.AnyFault]).validate_python([
        # Maintenance first: its switch is a database write, which the toxic would slow down.
        {"name": "maintenance", "action": "maintenance", "at": "0s"},
        {"name": "pause-app-2", "action": "pause", "target": "app-2", "at": "0s"},
        {"name": "kill-app-3", "action": "kill", "target": "app-3", "at": "0s"},
        {"name": "slow-db", "action": "toxic", "target": "app-db", "at": "0s",
         "params": {"type": "latency", "latency": 1000}},
    ])
    journal = Journal.in_state_dir(sys.argv[1]).open()
    timeline = FaultTimeline([(build_fault(s, stack, info), 0.0, None) for s in specs], journal)
    timeline.start()
    timeline.tick()
    print(" ".join(timeline.active()), flush=True)
    time.sleep(600)  # the run goes on, until it is SIGKILLed: no revert_all, no finally
    """
)


@pytest.fixture
def journal(stack: RunningStack) -> Iterator[Journal]:
    """The session stack's fault journal, removed afterwards so no other test inherits it."""
    found = Journal.in_state_dir(stack.harness.state_dir)
    yield found
    for path in (found.path, found.previous_file, found.lock_file):
        path.unlink(missing_ok=True)


def test_rollback_after_a_sigkilled_run_leaves_no_fault_behind_and_a_second_one_is_a_no_op(
    stack: RunningStack, journal: Journal
) -> None:
    harness, info = stack.harness, stack.info
    run = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN, str(harness.state_dir)],
        env=harness.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout is not None
        active = run.stdout.readline().split()
        assert active == ["maintenance", "pause-app-2", "kill-app-3", "slow-db"], (
            run.stderr.read() if run.poll() is not None and run.stderr else "no faults in force"
        )
        # In force, as the run left them.
        assert [t["name"] for t in _toxics(info)["app-db"]] == ["harness-slow-db"]
        assert _process(stack, "app-2").state is PAUSED
        assert _process(stack, "app-3").state is DEAD
        assert _maintenance_on(info, "app-1")
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        for pipe in (run.stdout, run.stderr):
            if pipe is not None:
                pipe.close()
    assert sorted(p.name for p in journal.pending()) == [
        "kill-app-3",
        "maintenance",
        "pause-app-2",
        "slow-db",
    ]

    result = harness.run("rollback", "--state-dir", str(harness.state_dir))

    print(f"harness rollback after the SIGKILL:\n{result.stdout}")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[1].strip() for line in lines[:-1]] == [
        "slow-db",
        "kill-app-3",
        "pause-app-2",
        "maintenance",
    ]
    assert all(line.startswith("reverted: ") for line in lines[:-1])
    assert lines[-1] == "rollback done: 4 fault(s) reverted, journal set aside"
    # Nothing left: no toxic, no proxy down, every instance alive (app-3 outlived the rollback
    # process that restarted it), maintenance off, the shop served again.
    assert all(toxics == [] for toxics in _toxics(info).values())
    proxies = _get(f"{info.toxiproxy_url}/proxies").json()
    assert all(proxy["enabled"] for proxy in proxies.values())
    states = {p.name: p.state for p in harness.stack().status().processes if p.role == "app"}
    assert states == {"app-1": ALIVE, "app-2": ALIVE, "app-3": ALIVE}
    wait_until(
        lambda: not any(_maintenance_on(info, i.name) for i in info.instances),
        ROUTED_AGAIN_S,
        "every instance to see maintenance off",
    )
    for instance in info.instances:
        url = instance.endpoint.url("/products")
        wait_until(lambda url=url: _serves(url), ROUTED_AGAIN_S, f"{instance.name} to serve")
    assert journal.pending() == []

    again = harness.run("rollback", "--state-dir", str(harness.state_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith("nothing to roll back")


def test_rollback_refuses_to_fight_a_run_that_is_still_going(
    stack: RunningStack, journal: Journal
) -> None:
    with journal:  # a live run holds the journal
        result = stack.harness.run("rollback", "--state-dir", str(stack.harness.state_dir))
    assert result.returncode == 3
    assert "in use by process" in result.stderr
