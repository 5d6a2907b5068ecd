"""``maintenance``: the shop's maintenance mode, switched through its admin API; on any other
service, an HTTP 503 with ``Retry-After`` at its edge proxy.

Which one :func:`build_maintenance_fault` builds: with a ``target`` (a Toxiproxy proxy), the
edge fault on that proxy; without one, the admin switch on the sample shop (a stack with the
shop's admin token and instances), and on any other stack the edge fault on the proxy named
``edge`` (the harness's front proxy of an external stack is named so). The edge fault is an
``http-abort`` (:mod:`harness.faults.http_toxic`) answering every route but the health paths;
its journal record says ``maintenance`` and is read back by :func:`maintenance_from_record`.

The admin switch: ``POST /admin/maintenance {"enabled": bool}`` with ``Authorization: Bearer
<token>`` on any instance stores the flag in the database, which every instance polls; one
instance that answers is enough. The instances are tried in turn, since the first may be the
one another fault killed or paused. Switching off what is already off is the same call, so
revert is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Self

from harness.errors import BadInputError, InfrastructureError
from harness.faults.base import RECORD_VERSION, Fault, record_str, record_strs
from harness.faults.http import post_json
from harness.faults.http_toxic import AddHttpToxic, HttpAbortParams, HttpBody, http_toxic
from harness.faults.model import FaultModel, TargetKind
from harness.faults.stackref import stack_is_gone, stack_ref
from harness.fields import Duration, FieldModel, Name
from harness.stack import Stack, StackInfo

__all__ = [
    "EDGE_PROXY",
    "MaintenanceFault",
    "MaintenanceMode",
    "MaintenanceParams",
    "admin_url",
    "build_maintenance_fault",
    "is_sample_shop",
    "maintenance_from_record",
]

# Per instance: a paused one accepts the connection and then says nothing.
ADMIN_TIMEOUT_S: Final = 2.0
# A 503 from the admin API means the instance cannot reach its database right now, typically
# a circuit breaker still cooling down (2 s by default) after a database fault was reverted just
# before: worth another round of the instances, for this long.
PATIENCE_S: Final = 6.0
ROUND_INTERVAL_S: Final = 0.25
# The proxy in front of a service that is not the sample shop, unless the fault names another.
EDGE_PROXY: Final = "edge"
EDGE_STATUS: Final = 503
EDGE_RETRY_AFTER_S: Final = 5.0
EDGE_BODY: Final = "down for maintenance, retry later\n"


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
            stack=stack,  # found by fault_from_record (harness.faults.factory)
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


class MaintenanceParams(FieldModel):
    """What the edge answers during maintenance (on the sample shop, the shop answers itself:
    its ``SHOP_MAINTENANCE_RETRY_AFTER_S`` sets the Retry-After)."""

    retry_after: Duration = EDGE_RETRY_AFTER_S
    body: HttpBody = EDGE_BODY


class MaintenanceFault(FaultModel):
    """``maintenance``: the service answers 503 with Retry-After, and stops when reverted. On
    the sample shop its own maintenance mode; elsewhere (or with a ``target`` proxy) an HTTP
    503 at the edge proxy for every route but the health paths."""

    # A proxy target, so the fault goes through Toxiproxy (needs_toxiproxy): on a stack that is
    # not the sample shop (every external one) it is an HTTP toxic on the edge proxy, and the
    # sample shop's stacks have a Toxiproxy anyway.
    target_kind: ClassVar[TargetKind | None] = "proxy"

    action: Literal["maintenance"]
    # The proxy to answer 503 at; None: the shop's admin switch on the sample shop, the proxy
    # named "edge" on any other stack.
    target: Name | None = None
    params: MaintenanceParams | None = None

    def uses_http_toxic(self, info: StackInfo) -> bool:
        """True when, on the stack ``info`` describes, it is an HTTP toxic at the edge."""
        return self.target is not None or not is_sample_shop(info)


def is_sample_shop(info: StackInfo) -> bool:
    """The stack is the sample shop: it hands out the admin token of the shop's instances."""
    return bool(info.admin_token and info.instances)


def build_maintenance_fault(spec: MaintenanceFault, stack: Stack, info: StackInfo) -> Fault:
    """The shop's maintenance mode (switched through every instance's admin API) on the sample
    shop; otherwise (or with a ``target``) a 503 with Retry-After at the edge proxy."""
    if spec.uses_http_toxic(info):
        return _edge_maintenance(spec, stack, info)
    if spec.params is not None:
        raise BadInputError(
            f'fault "{spec.name}": params: the sample shop\'s maintenance mode answers its own '
            "Retry-After (stack.env SHOP_MAINTENANCE_RETRY_AFTER_S); params apply to a "
            "maintenance at an edge proxy (give a target)"
        )
    urls = tuple(admin_url(i.endpoint.url()) for i in info.instances)
    return MaintenanceMode(spec.name, urls, info.admin_token, stack)


def _edge_maintenance(spec: MaintenanceFault, stack: Stack, info: StackInfo) -> Fault:
    proxy = spec.target or EDGE_PROXY
    if proxy not in {p.name for p in info.proxies}:
        known = ", ".join(p.name for p in info.proxies) or "none"
        why = (
            f"no proxy {proxy!r} in the stack (it has {known})"
            if spec.target
            else "this stack is not the sample shop (no admin API), so maintenance is a 503 at "
            f"its edge proxy, and it has no proxy {EDGE_PROXY!r} (it has {known}); use "
            "stack.front_proxy: true, or name the proxy in front of the service as target"
        )
        raise BadInputError(f'fault "{spec.name}": maintenance: {why}')
    if not info.toxiproxy_url:
        raise BadInputError(f'fault "{spec.name}": maintenance needs a Toxiproxy API URL')
    params = spec.params or MaintenanceParams()
    # Every method and path; the health paths are excluded by default. Seconds, as resolved.
    abort = HttpAbortParams.model_validate(
        {"status": EDGE_STATUS, "retry_after": params.retry_after, "body": params.body},
        context={"resolved": True},
    )
    return http_toxic(spec.name, spec.action, proxy, abort, info.toxiproxy_url, stack)


def maintenance_from_record(record: Mapping[str, Any], stack: Stack | None = None) -> Fault:
    """A maintenance fault from its journal record: the admin switch, or the edge's toxic."""
    if "toxic" in record:
        return AddHttpToxic.from_record(record, stack)
    return MaintenanceMode.from_record(record, stack)
