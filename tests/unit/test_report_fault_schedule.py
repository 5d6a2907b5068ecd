"""The report keeps a fault's scheduled times beside the times it was in force and lifted, and
shows them where they differ by more than 10 ms."""

from __future__ import annotations

import pytest

from harness.record import EventKind
from harness.record.events import Event
from harness.report.html import _detail_text, _on_time
from harness.report.series import fault_spans

pytestmark = pytest.mark.unit

ORIGIN = 1_700_000_000.0


def event(id_: int, kind: EventKind, t: float, **detail: object) -> Event:
    return Event(id=id_, t=ORIGIN + t, kind=kind, name="slow-db", detail=dict(detail))


def test_a_fault_span_carries_its_scheduled_inject_and_revert() -> None:
    (span,) = fault_spans(
        [
            event(1, EventKind.FAULT_INJECTED, 11.037, scheduled=ORIGIN + 11.0),
            event(2, EventKind.FAULT_REVERTED, 15.004, scheduled=ORIGIN + 15.0),
        ],
        ORIGIN,
        ORIGIN + 40.0,
    )
    assert span.start == pytest.approx(11.037)
    assert span.scheduled_start == pytest.approx(11.0)
    assert span.scheduled_end == pytest.approx(15.0)


def test_a_fault_span_without_a_schedule_has_none() -> None:
    (span,) = fault_spans(
        [event(1, EventKind.FAULT_INJECTED, 3.0, manual=True, who="ops")], ORIGIN, ORIGIN + 9.0
    )
    assert (span.scheduled_start, span.scheduled_end) == (None, None)


def test_a_step_more_than_10_ms_off_its_schedule_shows_both_times() -> None:
    assert _on_time(11.037, 11.0) == "+11.0s (due +11.0s, 37ms late)"
    assert _on_time(15.004, 15.0) == "+15.0s"  # within 10 ms: one time
    assert _on_time(15.0, None) == "+15.0s"


def test_the_event_timeline_shows_the_schedule_only_when_missed() -> None:
    late = {"description": "latency", "scheduled": ORIGIN + 11.0}
    assert _detail_text(late, ORIGIN, ORIGIN + 11.037) == "latency; scheduled=+11.0s (37ms late)"
    assert _detail_text(late, ORIGIN, ORIGIN + 11.005) == "latency"
