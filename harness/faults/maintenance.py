"""``maintenance``: the shop's maintenance mode, switched through its admin API.

``POST /admin/maintenance {"enabled": bool}`` with ``Authorization: Bearer <token>`` on any
instance stores the flag in the database, which every instance polls; one instance that answers
is enough. The instances are tried in turn, since the first may be the one another fault killed
or paused. Switching off what is already off is the same call, so revert is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Self

from pydantic import model_validator

from harness.errors import BadInputError, InfrastructureError
from harness.faults.base import RECORD_VERSION, Fault, record_str, record_strs
from harness.faults.http import post_json
from harness.faults.model import FaultModel
from harness.faults.stackref import stack_from_ref, stack_is_gone, stack_ref
from harness.fields import invalid
from harness.stack import Stack, StackInfo

__all__ = ["MaintenanceFault", "MaintenanceMode", "admin_url", "build_maintenance_fault"]

# Per instance: a paused one accepts the connection and then says nothing.
ADMIN_TIMEOUT_S: Final = 2.0
# A 503 from the admin API means the instance cannot reach its database right now, typically
# a circuit breaker still cooling down (2 s by default) after a database fault was reverted just
# before: worth another round of the instances, for this long.
PATIENCE_S: Final = 6.0
ROUND_INTERVAL_S: Final = 0.25


def admin_url(instance_base_url: str) -> str:
    return f"{instance_base_url.rstrip('/')}/admin/maintenance"


@dataclass(frozen=True)
class MaintenanceMode:
    """Maintenance on; revert switches it off."""

    name: str
    admin_urls: tuple[str, ...]
    admin_token: str = field(repr=False)
    stack: Stack | None = field(default=None, compare=False)

    kind: ClassVar[str] = "maintenance"
    self_healing: ClassVar[bool] = False

    @property
    def target(self) -> None:
        return None

    def describe(self) -> str:
        return "maintenance mode on (the shop answers 503 with Retry-After)"

    def inject(self) -> None:
        self._switch(enabled=True)

    def revert(self) -> None:
        try:
            self._switch(enabled=False)
        except InfrastructureError:
            # No instance to ask because the stack is down: the flag stays in the database, and
            # the local stack's next ``up`` switches it off before it serves anything.
            if stack_is_gone(self.stack):
                return
            raise

    def to_record(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "kind": self.kind,
            "name": self.name,
            "target": None,
            "admin_urls": list(self.admin_urls),
            "admin_token": self.admin_token,
            "stack": stack_ref(self.stack),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stack: Stack | None = None) -> Self:
        return cls(
            name=record_str(record, "name"),
            admin_urls=record_strs(record, "admin_urls"),
            admin_token=record_str(record, "admin_token"),
            stack=stack or stack_from_ref(record.get("stack"), required=False),
        )

    def _switch(self, *, enabled: bool) -> None:
        deadline = time.monotonic() + PATIENCE_S
        while True:
            answers, statuses = [], set()
            for url in self.admin_urls:
                status, why = post_json(
                    url, {"enabled": enabled}, token=self.admin_token, timeout_s=ADMIN_TIMEOUT_S
                )
                if status == 200:
                    return
                statuses.add(status)
                answers.append(f"{url}: {status} {why}" if status else f"{url}: no answer ({why})")
            if 503 not in statuses or time.monotonic() >= deadline:
                break
            time.sleep(ROUND_INTERVAL_S)
        state = "on" if enabled else "off"
        raise InfrastructureError(
            f"maintenance {state}: no instance took the switch: {'; '.join(answers)}"
        )


# --- the scenario's side: the model of a maintenance entry, and the fault it builds -----------


class MaintenanceFault(FaultModel):
    """``maintenance``: switch the shop's maintenance mode on, and off again when reverted."""

    needs_managed_stack: ClassVar[bool] = True

    action: Literal["maintenance"]
    target: None = None

    @model_validator(mode="before")
    @classmethod
    def _no_target(cls, data: object) -> object:
        if isinstance(data, Mapping) and data.get("target") is not None:
            raise invalid("maintenance takes no target: it applies to the whole shop", "target")
        return data


def build_maintenance_fault(spec: MaintenanceFault, stack: Stack, info: StackInfo) -> Fault:
    """Maintenance mode on ``stack``, switched through every instance's admin API."""
    if not info.admin_token or not info.instances:
        raise BadInputError(
            f'fault "{spec.name}": maintenance needs the shop\'s admin API, and this stack '
            "has no admin token or no instances"
        )
    urls = tuple(admin_url(i.endpoint.url()) for i in info.instances)
    return MaintenanceMode(spec.name, urls, info.admin_token, stack)
