"""The HTTP API for proxies, and what every response shares: request ids, the browser ban,
plain 404s, ``/version``. Modelled on the real server's ``api_test.go`` and ``proxy_test.go``."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from harness.proxy.launcher import RunningToxiproxy, free_port

from .http_api import Api, assert_error, proxy_view
from .upstreams import Upstreams
from .wire import Connect, End, connection_refused, echo_round_trip, read_to_end, split_address

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


# Cross-cutting behaviour


def test_version_answers_200_with_a_version_string(api: Api, toxiproxy: RunningToxiproxy) -> None:
    response = api.request("GET", "/version")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    version = body.get("version")
    assert isinstance(version, str)
    assert version.strip()
    if toxiproxy.kind == "real":
        # Only the real server is pinned: the embedded one reports its own version.
        assert version == "2.12.0"


def test_every_api_response_carries_a_request_id(api: Api, upstreams: Upstreams) -> None:
    echo = upstreams.echo()
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/version", {}),
        ("GET", "/proxies", {}),
        (
            "POST",
            "/proxies",
            {"json": {"name": "p", "listen": "127.0.0.1:0", "upstream": echo.address}},
        ),
        (
            "POST",
            "/proxies",
            {"json": {"name": "p", "listen": "127.0.0.1:0", "upstream": echo.address}},
        ),
        ("POST", "/proxies", {"content": b"{not json"}),
        ("GET", "/proxies/p", {}),
        ("PATCH", "/proxies/p", {"json": {"enabled": True}}),
        ("POST", "/proxies/p/toxics", {"json": {"type": "latency"}}),
        ("GET", "/proxies/p/toxics", {}),
        ("GET", "/proxies/p/toxics/latency_downstream", {}),
        ("PATCH", "/proxies/p/toxics/latency_downstream", {"json": {"toxicity": 0.5}}),
        ("DELETE", "/proxies/p/toxics/latency_downstream", {}),
        ("GET", "/proxies/p/toxics/latency_downstream", {}),
        ("POST", "/reset", {}),
        ("DELETE", "/proxies/p", {}),
        ("GET", "/proxies/p", {}),
        ("POST", "/populate", {"json": []}),
        ("GET", "/proxies", {"headers": {"User-Agent": BROWSER_UA}}),
    ]
    missing = []
    for method, path, kwargs in calls:
        response = api.request(method, path, **kwargs)
        if not response.headers.get("X-Toxiproxy-Request-Id"):
            missing.append(f"{method} {path} -> {response.status_code}")
    assert missing == []


def test_browser_user_agents_are_refused(api: Api) -> None:
    response = api.request("GET", "/proxies", headers={"User-Agent": BROWSER_UA})
    assert response.status_code == 403
    assert response.text.strip() == "User agent not allowed"


def test_browser_user_agent_cannot_create_a_proxy(api: Api) -> None:
    body = {"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}
    response = api.request("POST", "/proxies", json=body, headers={"User-Agent": "Mozilla/4.0"})
    assert response.status_code == 403
    assert api.proxies() == {}


@pytest.mark.parametrize("agent", ["curl/8.5.0", "Wget/2.1", "python-requests/2.32"])
def test_non_browser_user_agents_are_served(api: Api, agent: str) -> None:
    assert api.request("GET", "/proxies", headers={"User-Agent": agent}).status_code == 200


@pytest.mark.parametrize("path", ["/", "/nope", "/proxies/p/toxics/t/extra"])
def test_unknown_path_is_a_plain_404(api: Api, path: str) -> None:
    response = api.request("GET", path)
    assert response.status_code == 404
    assert response.headers.get("content-type", "").startswith("text/plain")


# Creating proxies


def test_proxy_list_is_an_empty_object_without_proxies(api: Api) -> None:
    response = api.request("GET", "/proxies")
    assert response.status_code == 200
    assert response.json() == {}


def test_create_proxy_returns_201_and_the_bound_listen_address(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    response = api.request(
        "POST", "/proxies", json={"name": "db", "listen": "localhost:0", "upstream": echo.address}
    )
    assert response.status_code == 201
    body = response.json()
    host, port = split_address(body["listen"])
    assert (host, port != 0) == ("127.0.0.1", True)
    assert proxy_view(body) == {
        "name": "db",
        "listen": body["listen"],
        "upstream": echo.address,
        "enabled": True,
        "toxics": [],
    }
    echo_round_trip(connect(body["listen"]))


def test_create_proxy_resolves_localhost_and_keeps_a_fixed_port(api: Api) -> None:
    port = free_port()
    body = api.create_proxy("db", "127.0.0.1:9", listen=f"localhost:{port}")
    assert body["listen"] == f"127.0.0.1:{port}"
    assert api.proxy("db")["listen"] == f"127.0.0.1:{port}"


def test_created_proxies_are_listed_by_name_and_readable_one_by_one(api: Api) -> None:
    created = {
        name: api.create_proxy(name, f"127.0.0.1:{9 + i}") for i, name in enumerate(["a", "b"])
    }
    listed = api.proxies()
    assert sorted(listed) == ["a", "b"]
    for name, body in created.items():
        assert proxy_view(listed[name]) == proxy_view(body)
        assert proxy_view(api.proxy(name)) == proxy_view(body)


def test_created_disabled_proxy_does_not_listen(api: Api) -> None:
    port = free_port()
    body = api.create_proxy("db", "127.0.0.1:9", listen=f"127.0.0.1:{port}", enabled=False)
    assert body["enabled"] is False
    assert api.proxy("db")["enabled"] is False
    assert connection_refused(f"127.0.0.1:{port}")


def test_created_disabled_proxy_reports_listen_as_given(api: Api) -> None:
    # Nothing is bound yet, so there is nothing to resolve (the real server's
    # TestCreateDisabledProxy).
    port = free_port()
    body = api.create_proxy("db", "127.0.0.1:9", listen=f"localhost:{port}", enabled=False)
    assert body["listen"] == f"localhost:{port}"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({}, "name", id="empty-object"),
        pytest.param({"name": "", "upstream": "127.0.0.1:9"}, "name", id="blank-name"),
        pytest.param({"name": "db"}, "upstream", id="no-upstream"),
        pytest.param({"name": "db", "upstream": ""}, "upstream", id="blank-upstream"),
    ],
)
def test_create_proxy_without_a_required_field_is_400(
    api: Api, payload: dict[str, Any], field: str
) -> None:
    response = api.request("POST", "/proxies", json=payload)
    assert_error(response, 400, f"missing required field: {field}")
    assert api.proxies() == {}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'{"name": 5, "upstream": "127.0.0.1:9"}', id="name-not-string"),
        pytest.param(
            b'{"name": "db", "upstream": "127.0.0.1:9", "enabled": "yes"}', id="enabled-not-bool"
        ),
    ],
)
def test_create_proxy_with_a_malformed_body_is_400(api: Api, body: bytes) -> None:
    response = api.request("POST", "/proxies", content=body)
    assert_error(response, 400, prefix="bad request body")
    assert api.proxies() == {}


def test_duplicate_proxy_name_is_409_before_any_bind(api: Api) -> None:
    first = api.create_proxy("db", "127.0.0.1:9")
    # Same name and same listen: a server that bound first would answer 500 instead.
    same_listen = {"name": "db", "listen": first["listen"], "upstream": "127.0.0.1:10"}
    assert_error(api.request("POST", "/proxies", json=same_listen), 409, "proxy already exists")
    other_listen = {"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:10"}
    assert_error(api.request("POST", "/proxies", json=other_listen), 409, "proxy already exists")
    assert proxy_view(api.proxy("db")) == proxy_view(first)


def test_listen_address_in_use_is_500_with_the_os_message(api: Api) -> None:
    with socket.create_server(("127.0.0.1", 0)) as occupied:
        port = occupied.getsockname()[1]
        payload = {"name": "db", "listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:9"}
        response = api.request("POST", "/proxies", json=payload)
        assert_error(response, 500, contains="address already in use")
    assert api.proxies() == {}


def test_port_of_a_deleted_proxy_can_be_reused(api: Api) -> None:
    listen = api.create_proxy("one", "127.0.0.1:9")["listen"]
    api.delete_proxy("one")
    assert api.create_proxy("two", "127.0.0.1:9", listen=listen)["listen"] == listen


# Unknown proxies


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/proxies/nope", None),
        ("POST", "/proxies/nope", {"enabled": False}),
        ("PATCH", "/proxies/nope", {"enabled": False}),
        ("DELETE", "/proxies/nope", None),
        ("GET", "/proxies/nope/toxics", None),
        ("POST", "/proxies/nope/toxics", {"type": "latency"}),
        ("GET", "/proxies/nope/toxics/latency_downstream", None),
        ("PATCH", "/proxies/nope/toxics/latency_downstream", {"toxicity": 0.5}),
        ("DELETE", "/proxies/nope/toxics/latency_downstream", None),
    ],
)
def test_unknown_proxy_is_404(
    api: Api, method: str, path: str, payload: dict[str, Any] | None
) -> None:
    response = api.request(method, path, json=payload) if payload else api.request(method, path)
    assert_error(response, 404, "proxy not found")


# Updating proxies


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_proxy_update_merges_the_given_fields(api: Api, method: str) -> None:
    created = api.create_proxy("db", "127.0.0.1:9")
    response = api.request(method, "/proxies/db", json={"enabled": False})
    assert response.status_code == 200
    assert proxy_view(response.json()) == {**proxy_view(created), "enabled": False}

    response = api.request(method, "/proxies/db", json={"upstream": "127.0.0.1:10"})
    assert response.status_code == 200
    expected = {**proxy_view(created), "enabled": False, "upstream": "127.0.0.1:10"}
    assert proxy_view(response.json()) == expected
    assert proxy_view(api.proxy("db")) == expected


def test_proxy_update_to_a_new_listen_moves_the_listener(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    old = api.create_proxy("db", echo.address)["listen"]
    new = f"127.0.0.1:{free_port()}"
    assert api.update_proxy("db", listen=new)["listen"] == new
    assert connection_refused(old)
    echo_round_trip(connect(new))


def test_proxy_update_to_a_new_upstream_drops_connections_and_uses_it(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    first, second = upstreams.echo(), upstreams.echo()
    listen = api.create_proxy("db", first.address)["listen"]
    old_client = connect(listen)
    echo_round_trip(old_client)

    api.update_proxy("db", upstream=second.address)
    data, end = read_to_end(old_client, 2.0)
    assert (data, end in (End.EOF, End.RESET)) == (b"", True)
    echo_round_trip(connect(listen), b"to the second upstream")
    assert second.next_peer().data == b"to the second upstream"


def test_proxy_update_with_an_equivalent_listen_keeps_connections(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy("db", echo.address)["listen"]
    client = connect(listen)
    echo_round_trip(client)
    _, port = split_address(listen)
    assert api.update_proxy("db", listen=f"localhost:{port}")["listen"] == listen
    echo_round_trip(client, b"still connected")


def test_proxy_update_with_a_malformed_body_is_400_and_changes_nothing(api: Api) -> None:
    created = api.create_proxy("db", "127.0.0.1:9")
    assert_error(api.request("PATCH", "/proxies/db", content=b"{"), 400, prefix="bad request body")
    assert proxy_view(api.proxy("db")) == proxy_view(created)


# Deleting proxies


def test_delete_proxy_returns_204_and_closes_listener_and_connections(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy("db", echo.address)["listen"]
    client = connect(listen)
    echo_round_trip(client)

    response = api.request("DELETE", "/proxies/db")
    assert response.status_code == 204
    assert response.content == b""
    assert connection_refused(listen)
    data, end = read_to_end(client, 2.0)
    assert (data, end in (End.EOF, End.RESET)) == (b"", True)
    assert api.proxies() == {}
    assert_error(api.request("DELETE", "/proxies/db"), 404, "proxy not found")


def test_toxics_are_lost_when_a_proxy_is_deleted(api: Api) -> None:
    api.create_proxy("db", "127.0.0.1:9")
    api.add_toxic("db", "latency", attributes={"latency": 100})
    api.delete_proxy("db")
    assert api.create_proxy("db", "127.0.0.1:9")["toxics"] == []
    assert api.toxics("db") == []
