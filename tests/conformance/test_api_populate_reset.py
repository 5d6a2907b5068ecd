"""``/populate``, ``/reset`` and the ``-config`` file loaded at start.
Modelled on the real server's ``TestPopulate*`` and ``TestResetState``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from harness.proxy.launcher import RunningToxiproxy, free_port, running_toxiproxy

from .http_api import Api, assert_error, proxy_view
from .upstreams import Upstreams
from .wire import Connect, connection_refused, echo_round_trip, split_address

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]


# /populate


def test_populate_creates_proxies_in_order_and_returns_201(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    payload = [
        {"name": "one", "listen": "localhost:0", "upstream": echo.address},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": echo.address, "enabled": True},
    ]
    response = api.request("POST", "/populate", json=payload)
    assert response.status_code == 201
    created = response.json()["proxies"]
    assert [(p["name"], p["enabled"], p["toxics"]) for p in created] == [
        ("one", True, []),
        ("two", True, []),
    ]
    for proxy in created:
        host, port = split_address(proxy["listen"])
        assert (host, port != 0) == ("127.0.0.1", True)
        assert proxy_view(api.proxy(proxy["name"])) == proxy_view(proxy)
        echo_round_trip(connect(proxy["listen"]))


def test_populate_honours_enabled_false(api: Api) -> None:
    port = free_port()
    payload = [
        {"name": "off", "listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:9", "enabled": False}
    ]
    response = api.request("POST", "/populate", json=payload)
    assert response.status_code == 201
    assert response.json()["proxies"][0]["enabled"] is False
    assert api.proxy("off")["enabled"] is False
    assert connection_refused(f"127.0.0.1:{port}")


def test_populate_leaves_an_identical_proxy_alone_with_its_toxics_and_connections(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy("one", echo.address)["listen"]
    toxic = api.add_toxic("one", "noop", name="kept")
    client = connect(listen)
    echo_round_trip(client)

    _, port = split_address(listen)
    # "localhost" resolves to the address the proxy already has: same proxy, not a new one.
    payload = [{"name": "one", "listen": f"localhost:{port}", "upstream": echo.address}]
    response = api.request("POST", "/populate", json=payload)
    assert response.status_code == 201
    (returned,) = response.json()["proxies"]
    assert returned["listen"] == listen
    assert [t["name"] for t in returned["toxics"]] == ["kept"]
    assert api.toxics("one") == [toxic]
    echo_round_trip(client, b"same connection")


def test_populate_replaces_a_differing_proxy(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    first, second = upstreams.echo(), upstreams.echo()
    listen = api.create_proxy("one", first.address)["listen"]
    api.add_toxic("one", "noop")

    payload = [{"name": "one", "listen": listen, "upstream": second.address}]
    response = api.request("POST", "/populate", json=payload)
    assert response.status_code == 201
    (returned,) = response.json()["proxies"]
    assert (returned["upstream"], returned["toxics"]) == (second.address, [])
    assert proxy_view(api.proxy("one")) == proxy_view(returned)
    echo_round_trip(connect(listen), b"to the second upstream")
    assert second.next_peer().data == b"to the second upstream"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        pytest.param(
            [
                {"name": "one", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
                {"listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
            ],
            "missing required field: name at proxy 2",
            id="second-without-name",
        ),
        pytest.param(
            [
                {"name": "one", "listen": "127.0.0.1:0"},
                {"name": "two", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
            ],
            "missing required field: upstream at proxy 1",
            id="first-without-upstream",
        ),
    ],
)
def test_populate_validates_every_entry_before_creating_any(
    api: Api, entries: list[dict[str, str]], message: str
) -> None:
    assert_error(api.request("POST", "/populate", json=entries), 400, message)
    assert api.proxies() == {}


def test_populate_stops_at_the_first_failure_and_reports_what_it_created(api: Api) -> None:
    with socket.create_server(("127.0.0.1", 0)) as occupied:
        busy = occupied.getsockname()[1]
        payload = [
            {"name": "one", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
            {"name": "two", "listen": f"127.0.0.1:{busy}", "upstream": "127.0.0.1:9"},
            {"name": "three", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
        ]
        response = api.request("POST", "/populate", json=payload)
        body = assert_error(response, 500, contains="address already in use")
    assert [p["name"] for p in body["proxies"]] == ["one"]
    assert sorted(api.proxies()) == ["one"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[", id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"name": "one", "upstream": "127.0.0.1:9"}', id="object-not-array"),
        pytest.param(b'[{"name": 1, "upstream": "127.0.0.1:9"}]', id="name-not-string"),
    ],
)
def test_populate_with_a_malformed_body_is_400(api: Api, body: bytes) -> None:
    assert_error(api.request("POST", "/populate", content=body), 400, prefix="bad request body")
    assert api.proxies() == {}


# /reset


def test_reset_reenables_every_proxy_and_removes_every_toxic(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    off = api.create_proxy("off", echo.address)["listen"]
    api.create_proxy("on", echo.address)
    api.add_toxic("off", "latency", stream="upstream")
    api.add_toxic("off", "timeout", stream="downstream")
    api.add_toxic("on", "noop")
    api.update_proxy("off", enabled=False)
    assert connection_refused(off)

    response = api.request("POST", "/reset")
    assert response.status_code == 204
    assert response.content == b""
    proxies = api.proxies()
    assert {name: (p["enabled"], p["toxics"]) for name, p in proxies.items()} == {
        "off": (True, []),
        "on": (True, []),
    }
    assert proxies["off"]["listen"] == off
    echo_round_trip(connect(off))


def test_reset_keeps_open_connections_and_stops_their_toxics(
    api: Api, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy("db", echo.address)["listen"]
    client = connect(listen)
    api.add_toxic("db", "latency", attributes={"latency": 300})
    assert echo_round_trip(client, b"before") >= 0.27, "the toxic did not apply before the reset"
    api.reset()
    assert echo_round_trip(client, b"after") < 0.15, "the toxic still applies after the reset"


# -config


def test_config_file_proxies_exist_and_listen_at_start(
    toxiproxy: RunningToxiproxy, tmp_path: Path, upstreams: Upstreams, connect: Connect
) -> None:
    echo = upstreams.echo()
    port = free_port()
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [
                {"name": "from_file", "listen": f"127.0.0.1:{port}", "upstream": echo.address},
                {
                    "name": "off",
                    "listen": "127.0.0.1:0",
                    "upstream": echo.address,
                    "enabled": False,
                },
            ]
        )
    )
    with running_toxiproxy(
        kind=toxiproxy.kind, config_file=config, log_file=tmp_path / "server.log"
    ) as server:
        other = Api(server.api_url)
        try:
            proxies = other.proxies()
        finally:
            other.close()
        assert {name: p["enabled"] for name, p in proxies.items()} == {
            "from_file": True,
            "off": False,
        }
        assert proxies["from_file"]["listen"] == f"127.0.0.1:{port}"
        echo_round_trip(connect(f"127.0.0.1:{port}"))
