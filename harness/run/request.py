"""What a run is asked, and what it answers: the flags of ``harness run`` that are not the
scenario's (:class:`RunRequest`), the flags that rewrite the scenario (:class:`ScenarioOverrides`,
applied by :func:`harness.run.preflight.resolve_scenario` before the pipeline sees the model),
and how the run ended (:class:`RunOutcome`).

Pure data, cheap to import: the CLI, the library for Python callers and the capacity search all
build these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.record import RunDir, RunStatus
from harness.scenario import StackKind
from harness.stack.state import DEFAULT_STATE_DIR

__all__ = ["RunOutcome", "RunRequest", "ScenarioOverrides"]


@dataclass(frozen=True)
class ScenarioOverrides:
    """Command-line flags that change the scenario itself; the result is validated again."""

    workers: int | None = None
    stack: StackKind | None = None
    # Hosts besides loopback that load and faults may reach (--allow-target), added to the
    # scenario's allow_targets (harness.safety), so the run directory records them too.
    allow_targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRequest:
    """How to run a scenario: where the run goes and how its processes are set up."""

    reports: Path = Path("reports")
    state_dir: Path = DEFAULT_STATE_DIR
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    worker_timeout_s: float = 60.0
    # The compose project (stack kind compose); empty: $HARNESS_RUN_PROJECT, else the
    # scenario's stack.project, else "harness".
    compose_project: str = ""
    # The compose file; None: $HARNESS_RUN_COMPOSE_FILE, else the scenario's, else the sample's.
    compose_file: Path | None = None
    # A game day (`harness gameday`, with harness.gameday's extension): the master serves
    # Locust's web UI on this address and port, and faults without `at` may be injected by
    # hand. Empty: a run.
    web_host: str = ""
    web_port: int = 8089
    # Modules the Locust master imports to attach to the run's hooks (harness.run.hooks), such
    # as a game day's web UI or a capacity search's early stop.
    extensions: tuple[str, ...] = ()
    # Where the scenario came from (its file), for the messages that name it; empty: its name.
    source: str = ""
    # The stack's ports the command line gave (--entry-port, ...), keyed by StackPorts field:
    # a local or compose stack is started (or brought) on these; an external one refuses them.
    ports: tuple[tuple[str, Any], ...] = ()
    # `--baseline`: also compare the run with this run (a directory, latest, latest-pass or a git
    # ref) in the history of `reports` (harness.report.baseline); None: the SLOs alone.
    baseline: str | None = None
    # The live metrics endpoint (harness.run.live_metrics) on this address; None: none, 0: any
    # free port (the URL is printed). Linger: at the end, how long it waits for a scrape of the
    # final values (only when it was scraped during the run).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    metrics_linger_s: float = 15.0
    # The port is a default, not the user's choice: when taken, any free one (and it is said).
    metrics_fallback: bool = False
    # `--otel`: Locust's own OpenTelemetry instrumentation in every Locust process.
    otel: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. ``report``: its report.html, None when none could be written."""

    run_dir: RunDir
    status: RunStatus
    exit_code: int
    detail: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None
