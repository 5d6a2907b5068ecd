"""Caddy in front of the instances, and the instance primitives driven from other processes."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest
from stack_support import (
    RunningStack,
    in_another_process,
    instances_seen_through_entry,
    processes_alive,
    wait_until,
)

from harness.stack.base import ProcessState, ProcessStatus

pytestmark = pytest.mark.integration

# How long Caddy may take to notice an instance is gone: an active check every 500 ms with a
# 400 ms timeout, or at once through a failed request (passive check).
NOTICE_S = 2.0


def _get_many(url: str, count: int = 30) -> list[httpx.Response]:
    with httpx.Client(timeout=5, trust_env=False) as client:
        return [client.get(url) for _ in range(count)]


def test_one_instance_killed_requests_keep_succeeding(stack: RunningStack) -> None:
    info = stack.info
    in_another_process(stack.harness.state_dir, "kill", "app-2")
    time.sleep(NOTICE_S)
    responses = _get_many(f"{info.entry_url}/products")
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert {r.headers["X-Shop-Instance"] for r in responses} == {"app-1", "app-3"}


def test_requests_succeed_even_right_after_a_kill(stack: RunningStack) -> None:
    # Before any health check notices, Caddy retries a GET that met a dead instance on another.
    info = stack.info
    stack.harness.stack().kill("app-1")
    responses = _get_many(f"{info.entry_url}/products", count=12)
    assert [r.status_code for r in responses] == [200] * len(responses)


def test_all_instances_killed_caddy_answers_503_with_retry_after(stack: RunningStack) -> None:
    info = stack.info
    for instance in info.instances:
        stack.harness.stack().kill(instance.name)
    time.sleep(NOTICE_S)
    responses = _get_many(f"{info.entry_url}/products", count=10)
    assert [r.status_code for r in responses] == [503] * len(responses)
    assert all(r.headers.get("Retry-After") == "1" for r in responses)


def test_pause_and_resume_from_another_process(stack: RunningStack) -> None:
    info = stack.info
    app_3 = info.instance("app-3")
    in_another_process(stack.harness.state_dir, "pause", "app-3")
    assert _state("app-3", stack) is ProcessState.PAUSED
    with pytest.raises(httpx.TimeoutException):
        httpx.get(app_3.endpoint.url("/healthz"), timeout=0.5, trust_env=False)
    time.sleep(NOTICE_S)
    assert instances_seen_through_entry(info) == {"app-1", "app-2"}

    in_another_process(stack.harness.state_dir, "resume", "app-3")
    assert _state("app-3", stack) is ProcessState.ALIVE
    assert httpx.get(app_3.endpoint.url("/healthz"), timeout=2, trust_env=False).status_code == 200
    wait_until(lambda: "app-3" in instances_seen_through_entry(info), 5, "app-3 back behind Caddy")


def test_kill_and_restart_from_another_process(stack: RunningStack) -> None:
    info = stack.info
    old = _record("app-1", stack)
    in_another_process(stack.harness.state_dir, "kill", "app-1")
    assert processes_alive([old.pid]) == []

    in_another_process(stack.harness.state_dir, "restart", "app-1")
    new = _record("app-1", stack)
    assert new.pid != old.pid
    assert new.state is ProcessState.ALIVE
    # A process of its own, not a child of the short-lived process that restarted it.
    assert psutil.Process(new.pid).ppid() != psutil.Process().pid
    wait_until(lambda: "app-1" in instances_seen_through_entry(info), 5, "app-1 back behind Caddy")


def test_restart_of_a_paused_instance_replaces_it(stack: RunningStack) -> None:
    old = _record("app-2", stack)
    stack.harness.stack().pause("app-2")
    in_another_process(stack.harness.state_dir, "restart", "app-2")
    assert processes_alive([old.pid]) == []
    assert _state("app-2", stack) is ProcessState.ALIVE


def _record(name: str, stack: RunningStack) -> ProcessStatus:
    return next(p for p in stack.harness.stack().status().processes if p.name == name)


def _state(name: str, stack: RunningStack) -> ProcessState:
    return _record(name, stack).state
