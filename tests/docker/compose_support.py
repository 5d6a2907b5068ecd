"""Helpers of the docker tests (a module, not the conftest: tests import it by name)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 300.0


def harness_env(**extra: str) -> dict[str, str]:
    """The environment for a ``harness`` subprocess: none of the caller's HARNESS_ / LOCUST_
    settings (a developer's shell must not steer the test), plus ``extra``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "LOCUST_"))}
    return {**clean, **extra}


def project_leftovers(project: str) -> dict[str, list[str]]:
    """What the Docker engine still has of a compose project: containers, networks, volumes."""
    import docker

    from harness.stack.compose import PROJECT_LABEL

    client = docker.from_env()
    label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
    found = {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
    }
    return {kind: names for kind, names in found.items() if names}


def harness(
    *args: str, env: dict[str, str], cwd: Path = REPO, timeout_s: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``harness ARGS`` as a user runs it (a subprocess, its own exit code)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
