"""Which load model made a run's load, as every rendering of its report says it.

Closed (Locust's users, each waiting for its answer) and open (arrivals at a rate, whatever the
answers do) read alike in a table of latencies but mean different things: a closed run's
percentiles understate a stall (coordinated omission). So the report names the model, the
open model's rate per phase, and the arrivals it dropped because ``max_in_flight`` were waiting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.record import Event

__all__ = ["CLOSED", "LoadModelInfo", "load_model_of"]


@dataclass(frozen=True)
class LoadModelInfo:
    model: str  # "closed" or "open"
    rates: tuple[tuple[str, float], ...] = ()  # open: (phase, arrivals per second)
    max_in_flight: int | None = None
    arrivals: int | None = None  # open: arrivals that were due (None: not recorded)
    dropped: int | None = None  # open: arrivals not sent, max_in_flight were waiting

    @property
    def text(self) -> str:
        if self.model != "open":
            return "closed (users per phase, each waits for its answer)"
        rates = ", ".join(f"{phase} {rate:g}/s" for phase, rate in self.rates)
        line = f"open (arrivals per second: {rates}; at most {self.max_in_flight} in flight)"
        if self.arrivals is not None:
            line += f"; {self.arrivals} arrivals, {self.dropped or 0} dropped"
        return line

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model": self.model}
        if self.model == "open":
            data["rates"] = {phase: rate for phase, rate in self.rates}
            data["max_in_flight"] = self.max_in_flight
            data["arrivals"] = self.arrivals
            data["arrivals_dropped"] = self.dropped
        return data


CLOSED = LoadModelInfo("closed")


def load_model_of(scenario: Mapping[str, Any], events: Sequence[Event]) -> LoadModelInfo:
    """From the resolved scenario (its dict form) and the run's events (the workers' final
    totals carry the open model's arrival counts)."""
    load = scenario.get("load")
    load = load if isinstance(load, Mapping) else {}
    if load.get("model") != "open":
        return CLOSED
    phases = load.get("phases")
    rates = tuple(
        (str(p.get("name")), float(p["rate"]))
        for p in (phases if isinstance(phases, list) else [])
        if isinstance(p, Mapping) and isinstance(p.get("rate"), int | float)
    )
    cap = load.get("max_in_flight")
    # Each worker's last totals (cumulative), summed over the workers.
    last: dict[str, Mapping[str, Any]] = {}
    for event in events:
        if event.kind == "note" and event.name == "worker_totals":
            last[str(event.detail.get("node", event.detail.get("worker", "")))] = event.detail
    arrivals = dropped = None
    if any("arrivals" in totals for totals in last.values()):
        arrivals = sum(int(t.get("arrivals", 0)) for t in last.values())
        dropped = sum(int(t.get("arrivals_dropped", 0)) for t in last.values())
    return LoadModelInfo(
        "open",
        rates=rates,
        max_in_flight=cap if isinstance(cap, int) else None,
        arrivals=arrivals,
        dropped=dropped,
    )
