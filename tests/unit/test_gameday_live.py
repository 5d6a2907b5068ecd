"""The chaos tab's live SLOs and guards: the verdict's own measures over the last seconds of
settled buckets, scoped to the phase or fault running now."""

from __future__ import annotations

import pytest

from harness.gameday.live import LiveBoard
from harness.record.buckets import Bucket
from harness.verdict import parse_guard, parse_slo

pytestmark = pytest.mark.unit

NOW = 1000.0  # buckets settle 2 s after they end; the window is the 10 s before that


def bucket(t: float, **statuses: int) -> Bucket:
    b = Bucket(round(t * 10))
    b.statuses = {int(code.removeprefix("s")): n for code, n in statuses.items()}
    return b


def board(*slos: str, guards: tuple[str, ...] = ()) -> LiveBoard:
    live = LiveBoard(
        [parse_slo(text, name=f"slo{i}") for i, text in enumerate(slos)],
        [parse_guard(text, name=f"guard{i}") for i, text in enumerate(guards)],
        window_s=10.0,
        clock=lambda: NOW,
    )
    # In the window (988..998): 18 answers of 200 and 2 of 503, so the 503 share is 10%.
    for t in (990.0, 995.0):
        live.add(bucket(t, s200=9, s503=1))
    live.add(bucket(970.0, s503=50))  # too old: outside the window
    live.add(bucket(999.0, s503=50))  # too new: not settled yet
    return live


def test_an_slo_is_measured_over_the_settled_window_only() -> None:
    (row,) = board("ratio(status == 503) < 5%").slo_rows(NOW)
    assert (row.state, row.observed) == ("fail", "10%")
    (row,) = board("ratio(status == 503) < 15%").slo_rows(NOW)
    assert row.state == "pass"


def test_late_parts_of_a_bucket_add_up() -> None:
    live = board("count(status == 503) == 3")
    live.add(bucket(995.0, s503=1))
    (row,) = live.slo_rows(NOW)
    assert (row.state, row.observed) == ("pass", "3")


def test_a_phase_or_fault_scoped_slo_is_measured_only_while_it_runs() -> None:
    live = board(
        "ratio(status == 503) < 5% during phase spike", "availability > 50% during fault x"
    )
    idle = live.slo_rows(NOW, phase="warmup", active=())
    assert [r.state for r in idle] == ["not now", "not now"]
    busy = live.slo_rows(NOW, phase="spike", active=("x",))
    assert [r.state for r in busy] == ["fail", "pass"]


def test_slos_over_the_whole_story_wait_for_the_end() -> None:
    (row,) = board("recovery_time(x) < 10s", "retry_after_compliance >= 99%").slo_rows(NOW)[:1]
    assert row.state == "at the end"


def test_an_empty_window_is_no_data_not_a_pass() -> None:
    live = LiveBoard([parse_slo("count(status == 500) == 0")], [], clock=lambda: NOW)
    (row,) = live.slo_rows(NOW)
    assert row.state == "no data"


def test_a_guard_shows_whether_its_condition_holds_now_or_it_was_breached() -> None:
    live = board(guards=("abort if ratio(status == 503) > 50% for 5s",))
    live.add(bucket(997.5, s503=9, s200=1))  # the last settled second: 90% 503s
    (row,) = live.guard_rows(NOW)
    assert (row.state, row.observed) == ("holding", "90%")
    (row,) = live.guard_rows(NOW, breached=("guard0",))
    assert row.state == "breached"
