"""harness.stack.postgres, the shop's database in the local stack: init, start, stop for real."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
import session_cleanup
from shop_support import free_port

from harness.errors import StackError
from harness.stack.postgres import (
    SYSTEM_USER,
    PostgresInfo,
    init_cluster,
    running_pid,
    start_postgres,
    stop_postgres,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def root() -> Iterator[Path]:
    # Under /tmp rather than tmp_path: see the postgres fixture in conftest.py.
    path = Path(tempfile.mkdtemp(prefix="shop-it-pgunit-"))
    record = session_cleanup.current()
    if record is not None:
        record.add_state_dir(path)  # swept (its server too) should the session be killed
    yield path
    pid = running_pid(path / "data")
    if pid is not None:
        stop_postgres(pid)
    shutil.rmtree(path, ignore_errors=True)
    if record is not None:
        record.forget_state_dir(path)


def query(info: PostgresInfo, sql: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(info.dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def info_for(data_dir: Path, port: int, pid: int) -> PostgresInfo:
    return PostgresInfo("127.0.0.1", port, "shop", "shop", "shop", data_dir, pid)


def test_init_cluster_is_idempotent_and_refuses_what_it_did_not_make(root: Path) -> None:
    data_dir = root / "data"
    init_cluster(data_dir)
    init_cluster(data_dir)  # a no-op
    with pytest.raises(StackError, match="for user 'shop' and database 'shop'"):
        init_cluster(data_dir, user="other")
    foreign = root / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("not a cluster")
    with pytest.raises(StackError, match="is not a harness PostgreSQL cluster"):
        init_cluster(foreign)
    assert (foreign / "precious.txt").read_text() == "not a cluster"
    assert sorted(p.name for p in root.iterdir()) == ["data", "foreign"]  # no staging left


def test_server_is_tuned_for_tests_and_listens_only_where_asked(root: Path) -> None:
    data_dir, port = root / "data", free_port()
    init_cluster(data_dir)
    process = start_postgres(data_dir, port=port, log_file=root / "pg.log")
    try:
        info = info_for(data_dir, port, process.pid)
        assert running_pid(data_dir) == process.pid
        assert query(info, "SHOW fsync") == "off"
        assert query(info, "SHOW synchronous_commit") == "off"
        assert query(info, "SHOW full_page_writes") == "off"
        assert query(info, "SHOW max_connections") == "200"
        assert query(info, "SHOW listen_addresses") == "127.0.0.1"
        assert query(info, "SHOW unix_socket_directories") == str(data_dir)
        assert query(info, "SELECT current_database()") == "shop"
        if os.geteuid() == 0:
            assert psutil.Process(process.pid).username() == SYSTEM_USER
        # A session of its own: the server outlives the process that started it.
        assert os.getsid(process.pid) == process.pid
    finally:
        stop_postgres(process.pid)
        process.wait(timeout=5)
    assert running_pid(data_dir) is None


def test_a_wrong_password_is_refused(root: Path) -> None:
    data_dir, port = root / "data", free_port()
    init_cluster(data_dir, password="right")
    process = start_postgres(data_dir, port=port, log_file=root / "pg.log")
    try:
        wrong = PostgresInfo("127.0.0.1", port, "shop", "wrong", "shop", data_dir, process.pid)
        with pytest.raises(asyncpg.InvalidPasswordError):
            query(wrong, "SELECT 1")
    finally:
        stop_postgres(process.pid)
        process.wait(timeout=5)


def test_a_restart_keeps_the_data_and_stopping_twice_is_harmless(root: Path) -> None:
    data_dir, port = root / "data", free_port()
    init_cluster(data_dir)
    first = start_postgres(data_dir, port=port, log_file=root / "pg.log")
    query(info_for(data_dir, port, first.pid), "CREATE TABLE kept AS SELECT 42 AS answer")
    stop_postgres(first.pid)
    first.wait(timeout=5)
    stop_postgres(first.pid)  # gone already: nothing to do

    init_cluster(data_dir)  # as `harness up` does every time
    second = start_postgres(data_dir, port=port, log_file=root / "pg.log")
    try:
        assert query(info_for(data_dir, port, second.pid), "SELECT answer FROM kept") == 42
        with pytest.raises(StackError, match=f"already running \\(pid {second.pid}\\)"):
            start_postgres(data_dir, port=free_port(), log_file=root / "pg.log")
    finally:
        stop_postgres(second.pid)
        second.wait(timeout=5)


def test_a_taken_port_is_named_in_the_error(root: Path) -> None:
    data_dir = root / "data"
    init_cluster(data_dir)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(StackError, match=f"127.0.0.1:{port}.*already in use"):
            start_postgres(data_dir, port=port, log_file=root / "pg.log")
    assert running_pid(data_dir) is None


def test_a_failed_start_shows_the_end_of_the_log(root: Path) -> None:
    data_dir = root / "data"
    init_cluster(data_dir)
    with open(data_dir / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = 'plenty'\n")
    with pytest.raises(StackError) as caught:
        start_postgres(data_dir, port=free_port(), log_file=root / "pg.log")
    message = str(caught.value)
    assert "failed to start" in message
    assert "shared_buffers" in message  # the server's own complaint, from the log


def test_start_refuses_an_uninitialised_directory(root: Path) -> None:
    with pytest.raises(StackError, match="call init_cluster first"):
        start_postgres(root / "data", port=free_port(), log_file=root / "pg.log")
