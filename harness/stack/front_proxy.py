"""The front proxy: the harness's own Toxiproxy server between the load and a service it did not
start, so edge faults (down, latency, reset, HTTP aborts and delays) work against any HTTP
service with no set-up on the user's side.

One embedded Toxiproxy server per state directory, with one proxy, :data:`EDGE`, listening on a
free loopback port and forwarding to the service's ``host:port``. Its process is recorded in
``front-proxy.json`` (mode 0600) in the state directory, so the Locust master and ``harness
rollback`` (other processes) find its API, and a later run finds one a killed run left behind:
it is reused when it still forwards to the same service, else stopped. A run stops it once the
run is over (:meth:`FrontProxy.stop`); its toxics die with it, which is a clean revert.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.errors import BadInputError, InfrastructureError, StackError
from harness.private_files import open_private, write_private
from harness.proxy.launcher import free_port, start_toxiproxy
from harness.stack import processes
from harness.stack.base import Endpoint, ProcessState
from harness.stack.processes import ProcessRecord
from harness.stack.readiness import http_get_json
from harness.stack.topology import TOXIPROXY

__all__ = ["EDGE", "FrontProxy", "RunningFront"]

EDGE: Final = "edge"
"""The name of the front proxy's one proxy: the link faults at the edge act on."""

_RECORD: Final = "front-proxy.json"
_LOG: Final = "front-proxy.log"
_CONFIG: Final = "front-proxy-config.json"


@dataclass(frozen=True)
class RunningFront:
    """A front proxy that is up: its API, where load goes, and where it forwards to."""

    api: Endpoint
    listen: Endpoint
    upstream: Endpoint
    pid: int
    started: float

    @property
    def api_url(self) -> str:
        return self.api.url()

    def record(self, log: Path) -> ProcessRecord:
        return ProcessRecord(
            name="front-proxy",
            role=TOXIPROXY,
            pid=self.pid,
            started=self.started,
            endpoint=self.api,
            log=log,
        )


class FrontProxy:
    """The front proxy of the state directory ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).absolute()

    @property
    def _record_file(self) -> Path:
        return self.state_dir / _RECORD

    def running(self) -> RunningFront | None:
        """The front proxy recorded here, if its process is alive; None otherwise."""
        front = self._read()
        if front is None:
            return None
        state = processes.state_of(front.record(self.state_dir / _LOG))
        return front if state is ProcessState.ALIVE else None

    def ensure(self, upstream: Endpoint) -> RunningFront:
        """A front proxy forwarding to ``upstream``: the one up, if it does, else a new one."""
        front = self.running()
        if front is not None and front.upstream == upstream and self._answers(front):
            return front
        self.stop()
        return self._start(upstream)

    def stop(self) -> None:
        """Stop the recorded front proxy, if any (idempotent)."""
        front = self._read()
        if front is not None:
            processes.stop([front.record(self.state_dir / _LOG)])
        self._record_file.unlink(missing_ok=True)

    # --- internals ---------------------------------------------------------------------------

    def _start(self, upstream: Endpoint) -> RunningFront:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        host = "127.0.0.1"
        listen = Endpoint(host, free_port(host))
        config = self.state_dir / _CONFIG
        proxy = {"name": EDGE, "listen": listen.address, "upstream": upstream.address}
        config.write_text(json.dumps([{**proxy, "enabled": True}]) + "\n", encoding="utf-8")
        running, process = start_toxiproxy(
            kind="embedded", host=host, config_file=config, log_file=self.state_dir / _LOG
        )
        # The process outlives this call (the master and rollback use it): let go of the Popen.
        record = processes.adopt(
            process,
            "front-proxy",
            TOXIPROXY,
            endpoint=Endpoint(host, running.port),
            log=self.state_dir / _LOG,
        )
        front = RunningFront(
            api=Endpoint(host, running.port),
            listen=listen,
            upstream=upstream,
            pid=record.pid,
            started=record.started,
        )
        if not self._answers(front):
            processes.stop([record])
            raise StackError(
                f"the front proxy did not create its proxy {EDGE!r} on {listen.address}; "
                f"see {self.state_dir / _LOG}"
            )
        self._write(front)
        return front

    def _answers(self, front: RunningFront) -> bool:
        try:
            listed = http_get_json(front.api.url("/proxies"), timeout_s=5.0)
        except InfrastructureError:
            return False
        return isinstance(listed, dict) and EDGE in listed

    def _write(self, front: RunningFront) -> None:
        data = {
            "api": front.api.address,
            "listen": front.listen.address,
            "upstream": front.upstream.address,
            "pid": front.pid,
            "started": front.started,
        }
        try:
            write_private(self._record_file, json.dumps(data).encode())
        except OSError as exc:
            raise StackError(f"{self._record_file}: cannot write it: {exc.strerror}") from None

    def _read(self) -> RunningFront | None:
        try:
            fd = open_private(self._record_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BadInputError(f"{self._record_file}: cannot read it: {exc.strerror}") from None
        with os.fdopen(fd, encoding="utf-8") as found:
            try:
                data: Any = json.loads(found.read(4096))
                return RunningFront(
                    api=_endpoint(data["api"]),
                    listen=_endpoint(data["listen"]),
                    upstream=_endpoint(data["upstream"]),
                    pid=int(data["pid"]),
                    started=float(data["started"]),
                )
            except (ValueError, KeyError, TypeError):
                raise BadInputError(
                    f"{self._record_file}: not a front proxy record; remove it if no front "
                    "proxy runs"
                ) from None


def _endpoint(address: object) -> Endpoint:
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(address)
    host, _, port = address.rpartition(":")
    return Endpoint(host, int(port))
