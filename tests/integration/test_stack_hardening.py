"""The local stack cannot be taken over by another local user (issue 15, point 4).

Caddy runs as the harness's user (root in CI) and its admin API takes any config without
authentication: it must not listen on a TCP port, only on a Unix socket in a directory nobody
else can enter. The shop's database role must not be a superuser (``COPY ... TO PROGRAM`` would
run commands as the server's account) and its password must be the stack's own, kept in the
0600 state file, not the ``shop`` everyone knows.
"""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from stack_support import RunningStack

from harness.stack.state import StateDir

pytestmark = pytest.mark.integration


def _sql(url: str, statement: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    return asyncio.run(run())


def _password(state_dir: Path) -> str:
    state = StateDir(state_dir).load()
    assert state is not None
    return state.config.db_password


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_caddys_admin_api_is_on_no_tcp_port_only_a_private_unix_socket(
    stack: RunningStack,
) -> None:
    harness = stack.harness
    caddy = next(p for p in harness.stack().status().processes if p.name == "caddy")
    listening = {
        c.laddr.port
        for c in psutil.Process(caddy.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {harness.ports.entry}  # the entry, and no admin port (2019 or any)
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:2019/config/", timeout=2, trust_env=False)

    caddy_dir = StateDir(harness.state_dir).caddy
    assert _mode(caddy_dir) == 0o700  # nobody else can reach the socket inside
    socket = caddy_dir / "admin.sock"
    assert stat.S_ISSOCK(socket.lstat().st_mode)
    # The owner still has it, to look at what Caddy runs.
    transport = httpx.HTTPTransport(uds=str(socket))
    with httpx.Client(transport=transport, timeout=5) as client:
        config = client.get("http://localhost/config/").json()
    assert config["admin"]["listen"] == f"unix/{socket}"


def test_the_shops_role_can_neither_run_programs_nor_raise_itself(stack: RunningStack) -> None:
    url = stack.info.database_url
    assert _sql(url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
    for statement in (
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "ALTER ROLE shop SUPERUSER",
        "CREATE ROLE intruder LOGIN SUPERUSER",
        "SELECT pg_read_file('postgresql.conf')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            _sql(url, statement)
    # ... while it still owns the shop's schema: the migration made its tables.
    assert _sql(url, "SELECT count(*) FROM products") > 0


def test_the_database_password_is_the_stacks_own_in_its_private_state_file(
    stack: RunningStack,
) -> None:
    harness = stack.harness
    state_dir = StateDir(harness.state_dir)
    before = _password(harness.state_dir)
    assert re.fullmatch(r"[0-9a-f]{32}", before), before
    assert f":{before}@" in stack.info.database_url
    for private in (
        state_dir.state_file,
        state_dir.toxiproxy_config,
        state_dir.caddy / "caddy.json",
    ):
        assert _mode(private) == 0o600, private
    shop_shop = stack.info.database_url.replace(f":{before}@", ":shop@")
    with pytest.raises(asyncpg.InvalidPasswordError):
        _sql(shop_shop, "SELECT 1")

    # The next stack (the cluster is kept across down and up) has another password, and the
    # one handed out before opens nothing any more.
    old_url = stack.info.database_url
    harness.down()
    harness.up()
    after = _password(harness.state_dir)
    assert re.fullmatch(r"[0-9a-f]{32}", after)
    assert after != before
    assert _sql(stack.info.database_url, "SELECT 1") == 1
    with pytest.raises(asyncpg.InvalidPasswordError):
        _sql(old_url, "SELECT 1")
