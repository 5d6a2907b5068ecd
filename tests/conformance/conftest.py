"""Fixtures of the conformance suite: one server per kind, a clean state per test, upstreams.

``toxiproxy`` is session-scoped and parametrised ``["embedded", "real"]``, so pytest starts each
server once and runs every test against both. The real server is found with
``find_real_toxiproxy()``; when it is absent the ``real`` half is skipped, or fails when
``HARNESS_REQUIRE_TOXIPROXY=1`` (CI). Server logs go to pytest's temporary directory
(``toxiproxy-<kind>*/server.log``) for post-mortems.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from typing import NoReturn

import pytest

from harness.proxy.launcher import RunningToxiproxy, find_real_toxiproxy, running_toxiproxy

from .http_api import Api
from .upstreams import Upstreams
from .wire import Connect, split_address

SERVER_KINDS = ["embedded", "real"]
REQUIRE_TOXIPROXY_ENV = "HARNESS_REQUIRE_TOXIPROXY"


def skip_unless_found(kind: str, require_or_skip: Callable[[str, str], NoReturn]) -> None:
    """Skip (or fail, in CI) a test of the real server when there is none on this machine."""
    if kind == "real" and find_real_toxiproxy() is None:
        require_or_skip(
            "no real Toxiproxy server found (toxiproxy-server on PATH, ~/go/bin/server, "
            "or HARNESS_TOXIPROXY_BIN)",
            REQUIRE_TOXIPROXY_ENV,
        )


@pytest.fixture(scope="session", params=SERVER_KINDS, ids=SERVER_KINDS)
def toxiproxy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    require_or_skip: Callable[[str, str], NoReturn],
) -> Iterator[RunningToxiproxy]:
    """A running server of the kind under test, started through the harness launcher."""
    kind = request.param
    skip_unless_found(kind, require_or_skip)
    log_file = tmp_path_factory.mktemp(f"toxiproxy-{kind}") / "server.log"
    with running_toxiproxy(kind=kind, log_file=log_file) as running:
        assert running.kind == kind, f"asked for the {kind} server, the launcher ran {running.kind}"
        yield running


@pytest.fixture(scope="session")
def _api_client(toxiproxy: RunningToxiproxy) -> Iterator[Api]:
    with closing(Api(toxiproxy.api_url)) as client:
        yield client


@pytest.fixture(autouse=True)
def api(_api_client: Api) -> Iterator[Api]:
    """The API of the server under test, with no proxies before and after each test."""
    _api_client.delete_all_proxies()
    yield _api_client
    _api_client.delete_all_proxies()


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    """Upstream servers on ephemeral ports of 127.0.0.1, all stopped when the test ends."""
    with ExitStack() as stack:
        yield Upstreams(stack)


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open client connections (to a proxy's ``listen``), all closed when the test ends."""
    opened: list[socket.socket] = []

    def _connect(address: str) -> socket.socket:
        sock = socket.create_connection(split_address(address), timeout=5.0)
        opened.append(sock)
        return sock

    yield _connect
    for sock in opened:
        sock.close()
