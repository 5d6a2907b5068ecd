"""``db-throttle``: a slow link between the shop and its database, as a preset of toxics on the
``app-db`` proxy (or the proxy the scenario names).

* ``latency`` (± ``jitter``) goes on the downstream only, the database's answers: each query's
  round trip then grows by the latency asked for. On both streams it would grow by twice that.
* ``rate`` goes on both streams: queries and their results are squeezed alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Self

from pydantic import PlainValidator, model_validator

from harness.faults.base import Fault
from harness.faults.model import FaultModel, TargetKind
from harness.faults.toxic import AddToxics, ToxicSpec, proxy_of, toxic_name, toxiproxy_of
from harness.fields import FieldModel, Name, WholeNumber, invalid, whole_number
from harness.stack import Stack, StackInfo

__all__ = [
    "DbThrottleFault",
    "DbThrottleParams",
    "ThrottleDatabase",
    "build_db_throttle_fault",
    "throttle_toxics",
]


def throttle_toxics(
    fault_name: str, *, latency: int | None, jitter: int | None, rate: int | None
) -> tuple[ToxicSpec, ...]:
    """The toxics of a db-throttle fault, each with its own deterministic name."""
    toxics = []
    if latency is not None:
        toxics.append(
            ToxicSpec(
                name=toxic_name(fault_name, "latency"),
                type="latency",
                stream="downstream",
                attributes=(("latency", latency), ("jitter", jitter or 0)),
            )
        )
    if rate is not None:
        toxics.extend(
            ToxicSpec(
                name=toxic_name(fault_name, f"rate-{stream}"),
                type="bandwidth",
                stream=stream,
                attributes=(("rate", rate),),
            )
            for stream in ("upstream", "downstream")
        )
    return tuple(toxics)


@dataclass(frozen=True)
class ThrottleDatabase(AddToxics):
    """The db-throttle preset: revert removes every toxic it added."""

    kind: ClassVar[str] = "db-throttle"

    def describe(self) -> str:
        parts = []
        for spec in self.toxics:
            values = dict(spec.attributes)
            if spec.type == "latency":
                jitter = f"±{values['jitter']}" if values.get("jitter") else ""
                parts.append(f"latency {values['latency']}{jitter} ms on its answers")
            elif spec.stream == "upstream":  # both streams carry the same rate: say it once
                parts.append(f"{values['rate']} KB/s each way")
        return f"slow database link {self.proxy}: {', '.join(parts)}"


# --- the scenario's side: the model of a db-throttle entry, and the fault it builds -----------


class DbThrottleParams(FieldModel):
    """A slow database link: ``latency`` (ms, optionally ± ``jitter``) and/or ``rate`` (KB/s)."""

    latency: WholeNumber | None = None
    jitter: WholeNumber | None = None
    rate: Annotated[int, PlainValidator(whole_number(1))] | None = None

    @model_validator(mode="after")
    def _says_how_slow(self) -> Self:
        if self.latency is None and self.rate is None:
            raise invalid("db-throttle needs latency (ms) and/or rate (KB/s)")
        if self.jitter is not None and self.latency is None:
            raise invalid("jitter needs a latency to vary", "jitter")
        return self


class DbThrottleFault(FaultModel):
    """``db-throttle``: slow the link between the shop and its database."""

    target_kind: ClassVar[TargetKind | None] = "proxy"

    action: Literal["db-throttle"]
    target: Name = "app-db"
    params: DbThrottleParams


def build_db_throttle_fault(spec: DbThrottleFault, stack: Stack, info: StackInfo) -> Fault:
    """The db-throttle preset ``spec`` describes, on the database proxy of ``stack``."""
    throttle = spec.params
    toxics = throttle_toxics(
        spec.name, latency=throttle.latency, jitter=throttle.jitter, rate=throttle.rate
    )
    return ThrottleDatabase(
        spec.name, proxy_of(spec, info), toxics, toxiproxy_of(spec, info), stack
    )
