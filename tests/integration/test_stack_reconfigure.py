"""Scenarios with different stack settings run one after another on one state directory: the
stack the harness started is brought to each scenario's ``stack.env`` (its shop instances
restarted, the rest left running) instead of refusing; a stack a game day is using is never
touched; the entry URL ``harness up`` prints answers 200. On the real local stack."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from run_support import run_dirs
from stack_support import Harness, new_state_dir, stop_everything_started

from harness.stack.state import GAMEDAY_FILE, StateDir

pytestmark = pytest.mark.integration

LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Browser(HttpUser):
    wait_time = constant(0.2)

    @task
    def browse(self):
        self.client.get("/products")
"""

SCENARIO = """\
name: {name}
stack:
  env: {env}
load:
  locustfile: lf.py
  phases: [{{name: only, duration: 3s, users: 2, spawn_rate: 10}}]
slos:
  - {{name: answered, expr: "availability >= 99%"}}
"""


@pytest.fixture
def harness() -> Iterator[Harness]:
    state_dir = new_state_dir("harness-it-reconfigure-")
    try:
        yield Harness(state_dir)
    finally:
        try:
            Harness(state_dir).run("down")
        finally:
            stop_everything_started(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)


def scenario(tmp_path: Path, name: str, env: dict[str, str]) -> Path:
    (tmp_path / "lf.py").write_text(LOCUSTFILE)
    path = tmp_path / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name, env=json.dumps(env)))
    return path


def port_flags(harness: Harness) -> list[str]:
    ports = harness.ports
    return [
        "--entry-port", str(ports.entry),
        "--toxiproxy-port", str(ports.toxiproxy_api),
        "--postgres-port", str(ports.postgres),
        "--app-db-proxy-port", str(ports.app_db_proxy),
        "--app-ports", ",".join(map(str, ports.apps)),
        "--lb-proxy-ports", ",".join(map(str, ports.lb_proxies)),
        "--caddy-admin-port", "0",
    ]  # fmt: skip


def pids(harness: Harness) -> dict[str, int]:
    state = StateDir(harness.state_dir).load()
    assert state is not None
    return {p.name: p.pid for p in state.processes}


def test_scenarios_with_other_settings_run_in_a_row(harness: Harness, tmp_path: Path) -> None:
    # Without HARNESS_UP_* settings: the runs start the stack themselves, on the ports given.
    harness.env = {k: v for k, v in harness.env.items() if not k.startswith("HARNESS_UP_")}
    reports = tmp_path / "reports"
    small = scenario(tmp_path, "small", {"SHOP_MAX_INFLIGHT": "32"})
    other = scenario(
        tmp_path, "other", {"SHOP_MAX_INFLIGHT": "48", "SHOP_MAINTENANCE_RETRY_AFTER_S": "5"}
    )

    def run(path: Path) -> str:
        done = harness.run("run", str(path), "--reports", str(reports), *port_flags(harness))
        assert done.returncode == 0, f"{path.name}:\n{done.stdout}\n{done.stderr}"
        return done.stderr

    run(small)
    first = pids(harness)

    said = run(other)
    assert (
        f"restarting the shop instances in {harness.state_dir}: "
        "SHOP_MAINTENANCE_RETRY_AFTER_S=5, SHOP_MAX_INFLIGHT=48"
    ) in said
    second = pids(harness)
    for name in ("postgres", "toxiproxy", "caddy"):
        assert second[name] == first[name], f"{name} was restarted"
    for name in ("app-1", "app-2", "app-3"):
        assert second[name] != first[name], f"{name} kept its old settings"
    state = StateDir(harness.state_dir).load()
    assert state is not None
    assert dict(state.config.app_env) == {
        "SHOP_MAINTENANCE_RETRY_AFTER_S": "5",
        "SHOP_MAX_INFLIGHT": "48",
    }

    # Back again: what the other scenario set and this one does not ask for is dropped.
    said = run(small)
    assert "SHOP_MAX_INFLIGHT=32, no SHOP_MAINTENANCE_RETRY_AFTER_S" in said
    assert len(run_dirs(reports)) == 3

    # A game day is using the stack: it is not touched, and nothing starts.
    third = pids(harness)
    marker = harness.state_dir / GAMEDAY_FILE
    marker.write_text(json.dumps({"pid": os.getpid()}))
    done = harness.run("run", str(other), "--reports", str(reports), *port_flags(harness))
    marker.unlink()
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"harness: the stack up in {harness.state_dir} is in a game day (process {os.getpid()}) "
        "and the scenario asks for SHOP_MAINTENANCE_RETRY_AFTER_S=5, SHOP_MAX_INFLIGHT=48; not "
        "touched: run it when the game day is over"
    ]
    assert len(run_dirs(reports)) == 3
    assert pids(harness) == third

    # `harness up` on the stack as it stands: the entry it prints answers 200.
    done = harness.run("up", *port_flags(harness), "--app-env", "SHOP_MAX_INFLIGHT=32")
    assert done.returncode == 0, done.stdout + done.stderr
    entry = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("entry"))
    assert entry == f"http://127.0.0.1:{harness.ports.entry}/products"
    assert httpx.get(entry, timeout=5, trust_env=False).status_code == 200


def test_the_url_up_prints_answers_200_on_a_cold_start(harness: Harness) -> None:
    done = harness.run("up")
    assert done.returncode == 0, done.stdout + done.stderr
    entry = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("entry"))
    assert httpx.get(entry, timeout=5, trust_env=False).status_code == 200


def test_scenario_text_is_valid(tmp_path: Path) -> None:
    """The scenarios above pass `harness validate` (no stack needed)."""
    path = scenario(tmp_path, "small", {"SHOP_MAX_INFLIGHT": "32"})
    done = Harness(tmp_path / "state").run("validate", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"valid: {path} (local stack, 1 phase")
