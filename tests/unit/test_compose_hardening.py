"""The compose stack's pieces that need no Docker: the down command it prints, the database
password read back from the shop's environment, and a compose file with no fixed credentials."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from harness.stack.compose_config import (
    DB_PASSWORD_ENV,
    DEFAULT_COMPOSE_FILE,
    ComposeStackConfig,
    db_password_of,
    down_command,
)
from harness.stack.state import DEFAULT_STATE_DIR

pytestmark = pytest.mark.unit


def test_the_down_hint_names_the_project_its_compose_file_and_state_dir(tmp_path: Path) -> None:
    own = tmp_path / "my project" / "compose.yml"
    config = ComposeStackConfig(project="own-project", compose_file=own, state_dir=tmp_path / "s")
    words = shlex.split(down_command(config))
    assert words == [
        "harness", "down", "--stack", "compose", "--project", "own-project",
        "--compose-file", str(own), "--state-dir", str(tmp_path / "s"),
    ]  # fmt: skip


def test_the_down_hint_of_the_sample_project_needs_no_file_nor_state_dir() -> None:
    config = ComposeStackConfig(
        project="harness", compose_file=DEFAULT_COMPOSE_FILE, state_dir=DEFAULT_STATE_DIR
    )
    assert down_command(config) == "harness down --stack compose --project harness"


def test_the_database_password_is_read_from_the_shops_url() -> None:
    env = {"SHOP_DATABASE_URL": "postgresql://shop:0123abcd@toxiproxy:15433/shop"}
    assert db_password_of(env) == "0123abcd"
    assert db_password_of({}) == ""
    assert db_password_of({"SHOP_DATABASE_URL": "postgresql://[::1/x"}) == ""


def test_the_sample_compose_file_fixes_no_password_and_publishes_no_admin_port() -> None:
    text = DEFAULT_COMPOSE_FILE.read_text()
    data = yaml.safe_load(text)
    postgres = data["services"]["postgres"]["environment"]
    # The app role is not the superuser, and no password is written in the file.
    assert postgres["POSTGRES_USER"] == "postgres"
    assert "${HARNESS_DB_SUPERUSER_PASSWORD" in postgres["POSTGRES_PASSWORD"]
    assert f"${{{DB_PASSWORD_ENV}" in data["x-shop-env"]["SHOP_DATABASE_URL"]
    assert "shop:shop@" not in text
    published = [p for s in data["services"].values() for p in s.get("ports", [])]
    assert not any("2019" in str(p) for p in published)
    caddyfile = (DEFAULT_COMPOSE_FILE.parent / "config" / "Caddyfile").read_text()
    assert "admin off" in caddyfile
