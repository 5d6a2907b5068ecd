"""The stack as a fault sees it: a reference another process can rebuild it from, and the few
questions an idempotent revert asks it ("is this instance paused?", "is the stack gone?").

Every backend writes its own reference (:meth:`~harness.stack.base.Stack.to_ref`) and the stack
registry (:mod:`harness.stack.registry`) reads it back: a local stack from its state directory,
a compose stack from its project name and compose file (everything else it reads back from
Docker), an external stack from its URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import BadInputError, StackError
from harness.stack import ProcessState, ProcessStatus, Stack
from harness.stack.registry import stack_from_ref as registry_stack_from_ref
from harness.stack.state import DEFAULT_STATE_DIR
from harness.stack.topology import APP, TOXIPROXY

__all__ = ["instance_state", "stack_from_ref", "stack_is_gone", "stack_ref", "toxiproxy_is_gone"]


def stack_ref(stack: Stack | None) -> dict[str, Any]:
    """A JSON-ready reference to ``stack`` for a fault record (the stack's own
    :meth:`~harness.stack.base.Stack.to_ref`)."""
    return stack.to_ref() if stack is not None else {"kind": "none"}


def stack_from_ref(
    ref: object, *, required: bool, state_dir: Path = DEFAULT_STATE_DIR
) -> Stack | None:
    """The stack a reference names, found through the stack registry (never by calling a
    backend directly). ``required``: a fault that cannot act without it (an instance fault)
    gets a ``BadInputError`` instead of None for a reference it cannot follow. ``state_dir``:
    the directory of the journal the reference was read from."""
    try:
        return registry_stack_from_ref(ref, state_dir=state_dir)
    except BadInputError as exc:
        if required:
            raise BadInputError(
                f"cannot find the stack again from the reference {ref!r}: only a local stack "
                "(its state directory), a compose project or an external stack can be found "
                f"from another process ({exc})"
            ) from None
        return None


def _processes(stack: Stack) -> tuple[ProcessStatus, ...]:
    return stack.status().processes


def stack_is_gone(stack: Stack | None) -> bool:
    """True when the stack says none of its processes exist (``harness down`` ran, or it was never
    up). False when it is up, and when there is no stack to ask."""
    return stack is not None and not _processes(stack)


def instance_state(stack: Stack, instance: str) -> ProcessState | None:
    """The instance's process state; None when the whole stack is gone (nothing to revert)."""
    processes = _processes(stack)
    if not processes:
        return None
    for process in processes:
        if process.name == instance and process.role == APP:
            return process.state
    raise StackError(f"the stack has no instance {instance!r} any more")


def toxiproxy_is_gone(stack: Stack | None) -> bool:
    """True when the stack says its Toxiproxy process is not running: its toxics and disabled
    proxies died with it (Toxiproxy keeps them in memory only). False when unsure."""
    if stack is None:
        return False
    processes = _processes(stack)
    if not processes:
        return True
    servers = [p for p in processes if p.role == TOXIPROXY]
    return bool(servers) and all(p.state is ProcessState.DEAD for p in servers)
