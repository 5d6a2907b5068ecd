"""The scenario's ``faults`` section: one entry per fault, its model picked by ``action`` from
the union of every fault family's model (:data:`harness.faults.registry.FAULT_FAMILIES`).

Nothing here names a family: a new one is registered in :mod:`harness.faults.registry` and joins
the union, the action list of error messages and the stack checks of :mod:`harness.scenario`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypeAlias, Union

from pydantic import Field

from harness.faults.model import FaultModel
from harness.faults.registry import fault_models

__all__ = ["AnyFault"]

if TYPE_CHECKING:
    # A type checker cannot follow a union built at run time. Every member is a FaultModel,
    # which is all code reading Scenario.faults may assume anyway (isinstance narrows further).
    AnyFault: TypeAlias = FaultModel
else:
    # Pydantic picks the class by ``action``; its error paths gain that tag as an extra step
    # (faults.2.toxic.params), which the loader's error rendering removes again.
    # Union[...] of a tuple, not "A | B": the members are known only at run time (and ruff's
    # UP007 fix would turn the one into the other wrongly).
    AnyFault = Annotated[Union[fault_models()], Field(discriminator="action")]  # noqa: UP007
