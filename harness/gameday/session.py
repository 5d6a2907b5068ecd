"""The game day inside the Locust master: Locust's web UI with the chaos tab, the live board fed
from the shipments, and ``gameday.json`` for the second terminal; all undone on the way out.

A run extension (:mod:`harness.run.hooks`): the master imports it by name when the run is a game
day (:mod:`harness.gameday.runner`), and :func:`attach` opens the web UI on ``master_ready``.
Imported only inside the master (it imports Locust's web UI, so gevent).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from flask import Response, jsonify, request
from locust.env import Environment

from harness.errors import InfrastructureError
from harness.faults import FaultTimeline, build_fault, with_target_policy
from harness.gameday.control import ControlFile, new_token
from harness.gameday.desk import CatalogueEntry, ChaosDesk, DeskTimeline, EmptyTimeline
from harness.gameday.live import LiveBoard
from harness.gameday.web import install_chaos_ui
from harness.load.plugin import MasterPlugin
from harness.record.buckets import Bucket, BucketFormatError
from harness.run.hooks import MasterHooks, MasterRun
from harness.safety import run_policy
from harness.stack.base import Endpoint
from harness.stack.readiness import tcp_open
from harness.verdict import parse_checks

__all__ = ["attach", "catalogue_of", "gameday_ui", "open_gameday"]


# How long Locust's web server may take to bind once started (a busy machine is slow to).
WEB_UI_START_S = 15.0


def attach(hooks: MasterHooks) -> None:
    """The run extension's entry: a game day opens when the master is ready."""
    hooks.master_ready.add_listener(open_gameday)


def open_gameday(run: MasterRun) -> None:
    """Locust's web UI with the chaos tab, until the run's cleanup closes (after its faults are
    reverted: the tab shows them going). Nothing without a web UI address (a plain run)."""
    args = run.args
    if not args.web_host:
        return
    desk_timeline: DeskTimeline = EmptyTimeline()
    entries: list[CatalogueEntry] = []
    if isinstance(run.timeline, FaultTimeline):
        builders, entries = catalogue_of(run.scenario, run.stack, run.info)
        run.timeline.set_catalogue(builders)
        desk_timeline = run.timeline
    run.cleanup.enter_context(
        gameday_ui(
            run.environment,
            run.master,
            scenario=run.scenario,
            timeline=desk_timeline,
            catalogue=entries,
            web_host=args.web_host,
            web_port=args.web_port,
            state_dir=args.state_dir,
            run_dir=run.run_dir.root,
        )
    )


