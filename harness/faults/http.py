"""The two HTTP calls faults make to the shop: a GET on ``/healthz`` and a POST to its admin API.

The standard library on purpose: the core does not depend on an HTTP client, this is two short
requests, and both must behave the same in the gevent-patched Locust master and in the CLI.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Final

__all__ = ["get_status", "post_json", "wait_for_status"]

# The stack is on loopback (or on a host the scenario allowed): an HTTP(S)_PROXY from the
# environment must never see these calls, nor the admin token they carry.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_POLL_INTERVAL_S: Final = 0.1


def get_status(url: str, *, timeout_s: float) -> int:
    """The status of a GET on ``url``; 0 when nothing answered in time."""
    return _status(urllib.request.Request(url), timeout_s)  # noqa: S310 - http:// URLs of ours


def post_json(url: str, body: object, *, token: str, timeout_s: float) -> tuple[int, str]:
    """POST ``body`` as JSON with a bearer ``token``: (status, why) where ``why`` is the first
    part of the answer's body or the connection error; status 0 when nothing answered."""
    request = urllib.request.Request(  # noqa: S310 - as above
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read(300).decode("utf-8", "replace").strip()
        return int(exc.code), text or str(exc.reason)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason) or type(exc).__name__


def wait_for_status(url: str, status: int, *, timeout_s: float, probe_timeout_s: float) -> bool:
    """Poll a GET on ``url`` until it answers ``status``; False when the time ran out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if get_status(url, timeout_s=probe_timeout_s) == status:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL_S)


def _status(request: urllib.request.Request, timeout_s: float) -> int:
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0
