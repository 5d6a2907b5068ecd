"""The launcher gives the harness a running Toxiproxy, real or embedded, and always stops it."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import psutil
import pytest

from harness.errors import BadInputError, InfrastructureError
from harness.proxy.launcher import find_real_toxiproxy, free_port, running_toxiproxy

pytestmark = pytest.mark.integration


def _version(api_url: str) -> bytes:
    with urllib.request.urlopen(f"{api_url}/version", timeout=5) as response:
        return bytes(response.read())


def test_embedded_server_answers_then_is_gone_after_the_block() -> None:
    with running_toxiproxy(kind="embedded") as server:
        assert server.kind == "embedded"
        assert b'"version"' in _version(server.api_url)
        pid = server.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_server_is_stopped_when_the_block_raises() -> None:
    pids: list[int] = []

    def use_then_fail() -> None:
        with running_toxiproxy(kind="embedded") as server:
            pids.append(server.pid)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        use_then_fail()
    pid = pids[0]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_auto_prefers_the_real_server_when_one_is_found(
    require_or_skip: Callable[[str, str], NoReturn],
) -> None:
    if find_real_toxiproxy() is None:
        require_or_skip("real Toxiproxy binary not found", "HARNESS_REQUIRE_TOXIPROXY")
    with running_toxiproxy(kind="auto") as server:
        assert server.kind == "real"
        assert _version(server.api_url) == b'{"version": "2.12.0"}\n'


def test_auto_falls_back_to_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_TOXIPROXY_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("GOBIN", "/nonexistent")
    with running_toxiproxy(kind="auto") as server:
        assert server.kind == "embedded"


def test_a_named_binary_that_is_not_toxiproxy_is_bad_input(tmp_path: Path) -> None:
    fake = tmp_path / "server"
    fake.write_text("#!/bin/sh\necho 'some other server'\n")
    fake.chmod(0o755)
    with pytest.raises(BadInputError, match="not found or not Toxiproxy"):
        find_real_toxiproxy(fake)
    with pytest.raises(BadInputError):
        find_real_toxiproxy(tmp_path / "missing")


def test_a_taken_api_port_is_named_in_the_error() -> None:
    port = free_port()
    with (
        running_toxiproxy(kind="embedded", port=port),
        pytest.raises(InfrastructureError, match=f"127.0.0.1:{port} is already in use"),
        running_toxiproxy(kind="embedded", port=port),
    ):
        pass


def test_a_config_file_creates_the_proxies_at_start(tmp_path: Path) -> None:
    listen_port = free_port()
    config = tmp_path / "proxies.json"
    config.write_text(
        f'[{{"name": "db", "listen": "127.0.0.1:{listen_port}", "upstream": "127.0.0.1:5432"}}]'
    )
    with running_toxiproxy(kind="embedded", config_file=config) as server:
        with urllib.request.urlopen(f"{server.api_url}/proxies/db", timeout=5) as response:
            body = response.read().decode()
        assert f'"listen":"127.0.0.1:{listen_port}"' in body
        assert os.path.exists(config)
