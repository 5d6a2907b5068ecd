"""The sample compose stack hands every SHOP_* setting a scenario asks for to the shop.

A variable the compose file does not pass on is dropped without a word: the flash sale asked for
a 5 s maintenance Retry-After, the compose shop kept its default 30 s, and its clients slept into
the cool-down (the flaky demo of issue 14).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from shopapp.config import load_settings

pytestmark = pytest.mark.unit

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"
URL = "postgresql://shop:shop@127.0.0.1:5432/shop"
# Set per service or by the harness itself, not by a scenario's stack.env.
_NOT_FROM_SCENARIOS = {"SHOP_DATABASE_URL", "SHOP_INSTANCE", "SHOP_ADMIN_TOKEN"}


class _ReadLog(dict[str, str]):
    """A real environment mapping that remembers which names were looked up."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:  # the settings read names, never iterate
        raise AssertionError("load_settings iterated the environment")


def _shop_env() -> dict[str, str]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    env: dict[str, str] = data["x-shop-env"]
    return env


def test_every_setting_the_shop_reads_is_passed_on_by_the_compose_file() -> None:
    env = _ReadLog({"SHOP_DATABASE_URL": URL})
    load_settings(env)
    wanted = {name for name in env.read if name.startswith("SHOP_")} - _NOT_FROM_SCENARIOS
    assert "SHOP_MAINTENANCE_RETRY_AFTER_S" in wanted  # the one the flash sale needs
    passed = _shop_env()
    missing = sorted(wanted - passed.keys())
    assert not missing, f"compose/docker-compose.yml x-shop-env does not pass on {missing}"
    for name in wanted:
        # Interpolated from the variable of the same name, so stack.env reaches the shop.
        assert re.fullmatch(rf"\$\{{{name}(:-[^}}]*)?\}}", str(passed[name])), (name, passed[name])


def test_an_empty_variable_leaves_the_shop_default() -> None:
    # What `${SHOP_X:-}` gives the container when the scenario does not set SHOP_X.
    unset = load_settings({"SHOP_DATABASE_URL": URL})
    empty = load_settings(
        {
            "SHOP_DATABASE_URL": URL,
            **{name: "" for name in _shop_env() if name not in _NOT_FROM_SCENARIOS},
        }
    )
    assert empty == unset
    assert empty.maintenance_retry_after_s == 30
