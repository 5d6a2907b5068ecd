"""The load balancer drops an idle upstream connection before the shop closes it.

Otherwise a request Caddy writes on a connection the shop is closing at that moment fails; a POST
without an Idempotency-Key is neither replayed nor retried, so the client gets a 502 and the
passive health check takes the instance out (one of the flaky demo's ingredients, issue 14).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from shopapp.__main__ import KEEP_ALIVE_S

from harness.durations import parse_duration
from harness.stack.base import Endpoint
from harness.stack.caddy import caddy_config

pytestmark = pytest.mark.unit

CADDYFILE = Path(__file__).resolve().parents[2] / "compose" / "config" / "Caddyfile"


def test_the_local_stacks_caddy_drops_idle_upstream_connections_first() -> None:
    config = caddy_config(
        entry=Endpoint("127.0.0.1", 8080),
        upstreams=[Endpoint("127.0.0.1", 18101)],
        admin_socket=None,
        storage_dir=Path("/x"),
    )
    server = config["apps"]["http"]["servers"]["entry"]
    transport = server["routes"][0]["handle"][0]["transport"]
    idle = parse_duration(transport["keep_alive"]["idle_timeout"])
    assert 0 < idle < KEEP_ALIVE_S


def test_the_compose_stacks_caddy_drops_idle_upstream_connections_first() -> None:
    found = re.findall(r"^\s*keepalive\s+(\S+)\s*$", CADDYFILE.read_text(), re.MULTILINE)
    assert len(found) == 1, found
    assert 0 < parse_duration(found[0]) < KEEP_ALIVE_S
