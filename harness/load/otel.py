"""``--otel``: Locust's own OpenTelemetry instrumentation, passed through to every Locust
process of a run (the master, and each worker, where the requests are made).

Locust (2.x) traces its requests and exports them, with a ``locust.client.duration`` histogram,
to the collector the standard ``OTEL_*`` variables name (``OTEL_EXPORTER_OTLP_ENDPOINT``, ...).
The harness adds nothing of its own: :func:`check_otel` runs in the CLI's process (no Locust
import: that would monkey-patch it with gevent) so a missing SDK is bad input before anything
starts; :func:`enable_otel` runs inside a Locust process, before its users exist.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from harness.errors import BadInputError

__all__ = ["check_otel", "enable_otel"]

_NEED = "--otel needs Locust's OpenTelemetry support: pip install 'locust[otel]'"


def check_otel() -> None:
    """BadInputError (one line) unless the installed Locust has ``--otel`` and the OpenTelemetry
    SDK it needs is installed."""
    locust = importlib.util.find_spec("locust")  # finds, does not import (no gevent here)
    origin = locust.origin if locust is not None else None
    if origin is None or not (Path(origin).parent / "opentelemetry.py").is_file():
        raise BadInputError(f"{_NEED} (this Locust has no OpenTelemetry support)")
    try:
        sdk = importlib.util.find_spec("opentelemetry.sdk")
    except ModuleNotFoundError:  # not even the opentelemetry namespace package
        sdk = None
    if sdk is None:
        raise BadInputError(f"{_NEED} (the OpenTelemetry SDK is not installed)")


def enable_otel(locustfile: str) -> None:
    """Locust's own setup, as ``locust --otel`` does it; a warning when it declined (no
    exporter configured: ``OTEL_*_EXPORTER=none``)."""
    # deferred: Locust (gevent), only ever called inside a Locust process
    from locust.opentelemetry import setup_opentelemetry

    if not setup_opentelemetry(locustfile, None):
        logging.getLogger("harness.load").warning("OpenTelemetry was not enabled (see above)")
