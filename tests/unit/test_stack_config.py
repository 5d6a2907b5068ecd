"""LocalStackConfig: survives the state file, and knows when a running stack will do."""

from __future__ import annotations

import json

import pytest

from harness.errors import BadInputError
from harness.stack.config import LocalStackConfig, parse_env_pairs
from harness.stack.ports import StackPorts

pytestmark = pytest.mark.unit


def test_config_round_trips_through_json() -> None:
    config = LocalStackConfig(
        ports=StackPorts(entry=9080, apps=(19001, 19002), lb_proxies=(19101, 19102)),
        toxiproxy="real",
        admin_token="secret",
        app_env=(("SHOP_DB_TIMEOUT_MS", "300"), ("A", "1")),
    )
    assert LocalStackConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


def test_app_env_order_does_not_make_two_configs_differ() -> None:
    one = LocalStackConfig(app_env=(("A", "1"), ("B", "2")))
    other = LocalStackConfig(app_env=(("B", "2"), ("A", "1")))
    assert one == other


def test_a_made_up_token_is_not_a_requirement_on_the_running_stack() -> None:
    running = LocalStackConfig().with_token()
    assert running.admin_token
    assert LocalStackConfig().satisfied_by(running)


def test_a_running_stack_with_other_ports_or_token_does_not_satisfy() -> None:
    running = LocalStackConfig(admin_token="one")
    assert not LocalStackConfig(admin_token="two").satisfied_by(running)
    assert not LocalStackConfig(ports=StackPorts(entry=9999)).satisfied_by(running)
    assert not LocalStackConfig(app_env=(("X", "1"),)).satisfied_by(running)


def test_with_token_keeps_a_given_token() -> None:
    assert LocalStackConfig(admin_token="mine").with_token().admin_token == "mine"


def test_unknown_toxiproxy_kind_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="toxiproxy: expected one of auto, real, embedded"):
        LocalStackConfig(toxiproxy="docker")  # type: ignore[arg-type]


def test_env_pairs_parse_and_the_last_repeat_wins() -> None:
    assert parse_env_pairs(["A=1", "B=x=y", "A=2", "C="]) == (("A", "2"), ("B", "x=y"), ("C", ""))


@pytest.mark.parametrize("pair", ["NOEQUALS", "=value"])
def test_env_pair_without_a_key_is_bad_input(pair: str) -> None:
    with pytest.raises(BadInputError, match="expected KEY=VALUE"):
        parse_env_pairs([pair])
