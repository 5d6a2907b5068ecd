"""The compose stack for real: served through Caddy, an instance killed and restored, a slow
database answered with fast 503s, and a ``down`` that leaves nothing behind.

The tests share one project (brought up once per session); the last one takes it down.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
from compose_support import harness, harness_env, project_leftovers

from harness.stack.base import ProcessState, StackInfo
from harness.stack.compose import ComposeStack

pytestmark = pytest.mark.docker


def _get(info: StackInfo, path: str, timeout_s: float = 5.0) -> httpx.Response:
    return httpx.get(info.entry_url.rstrip("/") + path, timeout=timeout_s)


def test_up_serves_the_shop_through_caddy(compose_stack: ComposeStack, info: StackInfo) -> None:
    response = _get(info, "/products")
    assert response.status_code == 200
    assert len(response.json()) == 20
    assert response.headers["X-Shop-Instance"] in {"app-1", "app-2", "app-3"}
    assert compose_stack.status().healthy
    assert [i.name for i in info.instances] == ["app-1", "app-2", "app-3"]
    assert {p.name for p in info.proxies} == {"lb-app-1", "lb-app-2", "lb-app-3", "app-db"}
    assert info.admin_token
    assert httpx.get(info.toxiproxy_url + "/version", timeout=5).json()["version"] == "2.12.0"


def test_killed_instance_is_routed_around_then_restart_brings_it_back(
    compose_stack: ComposeStack, info: StackInfo
) -> None:
    # (started, took, status) of every request from eight clients. A request Caddy sent to the
    # instance as it died may be accepted and never answered (see compose/config/Caddyfile):
    # Caddy's response timeout (3 s) bounds it, then the GET is retried on another instance.
    results: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=15) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get(info.entry_url.rstrip("/") + "/products").status_code
                except httpx.HTTPError:
                    status = 0
                results.append((started, time.monotonic() - started, status))
                time.sleep(0.01)

    threads = [threading.Thread(target=traffic) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        compose_stack.kill("app-1")
        killed_at = time.monotonic()
        assert _instance_state(compose_stack, "app-1") is ProcessState.DEAD
        time.sleep(5.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # Requests sent after one health-check round (interval 500 ms) must all succeed.
    late = Counter(status for started, _, status in results if started > killed_at + 1.5)
    assert late, "no request was sent after the kill"
    assert set(late) == {200}, f"after the health checks: {late}"
    slowest = max(took for _, took, _ in results)
    assert slowest < 4.5, f"a request took {slowest:.1f}s: the kill held it past Caddy's timeout"

    compose_stack.restart("app-1")
    assert _instance_state(compose_stack, "app-1") is ProcessState.ALIVE
    deadline = time.monotonic() + 15
    seen: set[str] = set()
    while "app-1" not in seen and time.monotonic() < deadline:
        response = _get(info, "/products")
        if response.status_code == 200:
            seen.add(response.headers["X-Shop-Instance"])
    assert "app-1" in seen, "app-1 never served again after its restart"


def test_pause_and_resume_an_instance(compose_stack: ComposeStack) -> None:
    compose_stack.pause("app-2")
    try:
        assert _instance_state(compose_stack, "app-2") is ProcessState.PAUSED
    finally:
        compose_stack.resume("app-2")
    assert _instance_state(compose_stack, "app-2") is ProcessState.ALIVE


def test_slow_database_gives_fast_503_with_retry_after(
    compose_stack: ComposeStack, info: StackInfo
) -> None:
    toxics = f"{info.toxiproxy_url}/proxies/app-db/toxics"
    created = httpx.post(
        toxics,
        json={"name": "slow-db", "type": "latency", "attributes": {"latency": 3000}},
        timeout=5,
    )
    assert created.status_code == 200, created.text
    try:
        time.sleep(1.5)  # past the shop's database deadline and a health-check round
        started = time.monotonic()
        response = _get(info, "/products/1")
        elapsed = time.monotonic() - started
    finally:
        httpx.delete(f"{toxics}/slow-db", timeout=5)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert elapsed < 1.5, f"the 503 took {elapsed:.2f}s: the shop should fail fast"

    deadline = time.monotonic() + 15
    while _get(info, "/products/1").status_code != 200:
        assert time.monotonic() < deadline, "the shop did not recover after the toxic was removed"
        time.sleep(0.2)


def test_harness_down_leaves_no_container_network_or_volume(compose_stack: ComposeStack) -> None:
    project = compose_stack.project
    assert project_leftovers(project)["volumes"], "the project should have its database volume"
    for _ in range(2):  # idempotent: the second finds nothing and says the same
        down = harness("down", "--stack", "compose", "--project", project, env=harness_env())
        assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
        assert f"compose project {project!r} is down" in down.stdout
        assert project_leftovers(project) == {}
    assert not compose_stack.status().exists


@pytest.fixture(name="info")
def info_fixture(compose_info: StackInfo) -> StackInfo:
    return compose_info


def _instance_state(stack: ComposeStack, name: str) -> ProcessState:
    for process in stack.status().processes:
        if process.name == name:
            return process.state
    raise AssertionError(f"{name} is not in the status")
