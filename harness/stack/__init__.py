"""The system under test: the ``Stack`` protocol and its backends.

Only the local-process backend exists so far (``LocalStack``); compose and external backends
implement the same protocol. Everything else in this package is private to the backends.
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
