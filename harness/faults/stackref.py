"""The stack as a fault sees it: a reference another process can rebuild it from, and the few
questions an idempotent revert asks it ("is this instance paused?", "is the stack gone?").

Every backend writes its own reference (:meth:`~harness.stack.base.Stack.to_ref`) and the stack
registry (:mod:`harness.stack.registry`) reads it back: a local stack from its state directory,
a compose stack from its project name and compose file (everything else it reads back from
Docker), an external stack from its URLs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import BadInputError, StackError
from harness.stack import ProcessState, ProcessStatus, Stack
from harness.stack.local import LocalStack
from harness.stack.registry import stack_from_ref as registry_stack_from_ref
from harness.stack.state import DEFAULT_STATE_DIR
from harness.stack.topology import APP, TOXIPROXY

__all__ = [
    "RefusedStackRef",
    "instance_state",
    "require_stack",
    "stack_from_ref",
    "stack_is_gone",
    "stack_ref",
    "toxiproxy_is_gone",
]


def stack_ref(stack: Stack | None) -> dict[str, Any]:
    """A JSON-ready reference to ``stack`` for a fault record (the stack's own
    :meth:`~harness.stack.base.Stack.to_ref`)."""
    return stack.to_ref() if stack is not None else {"kind": "none"}


class RefusedStackRef(BadInputError):
    """A reference a journal may not act on: never followed, whatever the fault needs."""


def _same_dir(named: str, journal_dir: Path) -> bool:
    try:
        return os.path.samefile(named, journal_dir)
    except (OSError, ValueError):  # absent, unreadable, or a NUL in the name
        return False


def _bound_to_journal(ref: object, journal_dir: Path) -> object:
    """``ref`` as a journal in ``journal_dir`` may follow it. A local stack reference must name
    that very directory, and is replaced by it: the processes it stops and the commands it starts
    again are read from the journal's own state directory's ``stack.json`` (owner-only, see
    :mod:`harness.private_files`), never from a file the record points at. Compose projects and
    external stacks pass (their hosts go through the target policy: harness.faults.targets)."""
    if not isinstance(ref, Mapping) or ref.get("kind") != LocalStack.kind:
        return ref
    named = ref.get("state_dir")
    if not isinstance(named, str) or not _same_dir(named, journal_dir):
        shown = named if isinstance(named, str) else type(named).__name__
        raise RefusedStackRef(
            f"refused: the record names the local stack in {shown[:200]!r}, not the one of this "
            f"journal's state directory {str(journal_dir)!r}; a rollback acts only on what its "
            "own state directory owns"
        )
    return {"kind": LocalStack.kind, "state_dir": str(journal_dir)}


def stack_from_ref(ref: object, *, required: bool, journal_dir: Path | None = None) -> Stack | None:
    """The stack a reference names, found through the stack registry (never by calling a
    backend directly). ``required``: a fault that cannot act without it (an instance fault)
    gets a ``BadInputError`` instead of None for a reference it cannot follow.

    ``journal_dir``: the state directory of the journal the reference was read from (what
    ``harness rollback`` passes); a reference that stack does not own is a
    :class:`RefusedStackRef`, required or not. None: the reference comes from this process's own
    stack (a fault rebuilt in the process that built it), and is followed as it is."""
    if journal_dir is not None:
        ref = _bound_to_journal(ref, Path(journal_dir).absolute())
    try:
        return registry_stack_from_ref(ref, state_dir=journal_dir or DEFAULT_STATE_DIR)
    except BadInputError as exc:
        if required:
            raise BadInputError(
                f"cannot find the stack again from the reference {_short(ref)}: only a local "
                "stack (its state directory), a compose project or an external stack can be "
                f"found from another process ({exc})"
            ) from None
        return None


def require_stack(record: Mapping[str, Any], stack: Stack | None) -> Stack:
    """The stack a fault that cannot act without one was rebuilt with (see
    :func:`harness.faults.factory.fault_from_record`, which resolves the record's reference)."""
    if stack is None:
        raise BadInputError(
            f"fault record {str(record.get('name'))[:200]!r}: cannot find the stack again from "
            f"the reference {_short(record.get('stack'))}: only a local stack (its state "
            "directory), a compose project or an external stack can be found from another process"
        )
    return stack


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}..."


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
