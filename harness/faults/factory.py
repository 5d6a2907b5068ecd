"""Faults from the two places they come from: a scenario's fault models bound to a running stack
(:func:`build_fault`), and a journal record written by another process (:func:`fault_from_record`).
Both look the action up in the registry (:mod:`harness.faults.registry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.errors import BadInputError
from harness.faults.base import RECORD_VERSION, Fault
from harness.faults.model import FaultModel
from harness.faults.registry import FAULT_FAMILIES
from harness.faults.stackref import stack_from_ref
from harness.stack import Stack, StackInfo

__all__ = ["Scheduled", "build_fault", "fault_from_record", "faults_of_scenario"]

# A fault with the offsets (seconds from the start of the run) it is injected and reverted at;
# None: reverted only when the run ends.
Scheduled = tuple[Fault, float, float | None]


def build_fault(spec: FaultModel, stack: Stack, info: StackInfo) -> Fault:
    """The fault a scenario entry describes, bound to ``stack`` (whose ``info`` is given).
    ``BadInputError`` when it names an instance or proxy the stack does not have."""
    family = FAULT_FAMILIES.get(spec.action)
    if family is None or not isinstance(spec, family.model):
        raise BadInputError(f'fault "{spec.name}": no injector for action {spec.action!r}')
    return family.build(spec, stack, info)


def faults_of_scenario(
    faults: tuple[FaultModel, ...], total: float, stack: Stack, info: StackInfo
) -> list[Scheduled]:
    """A scenario's faults bound to the stack, each with its window (``FaultModel.window``) on a
    run of ``total`` seconds: what :class:`~harness.faults.timeline.FaultTimeline` takes."""
    scheduled: list[Scheduled] = []
    for spec in faults:
        start, end = spec.window(total)
        scheduled.append((build_fault(spec, stack, info), start, end))
    return scheduled


def fault_from_record(
    record: object, *, stack: Stack | None = None, journal_dir: Path | None = None
) -> Fault:
    """Rebuild a fault from its :meth:`~harness.faults.base.Fault.to_record`, to revert it.

    The stack is found again from the record's reference, once, here, unless ``stack`` is given.
    ``journal_dir``: the state directory of the journal the record was read from; a reference
    to a stack that directory does not own is refused
    (:func:`~harness.faults.stackref.stack_from_ref`). A record this harness cannot read is a
    ``BadInputError`` that says why.
    """
    if not isinstance(record, Mapping):
        raise BadInputError(f"fault record: expected a mapping, got {record!r}")
    name = record.get("name")
    if record.get("v") != RECORD_VERSION:
        raise BadInputError(
            f"fault record {name!r}: format {record.get('v')!r}, this harness reads "
            f"{RECORD_VERSION}"
        )
    kind = record.get("kind")
    family = FAULT_FAMILIES.get(kind) if isinstance(kind, str) else None
    if family is None:
        raise BadInputError(f"fault record {name!r}: unknown kind {kind!r}")
    if stack is None:
        stack = stack_from_ref(record.get("stack"), required=False, journal_dir=journal_dir)
    return family.from_record(record, stack)
