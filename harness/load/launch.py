"""How a run starts its Locust processes, and what they leave for it in the run directory.

Pure Python, imported on both sides: by the run pipeline (:mod:`harness.run.pipeline`, the
CLI's process, no gevent) to build the command lines, and by the master
(:mod:`harness.run.master`) and the workers (:mod:`harness.load.worker`), inside Locust, to
parse them. One definition of each flag keeps the two sides in step.

Files in the run directory besides the store::

    scenario.json   the resolved scenario (Scenario.to_dict()), written by the pipeline before the
                    master starts; the master reads it and copies it into the store's meta
    master.json     {"pid", "host", "port"}: written by the master once it listens for workers
                    (port null for a single-process run), so the pipeline can point workers at it
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEFAULT_MASTER_PORT",
    "MASTER_FILE",
    "MASTER_MODULE",
    "SCENARIO_FILE",
    "WORKER_MODULE",
    "MasterArgs",
    "WorkerArgs",
    "read_master_file",
    "write_master_file",
]

SCENARIO_FILE: Final = "scenario.json"
MASTER_FILE: Final = "master.json"
DEFAULT_MASTER_PORT: Final = 5557  # Locust's own default, for workers on other machines
# The master's process: the run layer's, which wires the scenario, the stack, the faults and the
# guards into this layer's Locust glue (harness.load.master).
MASTER_MODULE: Final = "harness.run.master"
WORKER_MODULE: Final = "harness.load.worker"


@dataclass(frozen=True)
class MasterArgs:
    """The master's command line: ``python -m harness.run.master ...``."""

    run_dir: Path
    host: str
    # JSON of the stack's reference (Stack.to_ref()): the master finds the stack again from it
    # through the stack registry.
    stack_ref: str = '{"kind": "local", "state_dir": ".harness"}'
    state_dir: Path | None = None
    toxiproxy_url: str = ""
    workers: int = 0
    bind_host: str = "127.0.0.1"
    bind_port: int = 0
    worker_timeout_s: float = 60.0
    # A game day (`harness gameday`): Locust's web UI with the chaos tab on this address; empty
    # for `harness run`, which has no web UI.
    web_host: str = ""
    web_port: int = 8089
    # Modules the master imports to attach to the run's hooks (harness.run.hooks), in order.
    extensions: tuple[str, ...] = ()
    # The live metrics endpoint (harness.run.live_metrics): -1 none, 0 any free port. Linger:
    # how long it waits, at the end, for a scrape of the final values.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = -1
    metrics_linger_s: float = 0.0
    # The port is only a default (a game day's): when it is taken, any free one, said.
    metrics_fallback: bool = False
    # Locust's own OpenTelemetry instrumentation (harness.load.otel), in every Locust process.
    otel: bool = False

    def argv(self) -> list[str]:
        out = [
            sys.executable,
            "-m",
            MASTER_MODULE,
            "--run-dir",
            str(self.run_dir),
            "--host",
            self.host,
            "--stack-ref",
            self.stack_ref,
            "--workers",
            str(self.workers),
            "--bind-host",
            self.bind_host,
            "--bind-port",
            str(self.bind_port),
            "--worker-timeout",
            repr(self.worker_timeout_s),
        ]
        if self.state_dir is not None:
            out += ["--state-dir", str(self.state_dir)]
        if self.toxiproxy_url:
            out += ["--toxiproxy-url", self.toxiproxy_url]
        if self.web_host:
            out += ["--web-host", self.web_host, "--web-port", str(self.web_port)]
        for extension in self.extensions:
            out += ["--extension", extension]
        if self.metrics_port >= 0:
            out += ["--metrics-host", self.metrics_host, "--metrics-port", str(self.metrics_port)]
            out += ["--metrics-linger", repr(self.metrics_linger_s)]
            if self.metrics_fallback:
                out.append("--metrics-fallback")
        if self.otel:
            out.append("--otel")
        return out

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None) -> MasterArgs:
        parser = argparse.ArgumentParser(
            prog=f"python -m {MASTER_MODULE}",
            description="The Locust master of one harness run (started by `harness run`).",
        )
        parser.add_argument("--run-dir", type=Path, required=True)
        parser.add_argument("--host", required=True, help="the entry URL load is sent to")
        parser.add_argument("--state-dir", type=Path, default=None)
        parser.add_argument("--toxiproxy-url", default="")
        parser.add_argument("--stack-ref", required=True, help="JSON: the stack's reference")
        parser.add_argument("--workers", type=int, default=0, help="0: no workers, run locally")
        parser.add_argument("--bind-host", default="127.0.0.1")
        parser.add_argument("--bind-port", type=int, default=0, help="0: any free port")
        parser.add_argument("--worker-timeout", type=float, default=60.0)
        parser.add_argument("--web-host", default="", help="a game day's web UI; empty: none")
        parser.add_argument("--web-port", type=int, default=8089)
        parser.add_argument(
            "--extension",
            action="append",
            default=[],
            help="a module to attach to the run's hooks (repeatable)",
        )
        parser.add_argument("--metrics-host", default="127.0.0.1")
        parser.add_argument("--metrics-port", type=int, default=-1, help="-1: no endpoint")
        parser.add_argument("--metrics-linger", type=float, default=0.0)
        parser.add_argument("--metrics-fallback", action="store_true")
        parser.add_argument("--otel", action="store_true", help="Locust's OpenTelemetry")
        ns = parser.parse_args(argv)
        return cls(
            run_dir=ns.run_dir,
            host=ns.host,
            state_dir=ns.state_dir,
            toxiproxy_url=ns.toxiproxy_url,
            stack_ref=ns.stack_ref,
            workers=ns.workers,
            bind_host=ns.bind_host,
            bind_port=ns.bind_port,
            worker_timeout_s=ns.worker_timeout,
            web_host=ns.web_host,
            web_port=ns.web_port,
            extensions=tuple(ns.extension),
            metrics_host=ns.metrics_host,
            metrics_port=ns.metrics_port,
            metrics_linger_s=ns.metrics_linger,
            metrics_fallback=ns.metrics_fallback,
            otel=ns.otel,
        )


