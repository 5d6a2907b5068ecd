"""The compose stack cannot be taken over and leaves nothing behind (issue 15, points 4 and 11).

The sample project's database role is an ordinary one with a password of the project's own (no
``shop``/``shop``), Caddy's admin API is neither on nor published; ``harness down`` removes every
container, network and volume of a project, even an anonymous volume that carries no label and
even when it is not told the project's compose file; a failing compose command is shown as it
ran.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from compose_support import REPO, harness, harness_env, project_leftovers

from harness.errors import StackError
from harness.stack.base import StackInfo
from harness.stack.compose import ComposeStack
from harness.stack.compose_docker import compose_command, run_compose
from harness.stack.ports import free_ports

pytestmark = pytest.mark.docker

OWN_SCENARIO = REPO / "tests" / "docker" / "own_project" / "scenario.yaml"


def _sql(url: str, statement: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    return asyncio.run(run())


def _password(url: str) -> str:
    found = re.fullmatch(r"postgresql://shop:([^@]*)@.*", url)
    assert found is not None, url
    return found.group(1)


def _anonymous_volumes(project: str) -> set[str]:
    import docker

    client = docker.from_env()
    try:
        containers = client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
        return {
            str(m["Name"])
            for c in containers
            for m in c.attrs.get("Mounts") or []
            if m.get("Type") == "volume" and re.fullmatch(r"[0-9a-f]{64}", str(m.get("Name")))
        }
    finally:
        client.close()


def _volumes_left(names: set[str]) -> set[str]:
    import docker

    client = docker.from_env()
    try:
        return {v.name for v in client.volumes.list() if v.name in names}
    finally:
        client.close()


def test_the_shops_role_is_no_superuser_and_caddys_admin_api_is_off(
    compose_stack: ComposeStack, compose_info: StackInfo
) -> None:
    url = compose_info.database_url
    assert re.fullmatch(r"[0-9a-f]{32}", _password(url)), url
    assert _sql(url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
    for statement in ("COPY (SELECT 1) TO PROGRAM 'id'", "ALTER ROLE shop SUPERUSER"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            _sql(url, statement)
    with pytest.raises(asyncpg.InvalidPasswordError):
        _sql(url.replace(f":{_password(url)}@", ":shop@"), "SELECT 1")

    caddy = compose_stack._containers()["caddy"][0]
    bindings = (caddy.attrs["HostConfig"].get("PortBindings") or {}).keys()
    assert set(bindings) == {"80/tcp"}  # no 2019 published
    address = next(iter(caddy.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]

    async def admin_port_open() -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(address, 2019), 3)
        except OSError:
            return False
        writer.close()
        return True

    assert asyncio.run(admin_port_open()) is False  # not even inside the project's network


def test_each_project_has_its_own_password_and_the_printed_down_removes_it_all(
    compose_info: StackInfo, tmp_path: Path
) -> None:
    project = f"harness-pw-{os.getpid()}"
    entry, toxiproxy = free_ports(2, "127.0.0.1")
    env = harness_env()
    args = ("--stack", "compose", "--project", project, "--state-dir", str(tmp_path / "state"))
    try:
        up = harness(
            "up", *args, "--entry-port", str(entry), "--toxiproxy-port", str(toxiproxy), env=env
        )
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        url = next(w for w in up.stdout.split() if w.startswith("postgresql://"))
        assert _password(url) != _password(compose_info.database_url)
        assert _sql(url, "SELECT count(*) FROM products") > 0
    finally:
        down = harness("down", *args, env=env)
    assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
    assert project_leftovers(project) == {}


def test_down_removes_a_users_anonymous_volume_even_without_the_compose_file(
    docker_ready: None, tmp_path: Path
) -> None:
    project = f"harness-anon-{os.getpid()}"
    env = harness_env()
    state = ("--state-dir", str(tmp_path / "state"))
    up = harness(
        "up", "--stack", "compose", "--scenario", str(OWN_SCENARIO), "--project", project,
        *state, env=env,
    )  # fmt: skip
    try:
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        anonymous = _anonymous_volumes(project)
        assert anonymous, "the project's database mounts no anonymous volume"
        # What a person types from memory: no scenario, no compose file (the sample's is used).
        down = harness("down", "--stack", "compose", "--project", project, *state, env=env)
        assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
        assert project_leftovers(project) == {}
        assert _volumes_left(anonymous) == set()
    finally:
        harness(
            "down", "--stack", "compose", "--scenario", str(OWN_SCENARIO), "--project", project,
            *state, env=env,
        )  # fmt: skip


def test_a_failing_compose_command_is_shown_as_it_ran(docker_ready: None, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  web:\n    image: [not, a, name]\n")
    project = f"harness-broken-{os.getpid()}"
    with pytest.raises(StackError) as caught:
        run_compose(project, broken, ["up", "-d"], timeout_s=60)
    ran = shlex.join([*compose_command(), "--project-name", project, "--file", str(broken)])
    assert f"`{ran} up -d` failed with exit code" in str(caught.value)
