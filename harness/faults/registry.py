"""The fault families, by scenario action: the one list a new family is added to.

Each action maps to a :class:`FaultFamily`: the scenario model of its entries, the builder that
binds such an entry to a running stack, and the reader of its journal records. The scenario's
union of fault models (:mod:`harness.scenario`), :func:`~harness.faults.factory.build_fault`
and :func:`~harness.faults.factory.fault_from_record` are all built from :data:`FAULT_FAMILIES`,
so a new family is its own module in ``harness/faults/`` (model, injector, builder) plus one
line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar, get_args

from harness.faults.base import Fault
from harness.faults.database import DbThrottleFault, ThrottleDatabase, build_db_throttle_fault
from harness.faults.exec_fault import ExecFault, RunCommands, build_exec_fault
from harness.faults.http_call import CallEndpoints, HttpCallFault, build_http_call_fault
from harness.faults.http_toxic import (
    AddHttpToxic,
    HttpAbortFault,
    HttpDelayFault,
    build_http_abort_fault,
    build_http_delay_fault,
)
from harness.faults.maintenance import (
    MaintenanceFault,
    build_maintenance_fault,
    maintenance_from_record,
)
from harness.faults.model import FaultModel
from harness.faults.process import (
    InstanceFault,
    KillInstance,
    PauseInstance,
    RestartInstance,
    build_instance_fault,
)
from harness.faults.toxic import (
    AddToxics,
    DisableProxy,
    ProxyDownFault,
    ToxicFault,
    build_proxy_down_fault,
    build_toxic_fault,
)
from harness.stack import Stack, StackInfo

__all__ = [
    "FAULT_ACTIONS",
    "FAULT_FAMILIES",
    "INSTANCE_ACTIONS",
    "TOXIPROXY_ACTIONS",
    "FaultFamily",
    "fault_models",
]

M = TypeVar("M", bound=FaultModel)


@dataclass(frozen=True)
class FaultFamily(Generic[M]):
    """One scenario action: its model, how an entry becomes a fault on a stack, and how a
    journal record of that fault (its ``kind`` is the action) becomes a fault again."""

    model: type[M]
    build: Callable[[M, Stack, StackInfo], Fault]
    from_record: Callable[[Mapping[str, Any], Stack | None], Fault]


# In the order error messages list the actions ("expected one of: kill, pause, ...").
FAULT_FAMILIES: Mapping[str, FaultFamily[Any]] = MappingProxyType(
    {
        "kill": FaultFamily(InstanceFault, build_instance_fault, KillInstance.from_record),
        "pause": FaultFamily(InstanceFault, build_instance_fault, PauseInstance.from_record),
        "restart": FaultFamily(InstanceFault, build_instance_fault, RestartInstance.from_record),
        "toxic": FaultFamily(ToxicFault, build_toxic_fault, AddToxics.from_record),
        "down": FaultFamily(ProxyDownFault, build_proxy_down_fault, DisableProxy.from_record),
        "db-throttle": FaultFamily(
            DbThrottleFault, build_db_throttle_fault, ThrottleDatabase.from_record
        ),
        "maintenance": FaultFamily(
            MaintenanceFault, build_maintenance_fault, maintenance_from_record
        ),
        "http-abort": FaultFamily(HttpAbortFault, build_http_abort_fault, AddHttpToxic.from_record),
        "http-delay": FaultFamily(HttpDelayFault, build_http_delay_fault, AddHttpToxic.from_record),
        "exec": FaultFamily(ExecFault, build_exec_fault, RunCommands.from_record),
        "http": FaultFamily(HttpCallFault, build_http_call_fault, CallEndpoints.from_record),
    }
)

FAULT_ACTIONS: tuple[str, ...] = tuple(FAULT_FAMILIES)
INSTANCE_ACTIONS = frozenset(
    action for action, family in FAULT_FAMILIES.items() if family.model.target_kind == "instance"
)
# The faults that go through a Toxiproxy API, so an external stack must say where it is.
TOXIPROXY_ACTIONS = frozenset(
    action for action, family in FAULT_FAMILIES.items() if family.model.target_kind == "proxy"
)


def fault_models() -> tuple[type[FaultModel], ...]:
    """Each family's model once, in registry order: the members of the scenario's union."""
    return tuple(dict.fromkeys(family.model for family in FAULT_FAMILIES.values()))


def _check_actions() -> None:
    # Pydantic picks a model by its ``action`` literal; an action registered under a model that
    # does not list it would validate nowhere, so say so when the registry is read, not later.
    for action, family in FAULT_FAMILIES.items():
        literal = family.model.model_fields["action"].annotation
        if action not in get_args(literal):
            raise TypeError(f"{family.model.__name__}.action does not accept {action!r}")


_check_actions()
