"""Faults from the two places they come from: a scenario's fault models bound to a running stack
(:func:`build_fault`), and a journal record written by another process (:func:`fault_from_record`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness import scenario
from harness.errors import BadInputError
from harness.faults.base import RECORD_VERSION, Fault
from harness.faults.database import ThrottleDatabase, throttle_toxics
from harness.faults.maintenance import MaintenanceMode, admin_url
from harness.faults.process import KillInstance, PauseInstance, RestartInstance
from harness.faults.toxic import AddToxics, DisableProxy, ToxicSpec, toxic_name
from harness.stack import Stack, StackInfo

__all__ = ["Scheduled", "build_fault", "fault_from_record", "faults_of_scenario"]

# A fault with the offsets (seconds from the start of the run) it is injected and reverted at;
# None: reverted only when the run ends.
Scheduled = tuple[Fault, float, float | None]

_INSTANCE_FAULTS: dict[str, type[KillInstance | PauseInstance | RestartInstance]] = {
    "kill": KillInstance,
    "pause": PauseInstance,
    "restart": RestartInstance,
}

_FROM_RECORD: dict[str, Callable[[Mapping[str, Any], Stack | None], Fault]] = {
    "kill": KillInstance.from_record,
    "pause": PauseInstance.from_record,
    "restart": RestartInstance.from_record,
    "toxic": AddToxics.from_record,
    "db-throttle": ThrottleDatabase.from_record,
    "down": DisableProxy.from_record,
    "maintenance": MaintenanceMode.from_record,
}


def build_fault(spec: scenario.Fault, stack: Stack, info: StackInfo) -> Fault:
    """The fault a scenario entry describes, bound to ``stack`` (whose ``info`` is given).
    ``BadInputError`` when it names an instance or proxy the stack does not have."""
    if isinstance(spec, scenario.InstanceFault):
        instance = info.instance(spec.target)
        return _INSTANCE_FAULTS[spec.action](
            name=spec.name,
            target=spec.target,
            stack=stack,
            healthz_url=instance.endpoint.url(instance.health_path),
        )
    if isinstance(spec, scenario.ToxicFault):
        params = spec.params
        toxic = ToxicSpec(
            name=toxic_name(spec.name),
            type=params.type,
            stream=params.stream,
            toxicity=params.toxicity,
            attributes=tuple(params.attributes.items()),
        )
        return AddToxics(spec.name, _proxy(spec, info), (toxic,), _toxiproxy(spec, info), stack)
    if isinstance(spec, scenario.DbThrottleFault):
        throttle = spec.params
        toxics = throttle_toxics(
            spec.name, latency=throttle.latency, jitter=throttle.jitter, rate=throttle.rate
        )
        return ThrottleDatabase(
            spec.name, _proxy(spec, info), toxics, _toxiproxy(spec, info), stack
        )
    if isinstance(spec, scenario.ProxyDownFault):
        return DisableProxy(spec.name, _proxy(spec, info), _toxiproxy(spec, info), stack)
    if isinstance(spec, scenario.MaintenanceFault):
        if not info.admin_token or not info.instances:
            raise BadInputError(
                f'fault "{spec.name}": maintenance needs the shop\'s admin API, and this stack '
                "has no admin token or no instances"
            )
        urls = tuple(admin_url(i.endpoint.url()) for i in info.instances)
        return MaintenanceMode(spec.name, urls, info.admin_token, stack)
    raise BadInputError(f'fault "{spec.name}": no injector for action {spec.action!r}')


def faults_of_scenario(
    faults: tuple[scenario.Fault, ...], total: float, stack: Stack, info: StackInfo
) -> list[Scheduled]:
    """A scenario's faults bound to the stack, each with its window (``Fault.window``) on a run
    of ``total`` seconds: what :class:`~harness.faults.timeline.FaultTimeline` takes."""
    scheduled: list[Scheduled] = []
    for spec in faults:
        start, end = spec.window(total)
        scheduled.append((build_fault(spec, stack, info), start, end))
    return scheduled


def fault_from_record(record: object, *, stack: Stack | None = None) -> Fault:
    """Rebuild a fault from its :meth:`~harness.faults.base.Fault.to_record`, to revert it.

    The stack is found again from the record's reference unless ``stack`` is given. A record
    this harness cannot read is a ``BadInputError`` that says why.
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
    build = _FROM_RECORD.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise BadInputError(f"fault record {name!r}: unknown kind {kind!r}")
    return build(record, stack)


def _proxy(spec: scenario.Fault, info: StackInfo) -> str:
    assert spec.target is not None  # the models of the Toxiproxy actions require one
    return info.proxy(spec.target).name


def _toxiproxy(spec: scenario.Fault, info: StackInfo) -> str:
    if not info.toxiproxy_url:
        raise BadInputError(f'fault "{spec.name}": {spec.action} needs a Toxiproxy API URL')
    return info.toxiproxy_url
