"""Is a piece of the stack ready? Small probes, and a wait that fails fast when the piece dies.

Probes use the standard library on purpose: the harness core does not depend on an HTTP client,
and a probe is one short GET.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from harness.errors import StackError
from harness.stack.base import Endpoint, ProcessState
from harness.stack.processes import ProcessRecord, log_tail, state_of

PROBE_TIMEOUT_S = 1.0
POLL_INTERVAL_S = 0.05

# The stack is on loopback: an HTTP(S)_PROXY from the environment must never see these probes.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> int:
    """The status of a GET on ``url``; 0 when nothing answered in time."""
    return _status(urllib.request.Request(url), timeout_s)  # noqa: S310 - our own http:// URLs


def http_get_json(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> object:
    """The decoded JSON body of a 200 answer to a GET; None for anything else."""
    try:
        with _OPENER.open(url, timeout=timeout_s) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def http_post_json(
    url: str, body: object, *, token: str = "", timeout_s: float = PROBE_TIMEOUT_S
) -> int:
    """POST ``body`` as JSON (with a bearer ``token`` if given); the status, 0 if no answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - as above
    return _status(request, timeout_s)


def _status(request: urllib.request.Request, timeout_s: float) -> int:
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def http_ok(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    return http_status(url, timeout_s) == 200


def tcp_open(endpoint: Endpoint, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_ready(
    record: ProcessRecord,
    probe: Callable[[], bool],
    *,
    what: str,
    timeout_s: float,
) -> None:
    """Poll ``probe`` until it passes. Raise ``StackError`` with the log's tail if the process
    dies first or the time runs out; the caller's teardown stops it."""
    deadline = time.monotonic() + timeout_s
    while True:
        if probe():
            return
        if state_of(record) is ProcessState.DEAD:
            raise StackError(
                f"{record.name} exited before it was ready ({what}); last lines of {record.log}:\n"
                f"{log_tail(record.log)}"
            )
        if time.monotonic() >= deadline:
            raise StackError(
                f"{record.name} was not ready after {timeout_s:.0f}s ({what}); "
                f"last lines of {record.log}:\n{log_tail(record.log)}"
            )
        time.sleep(POLL_INTERVAL_S)
