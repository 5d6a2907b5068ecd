"""How many examples a fuzz or property test of the unit tier draws: its full count in CI, a
quarter of it in an everyday run.

Every change runs the unit tier, where the fuzz tests at their full counts took a sixth of its
time. Where the examples are derandomized (the fuzz modules), the quarter is the same inputs every
run; the tests' explicit ``@example`` cases always run. The full count
runs under Hypothesis's ``ci`` profile, which Hypothesis loads by itself where the environment
says CI (``CI``, ``GITHUB_ACTIONS``, ...) and ``python -m pytest --hypothesis-profile=ci`` loads
anywhere.
"""

from __future__ import annotations

from hypothesis import settings

FULL_PROFILE = "ci"
EVERYDAY_SHARE = 4  # an everyday run draws 1/4 of the examples
EVERYDAY_FLOOR = 30  # and never fewer than this


def examples(full: int) -> int:
    """``full`` under the ``ci`` profile, else a quarter of it (at least 30)."""
    # Read when the module's FUZZ settings are built, at import: the profile is loaded by then
    # (Hypothesis's own CI detection on import, --hypothesis-profile at pytest_configure).
    if settings.get_current_profile_name() == FULL_PROFILE:
        return full
    return min(full, max(full // EVERYDAY_SHARE, EVERYDAY_FLOOR))
