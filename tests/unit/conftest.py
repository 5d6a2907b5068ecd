"""The unit tier's rule: every test under tests/unit is ``unit`` unless it is marked for another
tier.

A module of one piece's tests may hold a few that start real processes (a Locust child, a
server, the ``harness`` command itself) or wait on a timeout: those are marked ``integration``
where they stand, beside the tests of the same piece, and leave ``-m unit`` (which must stay
fast: every change runs it) while CI, which runs every tier, still runs them. A module-wide
``pytestmark = pytest.mark.unit`` would keep them in the unit tier (a mark cannot be taken off
again), so such a module has none and this hook marks the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import fake_plots

_HERE = Path(__file__).parent
_OTHER_TIERS = ("integration", "docker", "conformance")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(_HERE):
            continue  # the hook sees the whole session's items
        if item.get_closest_marker("unit") is None and not any(
            item.get_closest_marker(tier) for tier in _OTHER_TIERS
        ):
            item.add_marker(pytest.mark.unit)


# --- reports without drawing their plots ---------------------------------------------------------


@pytest.fixture
def plots_not_drawn() -> Iterator[None]:
    """Reports written in the test embed a 1-pixel PNG per plot instead of drawing it (see
    tests/unit/fake_plots.py). For modules whose subject is not the plots."""
    with fake_plots.plots_not_drawn():
        yield
