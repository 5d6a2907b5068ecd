"""The master's collector: shipments from any number of workers land in the store as their exact
sum, malformed ones are refused whole, and the live view reads what has arrived."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.errors import InfrastructureError
from harness.load.collector import Collector, Window, is_error
from harness.load.plan import PhasePlan
from harness.load.progress import fault_names, progress_line
from harness.load.recording import CONTEXT_KEY, AttemptContext, RequestRecorder, Shipment
from harness.record import EventKind, RunDir
from harness.scenario import Phase

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


def recorded(tag: str, requests: list[tuple[float, int]], *, final: bool = True) -> Shipment:
    rec = RequestRecorder(tag=tag, clock=lambda: T0 + 1000)

    class Response:
        def __init__(self, status: int) -> None:
            self.status_code = status
            self.headers: dict[str, str] = {}

    for t, status in requests:
        rec.on_request(response_time=10.0, response=Response(status), context={}, start_time=t)
    shipment = rec.shipment(final=final)
    assert shipment is not None
    return shipment


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return RunDir.create(tmp_path, "s")


def test_two_workers_parts_of_the_same_buckets_are_stored_as_their_sum(run: RunDir) -> None:
    a = [(T0 + i * 0.05, 200) for i in range(40)]
    b = [(T0 + i * 0.07, 503 if i % 3 else 200) for i in range(30)]
    with run.writer() as writer:
        collector = Collector(writer)
        collector.receive("node-a", recorded("w0", a))
        collector.receive("node-b", recorded("w1", b))
    stored: Counter[int] = Counter()
    for bucket in run.buckets():
        stored.update(bucket.statuses)
    assert stored == Counter(status for _, status in a + b)
    assert collector.attempts == 70
    assert collector.errors == sum(1 for _, s in b if s == 503)
    assert set(collector.finals) == {"node-a", "node-b"}
    assert collector.finals["node-b"]["requests"] == 30


def test_a_final_shipment_records_the_worker_totals_as_an_event(run: RunDir) -> None:
    with run.writer() as writer:
        Collector(writer).receive("node-a", recorded("w0", [(T0, 200), (T0, 0)]))
    (note,) = [e for e in run.events() if e.kind is EventKind.NOTE]
    assert note.name == "worker_totals"
    assert note.detail == {
        "worker": "w0",
        "node": "node-a",
        "requests": 2,
        "statuses": {"0": 1, "200": 1},
    }


def test_dropped_attempt_records_are_noted(run: RunDir) -> None:
    shipment = recorded("w0", [(T0, 200)], final=False)
    shipment["dropped"] = 12
    with run.writer() as writer:
        Collector(writer).receive("n", shipment)
    (note,) = [e for e in run.events() if e.kind is EventKind.NOTE]
    assert (note.name, note.detail) == ("attempts_dropped", {"worker": "w0", "dropped": 12})


def test_attempt_records_of_retried_requests_are_stored(run: RunDir) -> None:
    rec = RequestRecorder(tag="w2", clock=lambda: T0 + 100)

    class Response:
        status_code = 503
        headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}

    first = AttemptContext(5, 1)
    first.final = False
    rec.on_request(
        response_time=5.0, response=Response(), context={CONTEXT_KEY: first}, start_time=T0
    )
    shipment = rec.shipment(final=True)
    with run.writer() as writer:
        Collector(writer).receive("n", shipment)
    (record,) = run.attempts()
    assert (record.logical_id, record.attempt, record.status) == ("w2:5", 1, 503)


@pytest.mark.parametrize(
    ("shipment", "error"),
    [
        (None, "worker n: shipment is not a mapping"),
        ([], "worker n: shipment is not a mapping"),
        ({"buckets": []}, "worker n: malformed shipment"),
        (
            {"worker": "w", "buckets": None, "attempts": [], "dropped": 0, "final": False},
            "worker n: malformed shipment",
        ),
        (
            {
                "worker": "w",
                "buckets": [{"v": 99}],
                "attempts": [],
                "dropped": 0,
                "final": False,
                "totals": {},
            },
            "refusing a bad bucket",
        ),
    ],
)
def test_a_malformed_shipment_is_refused(run: RunDir, shipment: Any, error: str) -> None:
    with run.writer() as writer, pytest.raises(InfrastructureError, match=error):
        Collector(writer).receive("n", shipment)
    assert run.buckets() == []


def test_the_live_window_counts_attempts_and_errors_received_for_it(run: RunDir) -> None:
    requests = [(T0 + 0.01 * i, 500 if i % 4 == 0 else 200) for i in range(200)]
    with run.writer() as writer:
        collector = Collector(writer)
        collector.receive("n", recorded("w0", requests))
    window = collector.window(T0, 1.0)
    assert (window.attempts, window.errors) == (100, 25)
    assert window.rate == 100.0
    assert window.error_ratio == 0.25
    assert collector.window(T0 + 5).attempts == 0
    assert collector.window(T0 + 5).error_ratio == 0.0


def test_the_live_view_forgets_old_buckets(run: RunDir) -> None:
    with run.writer() as writer:
        collector = Collector(writer)
        collector.receive("n", recorded("w0", [(T0 + 0.1 * i, 200) for i in range(400)]))
    assert collector.window(T0, 1.0).attempts == 0  # long gone from the live view
    assert collector.window(T0 + 39.0, 1.0).attempts == 10
    assert len(run.buckets()) == 400  # the store keeps everything


def test_errors_are_no_response_and_server_errors() -> None:
    assert [s for s in (0, 200, 302, 404, 429, 500, 503) if is_error(s)] == [0, 500, 503]


def test_the_progress_line_says_where_the_run_is() -> None:
    spike = {"name": "spike", "duration": "10s", "users": 60, "spawn_rate": 5}
    plan = PhasePlan([Phase.model_validate(spike)])
    line = progress_line(
        elapsed=3.04,
        total=plan.total,
        phase=plan.at(3.04),
        phases=1,
        users=60,
        window=Window(start=T0, seconds=1.0, attempts=100, errors=2),
        faults=["kill-app-1", "slow-db"],
    )
    assert line == (
        "   3.0s/10.0s  spike 1/1  users 60  rps 100.0  err 2.0%  faults: kill-app-1, slow-db"
    )


def test_fault_names_come_from_names_or_fault_objects() -> None:
    class Fault:
        name = "maintenance"

    assert fault_names(["a", Fault()]) == ["a", "maintenance"]
