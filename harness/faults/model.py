"""What every fault entry of a scenario file has: a name, an action, a target, when and how long.

Each fault family (``process``, ``toxic``, ``database``, ``maintenance``) subclasses
:class:`FaultModel` with its own ``action`` literal, target and ``params``, and says what it
needs of the stack in class variables; the scenario (:mod:`harness.scenario`) checks those
against its stack section without knowing the family. The registry
(:mod:`harness.faults.registry`) lists the families, and the scenario's union of fault models is
built from it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from harness.fields import Duration, FieldModel, Name, PositiveDuration

__all__ = ["FaultModel", "TargetKind"]

# What a fault's ``target`` names: a shop instance (``app-1``) or a Toxiproxy proxy (``app-db``).
TargetKind = Literal["instance", "proxy"]


class FaultModel(FieldModel):
    """What every fault has. The concrete kinds add a target and params per action."""

    # What the family's ``target`` names; None: it takes no target. A local stack's names are
    # known, so the scenario checks them; a proxy target also means the fault goes through a
    # Toxiproxy API, which an external stack must then name.
    target_kind: ClassVar[TargetKind | None] = None
    # True when only a stack the harness runs (local or compose) can take the fault: it acts on
    # processes or on the shop's admin API, which an external stack does not hand over.
    needs_managed_stack: ClassVar[bool] = False

    name: Name
    # Each family narrows it to its own literal: pydantic picks the model by it.
    action: str
    target: str | None = None
    # None: a catalogue entry, never scheduled; `harness gameday` injects it by hand (its ``for``
    # is then the default duration), and `harness run` refuses it (it would never happen).
    at: Duration | None = None
    # ``for`` is a Python keyword, so the attribute is ``for_``; the file and the dump say "for".
    for_: PositiveDuration | None = Field(default=None, alias="for")

    @property
    def scheduled(self) -> bool:
        return self.at is not None

    @property
    def needs_toxiproxy(self) -> bool:
        """True when the fault goes through a Toxiproxy API."""
        return self.target_kind == "proxy"

    def window(self, total: float) -> tuple[float, float]:
        """When the fault is in force: from ``at`` to ``at + for``, or to ``total`` without a
        ``for`` (it is reverted when the run ends). A catalogue entry (no ``at``) is planned
        for no time at all: the empty window at the end of the run."""
        if self.at is None:
            return (total, total)
        end = total if self.for_ is None else min(self.at + self.for_, total)
        return (self.at, end)
