"""From a stack kind to its backend: the one place that knows which backends exist.

A new backend is one module of this package (a class with the :class:`~harness.stack.base.Stack`
methods and the :class:`~harness.stack.base.StackBackend` constructors) and one line in
:data:`BACKENDS`. The scenario's ``stack.kind`` accepts exactly these kinds; every stack the
harness builds, from a scenario or from a reference read back from a fault journal, is built
here, never by calling a backend's constructor directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from harness.errors import BadInputError
from harness.stack.base import Stack, StackBackend, StackOptions, StackSection
from harness.stack.compose import ComposeStack
from harness.stack.external import ExternalStack
from harness.stack.local import LocalStack

__all__ = ["BACKENDS", "KINDS", "backend", "stack_for", "stack_from_ref"]

BACKENDS: Final[Mapping[str, StackBackend]] = {
    LocalStack.kind: LocalStack,
    ComposeStack.kind: ComposeStack,
    ExternalStack.kind: ExternalStack,
}
KINDS: Final = tuple(BACKENDS)


def backend(kind: str) -> StackBackend:
    """The backend of ``kind``; ``BadInputError`` naming the kinds there are."""
    found = BACKENDS.get(kind)
    if found is None:
        raise BadInputError(f"stack.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return found


def stack_for(section: StackSection, options: StackOptions) -> Stack:
    """The stack a scenario's (validated) ``stack:`` section asks for, with the command line's
    ``options``. Nothing is started: see :meth:`~harness.stack.base.Stack.bring_up`."""
    return backend(section.kind).from_section(section, options)


def stack_from_ref(ref: object, *, state_dir: Path) -> Stack:
    """The stack a reference names (:meth:`~harness.stack.base.Stack.to_ref`), as read back
    from the fault journal in ``state_dir``. ``BadInputError`` for anything that is not a
    reference of a known backend."""
    kind = ref.get("kind") if isinstance(ref, Mapping) else None
    found = BACKENDS.get(kind) if isinstance(kind, str) else None
    if found is None or not isinstance(ref, Mapping):
        raise BadInputError(
            f"not a stack reference: {ref!r} (a stack of kind {', '.join(KINDS)} is found again "
            "from its reference)"
        )
    return found.from_ref(ref, state_dir=state_dir)
