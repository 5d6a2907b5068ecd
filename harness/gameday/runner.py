"""``harness gameday``: a run of the pipeline with the game day attached to it.

The pipeline (:mod:`harness.run.pipeline`) runs it like any other; what makes it a game day is
the extension its Locust master loads (:mod:`harness.gameday.session`: the web UI, the chaos tab,
``gameday.json``), and the web UI's address, which also lets faults without ``at`` be injected
by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Final

from rich.console import Console

from harness.run.pipeline import run_file
from harness.run.request import RunOutcome, RunRequest, ScenarioOverrides

__all__ = ["GAMEDAY_EXTENSION", "run_gameday"]

# Imported by the Locust master only (it imports Flask and Locust's web UI).
GAMEDAY_EXTENSION: Final = "harness.gameday.session"


def run_gameday(
    path: Path,
    request: RunRequest,
    overrides: ScenarioOverrides | None = None,
    *,
    say: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Run the scenario file ``path`` as a game day: ``request.web_host`` and ``web_port`` say
    where its web UI listens (empty: none, and then it plays as a plain run would). Exit codes
    and errors as :func:`harness.run.pipeline.run`."""
    extensions = request.extensions
    if GAMEDAY_EXTENSION not in extensions:
        extensions = (*extensions, GAMEDAY_EXTENSION)
    return run_file(
        path, replace(request, extensions=extensions), overrides, say=say, console=console
    )
