"""A user's own compose project (tests/docker/own_project/): no service named like the sample
stack's, a backend service scaled to two containers, Toxiproxy under another name with a proxy
the harness creates. `harness run` brings it up from the scenario's stack section, kills one of
the two backends mid-run and slows the database link, judges the run; `harness down` removes
every trace of it.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import httpx
import pytest
from compose_support import REPO, harness, harness_env, project_leftovers

from harness.record import EventKind, RunDir
from harness.run.stackup import compose_stack_of
from harness.scenario import load_scenario
from harness.stack.compose import NUMBER_LABEL
from harness.stack.topology import APP, ENTRY, TOXIPROXY

pytestmark = pytest.mark.docker

SCENARIO = REPO / "tests" / "docker" / "own_project" / "scenario.yaml"


def test_own_project_run_kills_one_replica_and_down_leaves_nothing(
    docker_ready: None, tmp_path: Path
) -> None:
    project = f"harness-own-{os.getpid()}"
    env = harness_env()
    reports = tmp_path / "reports"
    scenario_args = ("--stack", "compose", "--project", project, "--scenario", str(SCENARIO))
    down_args: tuple[str, ...] = ("down", *scenario_args)
    try:
        run = harness(
            "run",
            str(SCENARIO),
            "--project",
            project,
            "--reports",
            str(reports),
            "--state-dir",
            str(tmp_path / "state"),
            env=env,
        )
        assert run.returncode in (0, 1), f"{run.stdout}\n{run.stderr}"
        assert f"starting the compose project {project!r}" in run.stderr
        # The down command it prints names all it needs: below, it is run as printed.
        line = run.stderr.split("it stays up for the next run, until:\n", 1)[1].splitlines()[0]
        words = shlex.split(line[line.index("harness down") :])
        assert words[:6] == ["harness", "down", "--stack", "compose", "--project", project]
        assert words[words.index("--compose-file") + 1] == str(SCENARIO.parent / "compose.yml")
        assert words[words.index("--state-dir") + 1] == str(tmp_path / "state")
        down_args = tuple(words[1:])

        (root,) = [p for p in reports.iterdir() if p.is_dir()]
        store = RunDir.open(root)
        summary = json.loads(store.summary_json.read_text())
        slos = {slo["name"]: slo for slo in summary["slos"]}
        assert all(slo["judged"] for slo in slos.values()), summary["slos"]
        # One replica of two dead for 3 s: the balancer routes around it, the shop never
        # answers 500, and the run is back to its warm-up quality soon after the revert.
        for name in ("no-500s", "kill-web-2-recovers", "slow-db-recovers"):
            assert slos[name]["passed"], slos[name]
        injected = {e.name for e in store.events() if e.kind is EventKind.FAULT_INJECTED}
        reverted = {e.name for e in store.events() if e.kind is EventKind.FAULT_REVERTED}
        assert injected == reverted == {"kill-web-2", "slow-db"}

        stack = compose_stack_of(load_scenario(SCENARIO), project)
        web = {c.labels[NUMBER_LABEL]: c for c in stack._containers()["web"]}
        started = {n: str(c.attrs["State"]["StartedAt"]) for n, c in web.items()}
        # web-2 was killed mid-run and started again; web-1 ran throughout.
        assert started["2"] > started["1"], started

        roles = {p.name: p.role for p in stack.status().processes}
        assert roles == {
            "web-1": APP,
            "web-2": APP,
            "gateway": ENTRY,
            "chaos": TOXIPROXY,
            "db": "service",  # the one-shot migrate, done, is not a piece of the system
        }
        info = stack.info()
        assert [(i.name, i.health_path) for i in info.instances] == [
            ("web-1", "/healthz"),
            ("web-2", "/healthz"),
        ]
        proxies = httpx.get(f"{info.toxiproxy_url}/proxies", timeout=5, trust_env=False).json()
        assert proxies["web-db"]["upstream"] == "db:5432"
        assert proxies["web-db"]["toxics"] == []

        status = harness("status", *scenario_args, env=env)
        assert status.returncode == 0, f"{status.stdout}\n{status.stderr}"
        assert "web-2" in status.stdout
    finally:
        down = harness(*down_args, env=env)
    assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
    assert project_leftovers(project) == {}
