"""Helpers shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn

import pytest

_TRUTHY = frozenset({"1", "true", "yes", "on"})


def require_or_skip(reason: str, env_var: str) -> NoReturn:
    """Skip because something a test needs is missing, unless ``env_var`` says it is required.

    Locally a missing Toxiproxy binary or Docker engine is a reason to skip; in CI, which sets
    ``HARNESS_REQUIRE_TOXIPROXY=1`` or ``HARNESS_REQUIRE_DOCKER=1``, the same absence must fail
    the run instead of letting a green build hide that nothing was tested.
    """
    if os.environ.get(env_var, "").strip().lower() in _TRUTHY:
        pytest.fail(f"{reason} (required because {env_var} is set)", pytrace=False)
    pytest.skip(f"{reason} (set {env_var}=1 to make this a failure)")


@pytest.fixture(name="require_or_skip", scope="session")
def require_or_skip_fixture() -> Callable[[str, str], NoReturn]:
    """:func:`require_or_skip` as a fixture, so tests in any directory can use it without
    importing this conftest (which pytest does not support reliably)."""
    return require_or_skip