@contextlib.contextmanager
def gameday_ui(
    environment: Environment,
    master: MasterPlugin,
    *,
    scenario: Any,
    timeline: DeskTimeline,
    catalogue: Sequence[CatalogueEntry],
    web_host: str,
    web_port: int,
    state_dir: Path | None,
    run_dir: Path,
) -> Iterator[ChaosDesk]:
    """Serve the web UI until the block ends; ``gameday.json`` exists exactly as long."""
    checks = parse_checks(scenario)
    board = LiveBoard(checks.slos, checks.guards)
    master.shipment_listeners.append(lambda buckets: _feed(board, buckets))

    def phase_now() -> tuple[float, str | None] | None:
        if master.t0 is None:
            return None
        elapsed = master.clock() - master.t0
        phase = master.plan.at(elapsed)
        return elapsed, phase.name if phase is not None else None

    desk = ChaosDesk(
        scenario=scenario.name,
        timeline=timeline,
        catalogue=catalogue,
        board=board,
        total_s=master.plan.total,
        phase_now=phase_now,
        breached=lambda: [breach.name for breach in master.aborted_by],
        ending=lambda: master.ending,
    )
    port = web_port or _free_port(web_host)
    # Locust's web UI parses sys.argv with Locust's own parser (for its "extra options") on
    # every page load: our master's flags are not Locust's, and would end the process.
    sys.argv = sys.argv[:1]
    try:
        web_ui: Any = environment.create_web_ui(host=web_host, port=port, delayed_start=True)
    except Exception as exc:  # Flask or Locust refusing the address: before anything started
        raise InfrastructureError(f"Locust web UI on {web_host}:{port}: {exc}") from None
    token = new_token()
    install_chaos_ui(web_ui, desk, token)
    app: Any = web_ui.app

    def stop_as_a_person() -> Response | None:
        # Locust's Stop button: end the game day the harness's way (faults reverted first, the
        # run recorded as interrupted, the report written), not by stopping the runner under it.
        if request.path == "/stop" and request.method == "POST":
            master.stop_by(f"the web UI's Stop button ({request.remote_addr})")
            response: Response = jsonify({"success": True, "message": "Test stopped"})
            return response
        return None

    app.before_request(stop_as_a_person)
    _check_port_free(web_host, port)
    web_ui.start()
    shown = "127.0.0.1" if web_host in ("0.0.0.0", "") else web_host
    # Locust's server binds in a greenlet of its own: the control file (what `harness inject`
    # and the printed link lead to) appears only once something answers there.
    _wait_until_listening(Endpoint(shown, port))
    base = f"http://{_url_host(shown)}:{port}"
    page = f"{base}/chaos?token={token}"
    control = ControlFile(
        pid=os.getpid(),
        url=f"http://127.0.0.1:{port}" if _loopback_reaches(web_host) else base,
        page=page,
        token=token,
        run_dir=str(run_dir),
        scenario=scenario.name,
    )
    if state_dir is not None:
        control.write(state_dir)
    _say(f"Locust web UI: {base}/")
    _say(f"chaos tab: {page}")
    try:
        yield desk
    finally:
        if state_dir is not None:
            ControlFile.remove(state_dir, pid=os.getpid())
        with contextlib.suppress(Exception):
            web_ui.stop()


def catalogue_of(
    scenario: Any, stack: Any, info: Any
) -> tuple[dict[str, Any], list[CatalogueEntry]]:
    """Every fault of the scenario, scheduled or not, as what builds a fresh one (the timeline's
    catalogue) and as the entries the chaos tab lists."""
    builders: dict[str, Any] = {}
    entries = []
    # The user's own endpoints (the http family) are held to the run's target policy.
    policy = run_policy(scenario.allow_targets, info.entry_url, info.toxiproxy_url)
    for spec in scenario.faults:
        builders[spec.name] = lambda spec=spec: with_target_policy(
            build_fault(spec, stack, info), policy
        )
        entries.append(
            CatalogueEntry(
                name=spec.name,
                description=builders[spec.name]().describe(),
                default_for_s=spec.for_,
                scheduled=spec.at is not None,
            )
        )
    return builders, entries


def _feed(board: LiveBoard, buckets: Sequence[Any]) -> None:
    for data in buckets:
        with contextlib.suppress(BucketFormatError):
            board.add(Bucket.from_dict(data))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host or "127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _check_port_free(host: str, port: int) -> None:
    """Locust's server binds in a greenlet and only logs a failure: say it before starting."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InfrastructureError(
                f"the game day's web UI cannot listen on {host}:{port} ({exc.strerror}); "
                "choose another with --web-port"
            ) from None


def _wait_until_listening(endpoint: Endpoint, timeout_s: float = WEB_UI_START_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not tcp_open(endpoint, timeout_s=0.5):
        if time.monotonic() > deadline:
            raise InfrastructureError(
                f"the game day's web UI did not listen on {endpoint.host}:{endpoint.port} "
                f"within {timeout_s:.0f}s"
            )
        gevent.sleep(0.05)  # the server's greenlet must get to run


def _loopback_reaches(host: str) -> bool:
    return host in ("127.0.0.1", "0.0.0.0", "", "localhost")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _say(line: str) -> None:
    print(f"harness: {line}", file=sys.stderr, flush=True)
