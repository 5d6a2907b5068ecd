"""Leases, an extension of the embedded server: toxics attached to a lease are removed when it is
not renewed in time, so a harness killed with ``kill -9`` leaves no fault behind.

The extension only adds: an optional ``"lease"`` field in a toxic's body (shown back only on a
leased toxic) and the ``/harness/leases`` endpoints. The tests of its behaviour run against the
embedded server only; the standard API is held to the same bytes on both servers (a toxic
created without a lease looks exactly as before); and against the real server, the last tests
show what it does with the extension: 404 on the lease endpoints and a ``lease`` field silently
ignored, which is why the harness asks ``/harness/capabilities`` before relying on a lease.

Expiry is polled with generous deadlines: the precise timing is the unit tests' (a fake clock).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.proxy.launcher import RunningToxiproxy

from .http_api import PROXY_FIELDS, TOXIC_FIELDS, Api, assert_error
from .upstreams import Upstreams
from .wire import Connect, echo_round_trip

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

PROXY = "leased"
LATENCY_MS = 400
# Far above any lease these tests let run out: only a server that never lifts fails.
GONE_WITHIN_S = 15.0


@pytest.fixture
def embedded(toxiproxy: RunningToxiproxy) -> None:
    if toxiproxy.kind == "real":
        pytest.skip("extension: the real Toxiproxy 2.12.0 has no leases (see the last tests)")


@pytest.fixture
def real(toxiproxy: RunningToxiproxy) -> None:
    if toxiproxy.kind == "embedded":
        pytest.skip("checks what the real Toxiproxy does with the embedded server's extension")


def open_lease(api: Api, ttl_ms: int, owner: str = "conformance") -> dict[str, Any]:
    response = api.request("POST", "/harness/leases", json={"ttl_ms": ttl_ms, "owner": owner})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def add_leased(api: Api, lease: str, name: str = "slow", **extra: Any) -> Any:
    payload = {
        "name": name,
        "type": "latency",
        "attributes": {"latency": LATENCY_MS},
        "lease": lease,
        **extra,
    }
    return api.request("POST", f"/proxies/{PROXY}/toxics", json=payload)


def wait_until_no_toxics(api: Api) -> float:
    started = time.monotonic()
    while api.toxics(PROXY):
        assert time.monotonic() - started < GONE_WITHIN_S, api.toxics(PROXY)
        time.sleep(0.05)
    return time.monotonic() - started


# -- the standard API is unchanged --------------------------------------------------------------


def test_a_toxic_created_without_a_lease_has_exactly_the_standard_fields(api: Api) -> None:
    created_proxy = api.create_proxy(PROXY, "127.0.0.1:9")
    assert set(PROXY_FIELDS) <= set(created_proxy) <= {*PROXY_FIELDS, "Logger"}
    disabled = api.update_proxy(PROXY, enabled=False)
    assert set(disabled) <= {*PROXY_FIELDS, "Logger"}
    api.update_proxy(PROXY, enabled=True)
    created = api.add_toxic(PROXY, "latency", attributes={"latency": 5})
    assert sorted(created) == sorted(TOXIC_FIELDS)
    (listed,) = api.proxy(PROXY)["toxics"]
    assert sorted(listed) == sorted(TOXIC_FIELDS)
    updated = api.update_toxic(PROXY, created["name"], attributes={"latency": 6})
    assert sorted(updated) == sorted(TOXIC_FIELDS)


# -- the extension, on the embedded server -------------------------------------------------------


def test_a_lease_is_created_shown_renewed_and_listed(api: Api, embedded: None) -> None:
    lease = open_lease(api, 60_000, owner="ci job 42")
    assert set(lease) == {"id", "owner", "ttl_ms", "expires_in_ms", "toxics"}
    assert (lease["owner"], lease["ttl_ms"], lease["toxics"]) == ("ci job 42", 60_000, [])
    assert 0 < lease["expires_in_ms"] <= 60_000
    renewed = api.request("POST", f"/harness/leases/{lease['id']}")
    assert renewed.status_code == 200
    assert renewed.json()["id"] == lease["id"]
    shown = api.request("GET", f"/harness/leases/{lease['id']}").json()
    assert shown["ttl_ms"] == 60_000
    listed = api.request("GET", "/harness/leases").json()
    assert lease["id"] in [each["id"] for each in listed]
    assert api.request("DELETE", f"/harness/leases/{lease['id']}").status_code == 204


def test_a_leased_toxic_shows_its_lease_and_keeps_it_through_an_update(
    api: Api, embedded: None
) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    lease = open_lease(api, 60_000)
    created = add_leased(api, lease["id"])
    assert created.status_code == 200, created.text
    assert created.json()["lease"] == lease["id"]
    updated = api.update_toxic(PROXY, "slow", attributes={"latency": 7})
    assert (updated["lease"], updated["attributes"]["latency"]) == (lease["id"], 7)
    shown = api.request("GET", f"/harness/leases/{lease['id']}").json()
    assert shown["toxics"] == [{"proxy": PROXY, "toxic": "slow"}]
    api.request("DELETE", f"/harness/leases/{lease['id']}")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "missing required field: ttl_ms"),
        ({"ttl_ms": 99}, 400, "ttl_ms must be from 100 to 86400000, got 99"),
        ({"ttl_ms": 86_400_001}, 400, "ttl_ms must be from 100 to 86400000, got 86400001"),
        ({"ttl_ms": "10s"}, 400, None),
        ({"ttl_ms": 1000, "owner": "x" * 257}, 400, "owner longer than 256 characters"),
    ],
)
def test_bad_lease_bodies_are_refused(
    api: Api, embedded: None, body: dict[str, Any], status: int, message: str | None
) -> None:
    response = api.request("POST", "/harness/leases", json=body)
    if message is None:
        assert_error(response, status, prefix="bad request body:")
    else:
        assert_error(response, status, message)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_lease_is_404(api: Api, embedded: None, method: str) -> None:
    assert_error(api.request(method, "/harness/leases/nope"), 404, "lease not found")


def test_a_toxic_on_an_unknown_lease_is_refused_and_not_added(api: Api, embedded: None) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    assert_error(add_leased(api, "nope"), 400, prefix='bad request body: lease "nope" not found')
    assert api.toxics(PROXY) == []


def test_an_expired_lease_lifts_its_toxics_from_live_connections(
    api: Api, embedded: None, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    sock = connect(listen)
    lease = open_lease(api, 1000)
    add_leased(api, lease["id"])
    api.add_toxic(PROXY, "noop", name="not-leased")
    assert echo_round_trip(sock) >= LATENCY_MS / 1000  # in force on the live connection
    wait_until_no_toxics_but(api, "not-leased")
    # Unfaulted again, on the same connection: well under the latency the toxic added.
    assert echo_round_trip(sock) < LATENCY_MS / 1000 / 2
    assert_error(api.request("POST", f"/harness/leases/{lease['id']}"), 404, "lease not found")
    assert lease["id"] not in [each["id"] for each in api.request("GET", "/harness/leases").json()]


def wait_until_no_toxics_but(api: Api, kept: str) -> None:
    started = time.monotonic()
    while [t["name"] for t in api.toxics(PROXY)] != [kept]:
        assert time.monotonic() - started < GONE_WITHIN_S, api.toxics(PROXY)
        time.sleep(0.05)


def test_releasing_a_lease_lifts_its_toxics_at_once(api: Api, embedded: None) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    lease = open_lease(api, 60_000)
    add_leased(api, lease["id"])
    assert api.request("DELETE", f"/harness/leases/{lease['id']}").status_code == 204
    assert api.toxics(PROXY) == []


def test_a_toxic_replaced_under_the_same_name_without_the_lease_is_kept(
    api: Api, embedded: None
) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    lease = open_lease(api, 60_000)
    add_leased(api, lease["id"])
    api.remove_toxic(PROXY, "slow")
    api.add_toxic(PROXY, "latency", name="slow", attributes={"latency": 1})
    assert api.request("DELETE", f"/harness/leases/{lease['id']}").status_code == 204
    assert [t["name"] for t in api.toxics(PROXY)] == ["slow"]


def test_a_proxy_disabled_under_a_lease_is_enabled_again_when_it_expires(
    api: Api, embedded: None, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy(PROXY, echo.address)["listen"]
    lease = open_lease(api, 1000)
    down = api.update_proxy(PROXY, enabled=False, lease=lease["id"])
    assert (down["enabled"], down["lease"]) == (False, lease["id"])
    started = time.monotonic()
    while not api.proxy(PROXY)["enabled"]:
        assert time.monotonic() - started < GONE_WITHIN_S, api.proxy(PROXY)
        time.sleep(0.05)
    assert "lease" not in api.proxy(PROXY)
    assert echo_round_trip(connect(listen)) < 1.0  # listening again, on the same address


def test_enabling_a_proxy_by_hand_drops_its_lease(api: Api, embedded: None) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    lease = open_lease(api, 60_000)
    api.update_proxy(PROXY, enabled=False, lease=lease["id"])
    assert sorted(api.update_proxy(PROXY, enabled=True)) == sorted(PROXY_FIELDS)
    api.update_proxy(PROXY, enabled=False)  # down again, by hand: not the lease's to lift
    assert api.request("DELETE", f"/harness/leases/{lease['id']}").status_code == 204
    assert api.proxy(PROXY)["enabled"] is False


def test_disabling_under_an_unknown_lease_is_refused_and_changes_nothing(
    api: Api, embedded: None
) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    response = api.request("POST", f"/proxies/{PROXY}", json={"enabled": False, "lease": "nope"})
    assert_error(response, 400, prefix='bad request body: lease "nope" not found')
    assert api.proxy(PROXY)["enabled"] is True


def test_reset_removes_leased_toxics_and_keeps_the_lease(api: Api, embedded: None) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    lease = open_lease(api, 60_000)
    add_leased(api, lease["id"])
    api.reset()
    assert api.toxics(PROXY) == []
    assert api.request("POST", f"/harness/leases/{lease['id']}").status_code == 200
    api.request("DELETE", f"/harness/leases/{lease['id']}")


# -- what the real server does with the extension ----------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/harness/leases"),
        ("POST", "/harness/leases"),
        ("POST", "/harness/leases/abc"),
        ("DELETE", "/harness/leases/abc"),
    ],
)
def test_real_toxiproxy_answers_404_to_the_lease_endpoints(
    api: Api, real: None, method: str, path: str
) -> None:
    response = api.request(method, path, json={"ttl_ms": 1000})
    assert response.status_code == 404
    assert response.headers.get("content-type", "").startswith("text/plain")


def test_real_toxiproxy_ignores_a_lease_field_so_clients_must_ask_capabilities(
    api: Api, real: None
) -> None:
    api.create_proxy(PROXY, "127.0.0.1:9")
    created = add_leased(api, "any")
    assert created.status_code == 200
    assert sorted(created.json()) == sorted(TOXIC_FIELDS)  # no lease: it would never expire
    disabled = api.update_proxy(PROXY, enabled=False, lease="any")
    assert "lease" not in disabled
    assert api.request("GET", "/harness/capabilities").status_code == 404
