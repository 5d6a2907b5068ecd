"""The chaos desk: what the chaos tab and ``harness inject/revert/status`` act on, in the master.

It joins the fault timeline (inject and revert by hand, the schedule as it plays), the phase
clock and the live SLO board into one state a page can poll, and turns hand-made steps into
answers with an HTTP status. Pure Python, no Flask and no gevent, so it is unit-tested with a
fake timeline; :mod:`harness.gameday.web` puts it on Locust's Flask app.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from harness.durations import DurationError, parse_duration
from harness.errors import BadInputError, HarnessError
from harness.faults.timeline import FaultConflict, SlotView, UnknownFault
from harness.gameday.live import LiveBoard

__all__ = ["Answer", "CatalogueEntry", "ChaosDesk", "DeskTimeline", "EmptyTimeline"]


class DeskTimeline(Protocol):
    """The part of :class:`~harness.faults.timeline.FaultTimeline` the desk uses."""

    def inject_now(self, name: str, *, who: str, for_s: float | None = None) -> SlotView: ...

    def revert_now(self, name: str | None, *, who: str) -> list[SlotView]: ...

    def views(self) -> list[SlotView]: ...


@dataclass(frozen=True)
class CatalogueEntry:
    """A fault people may inject: its name, what it does, and how long by default (None: until
    reverted, or the end of the run)."""

    name: str
    description: str
    default_for_s: float | None
    scheduled: bool


@dataclass(frozen=True)
class Answer:
    """An HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


class ChaosDesk:
    """``phase_now()``: (elapsed seconds, phase name) or None before the load started;
    ``breached()``: guard names that aborted the run; ``ending()``: the run is stopping."""

    def __init__(
        self,
        *,
        scenario: str,
        timeline: DeskTimeline,
        catalogue: Sequence[CatalogueEntry],
        board: LiveBoard,
        total_s: float,
        phase_now: Callable[[], tuple[float, str | None] | None],
        breached: Callable[[], Collection[str]] = tuple,
        ending: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scenario = scenario
        self.timeline = timeline
        self.catalogue = {entry.name: entry for entry in catalogue}
        self.board = board
        self.total_s = total_s
        self.phase_now = phase_now
        self.breached = breached
        self.ending = ending
        self.clock = clock

    def state(self) -> dict[str, Any]:
        """Everything the chaos tab shows, JSON-ready."""
        now = self.clock()
        views = self.timeline.views()
        active = {v.name for v in views if v.state == "active"}
        where = self.phase_now()
        elapsed, phase = (None, None) if where is None else where
        return {
            "scenario": self.scenario,
            "elapsed_s": elapsed,
            "total_s": self.total_s,
            "phase": phase,
            "running": where is not None and not self.ending(),
            "active": sorted(active),
            "timeline": [_view(v) for v in views],
            "catalogue": [asdict(entry) for entry in self.catalogue.values()],
            "slos": [row.to_dict() for row in self.board.slo_rows(now, phase=phase, active=active)],
            "guards": [
                row.to_dict() for row in self.board.guard_rows(now, breached=self.breached())
            ],
            "window_s": self.board.window_s,
        }

    def inject(self, body: Mapping[str, Any]) -> Answer:
        """``{"name", "who", "for"?: "30s" | "for_s"?: 30}`` -> 200 with the fault's view, 404
        unknown name, 400 bad duration, 409 already in force or the run not going."""
        try:
            name = _text(body, "name")
            for_s = _for_seconds(body)
            if for_s is None and name in self.catalogue:
                for_s = self.catalogue[name].default_for_s
            view = self.timeline.inject_now(name, who=_who(body), for_s=for_s)
        except HarnessError as exc:
            return _refused(exc)
        ok = view.state == "active" and not view.error
        return Answer(200, {"ok": ok, "fault": _view(view), "error": view.error or None})

    def revert(self, body: Mapping[str, Any]) -> Answer:
        """``{"name", "who"}`` or ``{"all": true, "who"}`` -> 200 with what was reverted."""
        try:
            name = None if body.get("all") is True else _text(body, "name")
            views = self.timeline.revert_now(name, who=_who(body))
        except HarnessError as exc:
            return _refused(exc)
        failed = [v for v in views if v.state == "active"]
        return Answer(
            200,
            {
                "ok": not failed,
                "reverted": [_view(v) for v in views if v.state != "active"],
                "failed": [_view(v) for v in failed],
            },
        )


def _refused(exc: HarnessError) -> Answer:
    if isinstance(exc, UnknownFault):
        return Answer(404, {"error": str(exc)})
    if isinstance(exc, FaultConflict):
        return Answer(409, {"error": str(exc)})
    if isinstance(exc, BadInputError):
        return Answer(400, {"error": str(exc)})
    return Answer(500, {"error": str(exc)})


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"{key}: expected a fault name, got {value!r}")
    return value.strip()


def _who(body: Mapping[str, Any]) -> str:
    value = body.get("who")
    # Never anonymous: the review wants to know who did what.
    return value.strip()[:80] if isinstance(value, str) and value.strip() else "unknown"


def _for_seconds(body: Mapping[str, Any]) -> float | None:
    """``for_s``: seconds as a number (the CLI); ``for``: a duration as people write it."""
    raw_s, raw = body.get("for_s"), body.get("for")
    if raw_s is not None:
        if isinstance(raw_s, bool) or not isinstance(raw_s, int | float):
            raise BadInputError(f"for_s: expected a number of seconds, got {raw_s!r}")
        seconds = float(raw_s)
    elif raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    else:
        try:
            seconds = parse_duration(raw if isinstance(raw, str) else str(raw))
        except DurationError as exc:
            raise BadInputError(f"for: {exc}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise BadInputError(f"for: expected a positive duration, got {raw_s or raw!r}")
    return seconds


def _view(view: SlotView) -> dict[str, Any]:
    return asdict(view)


class EmptyTimeline:
    """The timeline of a game day without faults (or on a stack the harness cannot hurt)."""

    def inject_now(self, name: str, *, who: str, for_s: float | None = None) -> SlotView:
        raise UnknownFault(f"no fault {name!r}: this game day has no fault catalogue")

    def revert_now(self, name: str | None, *, who: str) -> list[SlotView]:
        if name is None:
            return []
        raise UnknownFault(f"no fault {name!r}: this game day has no fault catalogue")

    def views(self) -> list[SlotView]:
        return []