@dataclass(frozen=True)
class WorkerArgs:
    """A worker's command line: ``python -m harness.load.worker ...``. Without a locustfile the
    worker asks the master for its copy (a worker on another machine)."""

    master_host: str
    master_port: int = DEFAULT_MASTER_PORT
    locustfile: Path | None = None
    otel: bool = False

    def argv(self) -> list[str]:
        out = [
            sys.executable,
            "-m",
            WORKER_MODULE,
            "--master-host",
            self.master_host,
            "--master-port",
            str(self.master_port),
        ]
        if self.locustfile is not None:
            out += ["--locustfile", str(self.locustfile)]
        if self.otel:
            out.append("--otel")
        return out

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None) -> WorkerArgs:
        parser = argparse.ArgumentParser(
            prog=f"python -m {WORKER_MODULE}",
            description="A Locust worker with the harness recorder (see `harness worker`).",
        )
        parser.add_argument("--master-host", required=True)
        parser.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT)
        parser.add_argument("--locustfile", type=Path, default=None)
        parser.add_argument("--otel", action="store_true", help="Locust's OpenTelemetry")
        ns = parser.parse_args(argv)
        return cls(ns.master_host, ns.master_port, ns.locustfile, ns.otel)


def write_master_file(run_dir: Path, *, host: str, port: int | None) -> None:
    """Say where the master listens; atomically, so a reader never sees half of it."""
    path = run_dir / MASTER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port}))
    os.replace(tmp, path)


def read_master_file(run_dir: Path) -> dict[str, Any] | None:
    """What the master wrote, or None before it has."""
    try:
        data = json.loads((run_dir / MASTER_FILE).read_text())
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None
