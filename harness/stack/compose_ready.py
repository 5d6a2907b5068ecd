"""A compose project made ready for a run once its containers are up: the topology's proxies
created in its Toxiproxy, the sample shop out of maintenance. No Docker here: only HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Final

from harness.errors import StackError, ToxiproxyError
from harness.proxy.client import ToxiproxyClient
from harness.stack.base import StackInfo
from harness.stack.compose_config import ProxySpec
from harness.stack.readiness import http_post_json, http_status

READY_TIMEOUT_S: Final = 60.0


def populate(api: str, proxies: tuple[ProxySpec, ...]) -> None:
    """Create ``proxies`` in the Toxiproxy at ``api`` (those that exist as asked are left alone,
    toxics and all), once its API answers."""
    client = ToxiproxyClient(api, timeout_s=5)
    specs = [asdict(p) | {"enabled": True} for p in proxies]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            client.populate(specs)
            return
        except ToxiproxyError as exc:
            # Not answering yet (just started) is worth waiting for; a refused spec is not.
            if exc.status or time.monotonic() >= deadline:
                raise StackError(f"creating the Toxiproxy proxies at {api}: {exc}") from exc
        time.sleep(0.2)


def leave_maintenance(info: StackInfo) -> None:
    """A started stack is out of maintenance, whatever a kept database says (the flag is
    shared: one instance is enough). Only for the sample shop: it has an admin token."""
    if not info.admin_token:
        return
    url = info.instances[0].endpoint.url("/admin/maintenance")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while http_post_json(url, {"enabled": False}, token=info.admin_token) != 200:
        if time.monotonic() >= deadline:
            raise StackError(f"turning maintenance off at {url} did not answer 200")
        time.sleep(0.2)


def wait_entry(url: str, log: Callable[[], str], probe_timeout_s: float = 0.5) -> None:
    """``url`` (through the entry) answers 200; else the entry's ``log`` says why not."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while http_status(url, probe_timeout_s) != 200:
        if time.monotonic() >= deadline:
            raise StackError(
                f"{url} did not answer 200 within {READY_TIMEOUT_S:.0f}s; its log:\n" + log()
            )
        time.sleep(0.1)
