"""The embedded Toxiproxy under concurrent create / toggle / delete of the same names: once every
proxy is deleted, the server listens on nothing but its API (a proxy deleted while an update was
waiting for its body or the lock must never start listening again)."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from harness.proxy.launcher import RunningToxiproxy, free_port, running_toxiproxy

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.

NAMES = ("race-a", "race-b", "race-c")
THREADS, OPERATIONS = 8, 100


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningToxiproxy]:
    with running_toxiproxy(kind="embedded", log_file=tmp_path / "server.log") as running:
        yield running


def _hammer(api: str, upstream: str, seed: int, errors: list[str]) -> None:
    chooser = random.Random(seed)  # a test's schedule, not a secret
    with requests.Session() as session:
        for _ in range(OPERATIONS):
            name = chooser.choice(NAMES)
            operation = chooser.choice(("create", "enable", "disable", "delete"))
            try:
                if operation == "create":
                    body = {"name": name, "listen": "127.0.0.1:0", "upstream": upstream}
                    answer = session.post(f"{api}/proxies", json=body, timeout=10)
                elif operation == "delete":
                    answer = session.delete(f"{api}/proxies/{name}", timeout=10)
                else:
                    body = {"enabled": operation == "enable"}
                    answer = session.post(f"{api}/proxies/{name}", json=body, timeout=10)
            except requests.RequestException as exc:
                errors.append(f"{operation} {name}: {exc}")
                continue
            if answer.status_code >= 500:
                errors.append(f"{operation} {name}: {answer.status_code} {answer.text.strip()}")


def _listening_ports(pid: int) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }


@pytest.mark.integration  # a real proxy server
def test_racing_toggles_and_deletes_leave_no_listener_behind(server: RunningToxiproxy) -> None:
    upstream = f"127.0.0.1:{free_port()}"
    errors: list[str] = []
    threads = [
        threading.Thread(target=_hammer, args=(server.api_url, upstream, seed, errors))
        for seed in range(THREADS)
    ]
    seen: set[int] = set()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        seen |= _listening_ports(server.pid)  # every proxy port, to try connecting to later
        threads[0].join(0.05)
    for thread in threads:
        thread.join()
    assert errors == []
    for name in NAMES:
        assert requests.delete(f"{server.api_url}/proxies/{name}", timeout=10).status_code in {
            204,
            404,
        }
    assert requests.get(f"{server.api_url}/proxies", timeout=10).json() == {}
    left = _listening_ports(server.pid) - {server.port}
    assert left == set(), f"{len(left)} listener(s) no API call can reach: ports {sorted(left)}"
    seen.discard(server.port)
    assert seen, "the race never had a proxy listening: it tested nothing"
    for port in seen:
        with socket.socket() as probe:
            probe.settimeout(1)
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still accepts"
