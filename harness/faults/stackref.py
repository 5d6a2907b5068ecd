"""The stack as a fault sees it: a reference another process can rebuild it from, and the few
questions an idempotent revert asks it ("is this instance paused?", "is the stack gone?").

A local stack is rebuilt from its state directory, a compose stack from its project name and
compose file (everything else it reads back from Docker). Other backends get a reference that
says what they were; a record holding one can be reverted only by a caller that passes the stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.errors import BadInputError, StackError
from harness.stack import LocalStack, ProcessState, ProcessStatus, Stack
from harness.stack.topology import APP, TOXIPROXY

__all__ = ["instance_state", "stack_from_ref", "stack_is_gone", "stack_ref", "toxiproxy_is_gone"]

LOCAL = "local"
COMPOSE = "compose"


def stack_ref(stack: Stack | None) -> dict[str, str]:
    """A JSON-ready reference to ``stack`` for a fault record."""
    if isinstance(stack, LocalStack):
        return {"kind": LOCAL, "state_dir": str(stack.state_dir)}
    # Imported here: the Docker SDK is only needed where a compose stack is in play.
    from harness.stack.compose import ComposeStack

    if isinstance(stack, ComposeStack):
        return stack.to_ref()
    if stack is None:
        return {"kind": "none"}
    return {"kind": "unknown", "type": type(stack).__name__}


def stack_from_ref(ref: object, *, required: bool) -> Stack | None:
    """The stack a reference names. ``required``: a fault that cannot act without it (an
    instance fault) gets a ``BadInputError`` instead of None for a reference it cannot follow."""
    if isinstance(ref, Mapping) and ref.get("kind") == LOCAL:
        state_dir = ref.get("state_dir")
        if isinstance(state_dir, str) and state_dir:
            return LocalStack(Path(state_dir))
    if isinstance(ref, Mapping) and ref.get("kind") == COMPOSE:
        from harness.stack.compose import ComposeStack

        return ComposeStack.from_ref(ref)
    if required:
        raise BadInputError(
            f"cannot find the stack again from the reference {ref!r}: only a local stack (its "
            "state directory) or a compose project can be found from another process"
        )
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
