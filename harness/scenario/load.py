"""The scenario's ``load`` and ``capacity`` sections: the Locust side (users, workers, the load
model and the phases it runs through) and the staircase ``harness capacity`` climbs."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, get_args

from pydantic import PlainValidator, field_serializer, model_validator

from harness.fields import (
    MAX_RATE,
    MAX_USERS,
    MAX_WORKERS,
    FieldModel,
    Name,
    PositiveDuration,
    invalid,
    number,
    one_of,
    whole_number,
)
from harness.scenario.fields import ArrivalRate, LocustFile, identifier, unique

__all__ = ["Capacity", "Load", "LoadModel", "Phase"]

LoadModel = Literal["closed", "open"]


class Phase(FieldModel):
    """One stretch of the load shape. Closed model: ramp to ``users`` at ``spawn_rate`` users/s
    and hold. Open model: requests start at ``rate`` per second, whatever the answers do."""

    name: Name
    duration: PositiveDuration
    users: Annotated[int, PlainValidator(whole_number(0, MAX_USERS))] | None = None
    spawn_rate: Annotated[float, PlainValidator(number(0, MAX_RATE, above=True))] | None = None
    rate: ArrivalRate | None = None


class Load(FieldModel):
    """The Locust side: which users, how many processes, the model, and the phases they run
    through. ``model: open`` paces arrivals (:mod:`harness.load.open_model`): each phase has a
    ``rate``, and at most ``max_in_flight`` requests wait for answers at once (past it an
    arrival is dropped and counted, never sent late)."""

    locustfile: LocustFile
    user_classes: tuple[Annotated[str, PlainValidator(identifier)], ...] = ()
    workers: Annotated[int, PlainValidator(whole_number(0, MAX_WORKERS))] = 0
    model: Annotated[LoadModel, PlainValidator(one_of(get_args(LoadModel)))] = "closed"
    max_in_flight: Annotated[int, PlainValidator(whole_number(1, 1_000_000))] = 1000
    phases: tuple[Phase, ...]

    @model_validator(mode="after")
    def _phases_named_once(self) -> Self:
        if not self.phases:
            raise invalid("expected at least one phase", "phases")
        unique([p.name for p in self.phases], "phases", "name", "phase")
        for index, phase in enumerate(self.phases):
            if self.model == "open":
                for field in ("users", "spawn_rate"):
                    if getattr(phase, field) is not None:
                        raise invalid(
                            "not used by the open model (it paces arrivals: give rate)",
                            "phases",
                            index,
                            field,
                        )
                if phase.rate is None:
                    raise invalid(
                        "required by load.model open (requests per second, like 50/s)",
                        "phases",
                        index,
                        "rate",
                    )
            else:
                if phase.rate is not None:
                    raise invalid(
                        "only with load.model: open (the closed model runs users)",
                        "phases",
                        index,
                        "rate",
                    )
                for field in ("users", "spawn_rate"):
                    if getattr(phase, field) is None:
                        raise invalid("required, but missing", "phases", index, field)
        return self

    @field_serializer("phases")
    def _phases_of_the_model(self, phases: tuple[Phase, ...]) -> list[dict[str, Any]]:
        # Only the fields the model uses: a closed dump without "rate: null" reads back as it
        # was, and so does an open one without users.
        return [
            {
                key: value
                for key, value in phase.model_dump(mode="json").items()
                if value is not None
            }
            for phase in phases
        ]


class Capacity(FieldModel):
    """``harness capacity``: offered load (arrival rate) from ``start`` up by ``step`` every
    ``hold`` to at most ``max``; ``faults`` names faults of the scenario to hold for the whole
    of a second, degraded search; ``always`` faults held in every search (the conditions the
    rehearsal assumes, such as a database link as slow as production's). ``stop_at_break``: the
    run ends after the first phase whose whole-run SLOs fail (set in the staircase that
    ``harness capacity`` generates)."""

    start: ArrivalRate = 10.0
    step: ArrivalRate = 10.0
    hold: PositiveDuration = 5.0
    max: ArrivalRate = 200.0
    faults: tuple[Name, ...] = ()
    always: tuple[Name, ...] = ()
    stop_at_break: bool = False

    @model_validator(mode="after")
    def _climbs(self) -> Self:
        if self.start <= 0:
            raise invalid(f"expected a rate above 0/s, got {self.start:g}/s", "start")
        if self.step <= 0:
            raise invalid(f"expected a rate above 0/s, got {self.step:g}/s", "step")
        if self.max < self.start:
            raise invalid(f"expected at least start ({self.start:g}/s), got {self.max:g}/s", "max")
        return self
