"""The blast radius for real: what the local stack listens on, and a real `harness run` whose
locustfile also aims at a host nobody allowed (its requests fail in the worker, before a
connection is made, while the load to the allowed target goes on)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from stack_support import RunningStack
from test_run_load import Target, harness_env, run_harness, statuses, the_run, write_scenario

pytestmark = pytest.mark.integration

ELSEWHERE = "192.0.2.10"  # RFC 5737 documentation range: nobody's server


@pytest.fixture
def target() -> Iterator[Target]:
    """A loopback HTTP server: the allowed target (an external stack that happens to be here)."""
    server = Target()
    yield server
    server.close()


STRAYING_USER = f"""\
    from locust import FastHttpUser, constant, task


    class Straying(FastHttpUser):
        wait_time = constant(0.05)

        @task(3)
        def allowed(self):
            self.client.get("/")

        @task(1)
        def elsewhere(self):
            self.client.get("http://{ELSEWHERE}:8080/steal", name="elsewhere")
    """


def test_a_locustfile_aiming_elsewhere_gets_refused_connections_and_the_run_goes_on(
    tmp_path: Path, target: Target
) -> None:
    scenario = write_scenario(
        tmp_path,
        entry_url=target.url,
        users_py=STRAYING_USER,
        body="""\
            load:
              locustfile: users.py
              workers: 1
              phases:
                - {name: only, duration: 4s, users: 4, spawn_rate: 4}
            """,
    )
    reports = tmp_path / "reports"
    code, out, err = run_harness(scenario, "--reports", str(reports), env=harness_env())
    assert code == 0, f"{out}\n{err}"
    seen = statuses(the_run(reports).buckets())
    assert seen[200] > 0  # the allowed target kept getting its load
    assert seen[0] > 0  # the stray requests failed, as connection errors
    assert f"connection to {ELSEWHERE} refused: not loopback" in err


def test_every_process_of_the_local_stack_listens_on_loopback_only(
    local_stack: RunningStack,
) -> None:
    state = json.loads((local_stack.harness.state_dir / "stack.json").read_text())
    listening: dict[str, set[str]] = {}
    for record in state["processes"]:
        process = psutil.Process(record["pid"])
        for proc in [process, *process.children(recursive=True)]:
            for conn in proc.net_connections("inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.setdefault(record["name"], set()).add(conn.laddr.ip)
    # The shop instances serve its admin API; Caddy the entry; the DB and Toxiproxy their own.
    assert {"app-1", "app-2", "app-3", "caddy", "toxiproxy", "postgres"} <= set(listening)
    assert {name: ips for name, ips in listening.items() if ips != {"127.0.0.1"}} == {}
