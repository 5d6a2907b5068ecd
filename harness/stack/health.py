"""How each recorded process of the local stack is doing: its OS state and its health probe."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.stack import processes
from harness.stack.base import ProcessState, ProcessStatus, StackStatus
from harness.stack.processes import ProcessRecord
from harness.stack.readiness import http_status, tcp_open
from harness.stack.topology import APP, DATABASE, ENTRY, TOXIPROXY

PROBE_TIMEOUT_S = 0.5
# What "healthy" asks of each role over HTTP (the database is asked over TCP).
_HEALTH_PATHS = {TOXIPROXY: "/version", APP: "/readyz", ENTRY: "/readyz"}


def stack_status(location: Path, records: Sequence[ProcessRecord]) -> StackStatus:
    """Every record's status, probed in parallel so a slow probe does not add up."""
    with ThreadPoolExecutor(max_workers=max(1, len(records))) as pool:
        rows = tuple(pool.map(process_status, records))
    return StackStatus(location=location, processes=rows)


def process_status(record: ProcessRecord) -> ProcessStatus:
    state = processes.state_of(record)
    healthy, detail = False, state.value
    # A paused process would only make the probe wait for its timeout.
    if state is ProcessState.ALIVE:
        healthy, detail = _probe(record)
    return ProcessStatus(
        name=record.name,
        role=record.role,
        pid=record.pid,
        state=state,
        healthy=healthy,
        endpoint=record.endpoint,
        detail=detail,
    )


def _probe(record: ProcessRecord) -> tuple[bool, str]:
    if record.role == DATABASE:
        ok = tcp_open(record.endpoint, PROBE_TIMEOUT_S)
        return ok, "accepts connections" if ok else "refuses connections"
    path = _HEALTH_PATHS.get(record.role, "/")
    status = http_status(record.endpoint.url(path), PROBE_TIMEOUT_S)
    answer = f"GET {path}: {status or 'no answer'}"
    if record.role == ENTRY:
        # Caddy is healthy when it answers at all; whether instances are behind it shows in
        # their own rows (a 503 here while they are healthy is worth a look).
        return status != 0, answer
    return status == 200, answer
