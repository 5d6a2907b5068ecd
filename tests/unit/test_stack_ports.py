"""StackPorts: every port accounted for, and a taken one named with the piece that wanted it."""

from __future__ import annotations

import socket

import pytest

from harness.errors import BadInputError, StackError
from harness.stack.ports import StackPorts, check_ports_free

pytestmark = pytest.mark.unit


def test_a_port_given_to_two_pieces_is_bad_input_naming_both() -> None:
    with pytest.raises(BadInputError, match=r"port 9000 is given to both .*caddy entry"):
        StackPorts(entry=9000, apps=(9000, 18002, 18003))


def test_each_instance_needs_its_own_proxy() -> None:
    with pytest.raises(BadInputError, match="must be as many"):
        StackPorts(apps=(18001, 18002), lb_proxies=(18101,))


def test_a_port_outside_the_tcp_range_is_bad_input() -> None:
    with pytest.raises(BadInputError, match=r"port 70000 .*toxiproxy API"):
        StackPorts(toxiproxy_api=70000)


def test_every_port_is_wanted_by_a_named_piece_in_start_order() -> None:
    wanted = {name: port for port, name in StackPorts().wanted()}
    assert wanted == {
        "postgres": 15432,
        "toxiproxy API": 8474,
        "toxiproxy proxy app-db": 15433,
        "toxiproxy proxy lb-app-1": 18101,
        "toxiproxy proxy lb-app-2": 18102,
        "toxiproxy proxy lb-app-3": 18103,
        "shop instance app-1": 18001,
        "shop instance app-2": 18002,
        "shop instance app-3": 18003,
        "caddy entry": 8080,
    }


def test_caddy_admin_api_is_never_given_a_tcp_port() -> None:
    assert StackPorts().caddy_admin == 0
    with pytest.raises(BadInputError, match=r"^--caddy-admin-port 2019: only 0 .*admin\.sock"):
        StackPorts(caddy_admin=2019)


def test_free_ports_pass_the_check() -> None:
    ports = StackPorts.free(instances=2)
    assert (len(ports.apps), len(ports.lb_proxies), ports.caddy_admin) == (2, 2, 0)
    assert len({port for port, _ in ports.wanted()}) == 8
    check_ports_free(ports)


def test_a_taken_port_is_named_with_the_piece_that_wanted_it() -> None:
    ports = StackPorts.free()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.apps[1]))
        taken.listen()
        with pytest.raises(StackError) as caught:
            check_ports_free(ports)
    message = str(caught.value)
    assert f"port {ports.apps[1]} (--app-ports) is taken on 127.0.0.1" in message
    assert "shop instance app-2" in message
