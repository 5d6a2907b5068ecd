"""A Locust worker with the harness recorder: ``python -m harness.load.worker --master-host H``.

Started by ``harness run`` for its local workers (with ``--locustfile``), or by ``harness worker``
on another machine (without: it asks the master for the locustfile, Locust's own protocol). Every
request its users make is recorded and shipped to the master (:class:`~harness.load.plugin.
WorkerPlugin`); it runs until the master tells it to quit.

SIGINT / SIGTERM stop its users, send the final shipment, tell the master it is leaving and exit;
so does the death of the `harness run` that started it (:mod:`harness.load.lifeline`).
Exit codes: 0 done · 2 bad locustfile · 3 the master cannot be reached.
"""

from __future__ import annotations

import locust  # isort: skip  # first: it monkey-patches the standard library

import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust.argument_parser import download_locustfile_from_master
from locust.env import Environment
from locust.runners import WorkerRunner

from harness.errors import BadInputError, HarnessError
from harness.exit_codes import ExitCode
from harness.load.entry import configure_logging, load_user_classes
from harness.load.launch import WorkerArgs
from harness.load.lifeline import watch_parent
from harness.load.otel import enable_otel
from harness.load.plugin import WorkerPlugin
from harness.safety import guard_sockets, host_of, run_policy

__all__ = ["ORPHAN_GRACE_S", "main"]

# After the harness died: the time the worker has to stop its users and say goodbye.
ORPHAN_GRACE_S = 15.0


def main(argv: Sequence[str] | None = None) -> int:
    args = WorkerArgs.parse(argv)
    configure_logging("worker")
    target = _TargetHost()
    with tempfile.TemporaryDirectory(prefix="harness-worker-") as scratch:
        try:
            # Before the locustfile runs: connections go to loopback, $HARNESS_ALLOW_TARGETS,
            # and the host the master sends with the load (harness.safety).
            guard_sockets(run_policy(()), extra_hosts=target.hosts)
            locustfile = args.locustfile or _fetch_locustfile(args, Path(scratch))
            user_classes = load_user_classes(locustfile)
            if args.otel:  # the requests are made here: Locust's instrumentation goes here
                enable_otel(str(locustfile))
        except HarnessError as exc:
            print(f"harness worker: {exc}", file=sys.stderr)
            return exc.exit_code
        return _work(args, user_classes, target)


class _TargetHost:
    """The host the master runs the load against, once its spawn message has said it."""

    def __init__(self) -> None:
        self.environment: Environment | None = None

    def hosts(self) -> tuple[str, ...]:
        host = self.environment.host if self.environment is not None else None
        return (host_of(host),) if host else ()


def _work(args: WorkerArgs, user_classes: list[type[locust.User]], target: _TargetHost) -> int:
    environment = Environment(user_classes=user_classes, events=locust.events)
    target.environment = environment
    plugin = WorkerPlugin(environment)
    plugin.install()
    try:
        runner = environment.create_worker_runner(args.master_host, args.master_port)
    except (OSError, ConnectionError) as exc:
        print(
            f"harness worker: cannot reach the master at {args.master_host}:{args.master_port}: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        plugin.close()
        return ExitCode.INFRASTRUCTURE
    events: Any = environment.events  # Locust's EventHook methods are unannotated
    events.init.fire(environment=environment, runner=runner, web_ui=None)

    def leave(signum: int) -> None:
        gevent.spawn(_leave, environment, runner)

    gevent.signal_handler(signal.SIGINT, leave, signal.SIGINT)
    gevent.signal_handler(signal.SIGTERM, leave, signal.SIGTERM)
    # SIGHUP: the harness that started this worker is gone (harness.load.lifeline); leave the
    # same way, the final shipment included, for a master that may still be recording.
    gevent.signal_handler(signal.SIGHUP, leave, signal.SIGHUP)
    watch_parent(grace_s=ORPHAN_GRACE_S, exit_code=ExitCode.INTERRUPTED)
    try:
        runner.greenlet.join()
    finally:
        plugin.close()
    return 0


def _leave(environment: Environment, runner: WorkerRunner) -> None:
    # stop() ends the users and fires test_stop: the final shipment goes out before "quit".
    runner.stop()
    events: Any = environment.events
    events.quitting.fire(environment=environment, reverse=True)  # tells the master
    runner.quit()


def _fetch_locustfile(args: WorkerArgs, scratch: Path) -> Path:
    try:
        files: Any = download_locustfile_from_master(args.master_host, args.master_port)
    except SystemExit:
        raise BadInputError(
            f"the master at {args.master_host}:{args.master_port} sent no locustfile"
        ) from None
    for item in files:
        if isinstance(item, dict) and "filename" in item and "contents" in item:
            path = scratch / Path(str(item["filename"])).name
            path.write_text(str(item["contents"]), encoding="utf-8")
            return path
    raise BadInputError(
        f"the master at {args.master_host}:{args.master_port} sent no locustfile a worker can use"
    )


if __name__ == "__main__":
    sys.exit(main())
