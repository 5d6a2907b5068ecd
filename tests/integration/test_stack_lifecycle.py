"""harness up / down / status with the real processes: timings, idempotence, stale stacks, ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from stack_support import (
    Harness,
    RunningStack,
    listening,
    new_state_dir,
    processes_alive,
    started_for,
    stop_everything_started,
    wait_until,
)

from harness.stack.base import ProcessState
from harness.stack.processes import start_time
from harness.stack.state import StateDir

pytestmark = pytest.mark.integration

COLD_UP_LIMIT_S = 15.0
WARM_UP_LIMIT_S = 5.0


def _pids(harness: Harness) -> dict[str, int]:
    return {p.name: p.pid for p in harness.stack().status().processes}


def test_cold_up_serves_the_shop_through_caddy_within_15s(stack: RunningStack) -> None:
    print(f"cold up (first initdb) until the shop answered through Caddy: {stack.cold_up_s:.2f}s")
    assert stack.cold_up_s < COLD_UP_LIMIT_S


def test_down_leaves_no_process_nor_port_and_a_warm_up_is_fast(stack: RunningStack) -> None:
    harness = stack.harness
    pids = list(_pids(harness).values())
    assert len(pids) == 6

    harness.down()
    assert processes_alive(pids) == []
    assert listening(harness.all_ports) == []
    assert StateDir(harness.state_dir).load() is None
    harness.down()  # idempotent

    warm = harness.up()
    print(f"warm up (data directory kept) until the shop answered through Caddy: {warm:.2f}s")
    assert warm < WARM_UP_LIMIT_S


def test_up_on_a_healthy_stack_leaves_it_alone(stack: RunningStack) -> None:
    harness = stack.harness
    before = _pids(harness)
    result = harness.run("up")
    assert result.returncode == 0, result.stderr
    assert "already up" in result.stdout
    assert stack.info.entry_url in result.stdout
    assert _pids(harness) == before


def _status_rows(output: str) -> dict[str, dict[str, str]]:
    """The rows of the ``harness status`` table, by process name."""
    lines = [line for line in output.splitlines() if line.startswith(("┃", "│"))]
    split = [[cell.strip() for cell in line.strip("┃│").split(line[0])] for line in lines]
    header, rows = split[0], split[1:]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_status_shows_every_process_alive_and_healthy(stack: RunningStack) -> None:
    result = stack.harness.run("status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _status_rows(result.stdout)
    assert list(rows) == ["postgres", "toxiproxy", "app-1", "app-2", "app-3", "caddy"]
    assert {row["state"] for row in rows.values()} == {"alive"}
    assert {row["healthy"] for row in rows.values()} == {"yes"}


def test_status_shows_a_paused_instance_and_fails(stack: RunningStack) -> None:
    stack.harness.stack().pause("app-2")
    result = stack.harness.run("status")
    assert result.returncode == 3
    app_2 = _status_rows(result.stdout)["app-2"]
    assert (app_2["state"], app_2["healthy"]) == ("paused", "no")


def test_next_up_replaces_a_stack_with_one_process_killed(stack: RunningStack) -> None:
    harness = stack.harness
    before = _pids(harness)
    os.kill(before["toxiproxy"], signal.SIGKILL)

    result = harness.run("up")
    assert result.returncode == 0, result.stderr
    assert "already up" not in result.stdout
    after = _pids(harness)
    assert set(after.values()).isdisjoint(before.values())
    assert processes_alive(list(before.values())) == []
    assert harness.stack().status().healthy


def test_down_cleans_a_stack_with_one_process_killed_and_one_paused(
    stack: RunningStack,
) -> None:
    harness = stack.harness
    before = _pids(harness)
    os.kill(before["app-1"], signal.SIGKILL)
    harness.stack().pause("app-3")  # a paused process cannot act on SIGTERM until continued

    harness.down()
    assert processes_alive(list(before.values())) == []
    assert listening(harness.all_ports) == []
    harness.up()


def test_down_cleans_up_after_a_harness_killed_halfway_through_up() -> None:
    harness = Harness(new_state_dir("harness-it-killed-"))
    try:
        up = subprocess.Popen(
            [sys.executable, "-m", "harness", "up"],
            env=harness.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        state = StateDir(harness.state_dir)

        def recorded() -> list[int]:
            loaded = state.load()
            return [p.pid for p in loaded.processes] if loaded else []

        # Kill it once it has started a few pieces, before it is done.
        wait_until(lambda: len(recorded()) >= 3, 60, "harness up to start three processes")
        assert up.poll() is None, "harness up finished before it could be killed"
        up.send_signal(signal.SIGKILL)
        up.wait()
        started = recorded()
        assert processes_alive(started) == started  # the harness is gone, its pieces are not

        harness.down()
        assert processes_alive(started) == []
        # Also what it started but had no time to record.
        assert started_for(harness.state_dir) == []
        assert listening(harness.all_ports) == []
    finally:
        stop_everything_started(harness.state_dir)
        shutil.rmtree(harness.state_dir, ignore_errors=True)


def test_a_taken_port_fails_before_anything_starts_naming_the_port() -> None:
    harness = Harness(new_state_dir("harness-it-taken-"))
    try:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", harness.ports.apps[1]))
            squatter.listen()
            started = time.monotonic()
            result = harness.run("up")
        assert result.returncode == 3
        message = result.stderr.strip()
        assert f"port {harness.ports.apps[1]} (--app-ports) is taken on 127.0.0.1" in message
        assert "shop instance app-2" in message
        assert len(message.splitlines()) == 1
        assert time.monotonic() - started < 5
        assert StateDir(harness.state_dir).load() is None
        assert listening(harness.all_ports) == []
        assert not (harness.state_dir / "pgdata").exists()  # not even initdb ran
    finally:
        shutil.rmtree(harness.state_dir, ignore_errors=True)


def test_the_state_file_names_each_process_with_its_start_time(stack: RunningStack) -> None:
    raw = json.loads((stack.harness.state_dir / "stack.json").read_text())
    for entry in raw["processes"]:
        assert start_time(entry["pid"]) == entry["started"]
    assert {p.state for p in stack.harness.stack().status().processes} == {ProcessState.ALIVE}


def test_the_stack_also_runs_on_the_embedded_toxiproxy() -> None:
    harness = Harness(new_state_dir("harness-it-embedded-"))
    harness.env["HARNESS_UP_TOXIPROXY"] = "embedded"
    try:
        harness.up()
        toxiproxy = next(p for p in harness.stack().status().processes if p.name == "toxiproxy")
        assert "harness" in psutil.Process(toxiproxy.pid).cmdline()
        info = harness.stack().info()
        proxies = httpx.get(f"{info.toxiproxy_url}/proxies", timeout=5, trust_env=False).json()
        assert sorted(proxies) == ["app-db", "lb-app-1", "lb-app-2", "lb-app-3"]
        harness.down()
        assert listening(harness.all_ports) == []
    finally:
        stop_everything_started(harness.state_dir)
        shutil.rmtree(harness.state_dir, ignore_errors=True)
