"""The docker tier: the compose stack for real, brought up once per session.

Skipped when no Docker engine answers or the images are missing, unless
``HARNESS_REQUIRE_DOCKER=1`` (CI, after ``.ci/docker-setup``) makes that a failure.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
import session_cleanup

from harness.stack.base import StackInfo
from harness.stack.compose import ComposeStack, ComposeStackConfig
from harness.stack.ports import free_ports

REQUIRE = "HARNESS_REQUIRE_DOCKER"
# The images the compose file names for the stack itself (not the load profile).
IMAGES = (
    "postgres:17",
    "ghcr.io/shopify/toxiproxy:2.12.0",
    "caddy:2",
    "harness/shop:latest",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/docker/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.docker)


def _docker_problem() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    # The Docker SDK leaves its unix socket unclosed when the engine's socket is missing; under
    # `filterwarnings = error` the ResourceWarning of its collection became an error in some
    # later test's teardown. It is collected here, inside the block that ignores it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return _engine_problem(docker)
        finally:
            gc.collect()


def _engine_problem(docker: Any) -> str | None:
    try:
        client = docker.from_env(timeout=10)
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers ({str(exc).splitlines()[0]})"
    try:
        client.ping()
        missing = []
        for name in IMAGES:
            try:
                client.images.get(name)
            except docker.errors.ImageNotFound:
                missing.append(name)
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers ({str(exc).splitlines()[0]})"
    finally:
        client.close()
    if missing:
        return f"images {', '.join(missing)} are missing (run `harness images seed`)"
    return None


@pytest.fixture(scope="session")
def docker_ready(require_or_skip: Callable[[str, str], NoReturn]) -> None:
    """A Docker engine answers and the images are there (else skip, or fail in CI)."""
    problem = _docker_problem()
    if problem is not None:
        require_or_skip(problem, REQUIRE)


@pytest.fixture(scope="session")
def compose_stack(docker_ready: None) -> Iterator[ComposeStack]:
    # The sample stack as the compose file configures it (no app_env): the CI-gate scenario
    # runs on it unchanged.
    entry, toxiproxy = free_ports(2, "127.0.0.1")
    stack = ComposeStack(
        ComposeStackConfig(
            project=f"harness-test-{os.getpid()}",
            entry_port=entry,
            toxiproxy_port=toxiproxy,
        )
    )
    # Recorded before it starts: a session killed from here on has it taken down by the next.
    record = session_cleanup.current()
    if record is not None:
        record.add_compose_project(stack.project)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        if record is not None:
            record.forget_compose_project(stack.project)


@pytest.fixture(scope="session")
def compose_info(compose_stack: ComposeStack) -> StackInfo:
    return compose_stack.info()
