"""``db-throttle``: a slow link between the shop and its database, as a preset of toxics on the
``app-db`` proxy (or the proxy the scenario names).

* ``latency`` (± ``jitter``) goes on the downstream only, the database's answers: each query's
  round trip then grows by the latency asked for. On both streams it would grow by twice that.
* ``rate`` goes on both streams: queries and their results are squeezed alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from harness.faults.toxic import AddToxics, ToxicSpec, toxic_name

__all__ = ["ThrottleDatabase", "throttle_toxics"]


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
