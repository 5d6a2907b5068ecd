"""The system under test: the ``Stack`` protocol and its backends.

One module per backend: ``local`` (processes on 127.0.0.1), ``compose`` (a Docker Compose
project), ``external`` (a service the harness did not start). :mod:`harness.stack.registry` maps
a scenario's ``stack.kind`` to its backend and reads stack references back; it is imported by
name, not from here, since the compose backend brings in the Docker SDK. Everything else in this
package is private to the backends.
"""

from harness.stack.base import (
    Endpoint,
    Instance,
    ProcessState,
    ProcessStatus,
    Proxy,
    Service,
    Stack,
    StackInfo,
    StackStatus,
)
from harness.stack.config import LocalStackConfig
from harness.stack.local import LocalStack
from harness.stack.ports import StackPorts

__all__ = [
    "Endpoint",
    "Instance",
    "LocalStack",
    "LocalStackConfig",
    "ProcessState",
    "ProcessStatus",
    "Proxy",
    "Service",
    "Stack",
    "StackInfo",
    "StackPorts",
    "StackStatus",
]
