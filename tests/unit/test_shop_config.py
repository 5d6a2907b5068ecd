"""The shop's configuration: SHOP_* variables parsed once, errors naming the variable."""

from __future__ import annotations

import pytest
from shopapp.config import ConfigError, load_settings

pytestmark = pytest.mark.unit

URL = "postgresql://shop:shop@127.0.0.1:5432/shop"


def test_defaults_match_the_documented_contract() -> None:
    settings = load_settings({"SHOP_DATABASE_URL": URL, "SHOP_INSTANCE": "app-1"})
    assert settings.database_url == URL
    assert settings.instance == "app-1"
    assert settings.max_inflight == 64
    assert settings.load_shedding is True
    assert settings.retry_after is True
    assert (
        settings.shed_retry_after_s,
        settings.db_retry_after_s,
        settings.maintenance_retry_after_s,
    ) == (1, 2, 30)
    assert settings.db_timeout_ms == 500
    assert settings.db_timeout_s == 0.5
    assert settings.breaker_failures == 5
    assert settings.breaker_cooldown_ms == 2000
    assert settings.maintenance_poll_ms == 250
    assert settings.db_pool_size == 10
    assert settings.admin_token is None


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "SHOP_DATABASE_URL": URL,
            "SHOP_INSTANCE": "app-9",
            "SHOP_MAX_INFLIGHT": "8",
            "SHOP_LOAD_SHEDDING": "off",
            "SHOP_RETRY_AFTER": "OFF",
            "SHOP_SHED_RETRY_AFTER_S": "3",
            "SHOP_DB_RETRY_AFTER_S": "4",
            "SHOP_MAINTENANCE_RETRY_AFTER_S": "60",
            "SHOP_DB_TIMEOUT_MS": "250",
            "SHOP_DB_POOL_SIZE": "4",
            "SHOP_BREAKER_FAILURES": "2",
            "SHOP_BREAKER_COOLDOWN_MS": "100",
            "SHOP_MAINTENANCE_POLL_MS": "50",
            "SHOP_ADMIN_TOKEN": "t0ken",
        }
    )
    assert settings.instance == "app-9"
    assert settings.max_inflight == 8
    assert settings.load_shedding is False
    assert settings.retry_after is False
    assert (
        settings.shed_retry_after_s,
        settings.db_retry_after_s,
        settings.maintenance_retry_after_s,
    ) == (3, 4, 60)
    assert settings.db_timeout_ms == 250
    assert settings.db_pool_size == 4
    assert settings.breaker_failures == 2
    assert settings.breaker_cooldown_s == 0.1
    assert settings.maintenance_poll_s == 0.05
    assert settings.admin_token == "t0ken"


def test_an_empty_variable_counts_as_unset() -> None:
    settings = load_settings(
        {"SHOP_DATABASE_URL": URL, "SHOP_MAX_INFLIGHT": "", "SHOP_ADMIN_TOKEN": " "}
    )
    assert settings.max_inflight == 64
    assert settings.admin_token is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SHOP_DATABASE_URL", "", "required"),
        ("SHOP_DATABASE_URL", "http://db", "postgresql://"),
        ("SHOP_MAX_INFLIGHT", "lots", "expected an integer, got 'lots'"),
        ("SHOP_MAX_INFLIGHT", "0", "from 1 to"),
        ("SHOP_LOAD_SHEDDING", "enabled", "expected on or off"),
        ("SHOP_RETRY_AFTER", "2", "expected on or off"),
        ("SHOP_SHED_RETRY_AFTER_S", "-1", "from 0 to"),
        ("SHOP_DB_RETRY_AFTER_S", "1.5", "expected an integer"),
        ("SHOP_MAINTENANCE_RETRY_AFTER_S", "x", "expected an integer"),
        ("SHOP_DB_TIMEOUT_MS", "0", "from 1 to"),
        ("SHOP_DB_POOL_SIZE", "0", "from 1 to"),
        ("SHOP_BREAKER_FAILURES", "0", "from 1 to"),
        ("SHOP_BREAKER_COOLDOWN_MS", "soon", "expected an integer"),
        ("SHOP_MAINTENANCE_POLL_MS", "1", "from 10 to"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, message: str) -> None:
    env = {"SHOP_DATABASE_URL": URL, variable: value}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert message in str(caught.value)
