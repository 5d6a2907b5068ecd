"""Recovery time measured by a real `harness run` against a service whose recovery instant is
known to the millisecond: the measured value within one bucket (100 ms) of the truth.

The service is the test's own tiny HTTP server behind the harness's front proxy. The fault cuts
the link (``down`` on the edge); when it comes back, the service answers only ``503`` with
``Retry-After: 1`` until exactly 8.0 s after the revert, then ``200``. "The revert" is the very
timestamp the verdict measures from: the ``reverted`` line of the fault journal, which the run
store's ``fault_reverted`` event copies. A watcher thread tails the journal (every 2 ms) and the
service compares each request's arrival with that timestamp + 8.0 s, so the truth is 8.0 s by
construction, not by a guess about when the first client reconnected. Until the watcher has read
the revert the service is refusing too (it has seen the injection), so no request between the
link coming back and the journal line can be answered 200 early.

The load is the harness's own :class:`~harness.load.users.RetryingHttpUser`, honouring each
Retry-After: clients sleep a second after every 503, the pattern that fooled the earlier
definition (a lone 503, then silence, then 200s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import Target, run_harness, the_run, write_scenario

from harness.faults import Journal
from harness.record import EventKind

pytestmark = pytest.mark.integration

REFUSING_S = 8.0  # the truth: the service refuses this long after the revert

# Retry-After synchronises the retrying clients (they all sleep out the same second), so they
# alone may leave the first few hundred ms after the true recovery without a single request:
# nothing could observe it there. A few plain pollers that ignore Retry-After (as a monitor
# does) keep every bucket sampled, so the truth is observable to the bucket.
USERS = """\
    from locust import HttpUser, constant, task

    from harness.load.users import RetryingHttpUser


    class Caller(RetryingHttpUser):
        weight = 2
        wait_time = constant(0.2)

        @task
        def index(self):
            self.logical_request("GET", "/")


    class Poller(HttpUser):
        weight = 1
        wait_time = constant(0.05)

        @task
        def index(self):
            self.client.get("/")
    """


class Flip:
    """When the service refuses: from the fault's injection until the revert + ``REFUSING_S``,
    both read from the fault journal as the harness writes it."""

    def __init__(self, journal: Path, fault: str) -> None:
        self.journal = journal
        self.fault = fault
        self.injected = False
        self.reverted_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        offset = 0
        pending = b""
        while not self._stop.wait(0.002) and self.reverted_at is None:
            try:
                with self.journal.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                continue
            offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                entry = json.loads(line)
                if entry.get("name") != self.fault:
                    continue
                if entry["op"] == "injected":
                    self.injected = True
                elif entry["op"] == "reverted":
                    self.injected = True
                    self.reverted_at = float(entry["t"])

    def respond(self, path: str, n: int) -> tuple[int, dict[str, str]]:
        if not self.injected:
            return 200, {}
        back = None if self.reverted_at is None else self.reverted_at + REFUSING_S
        if back is None or time.time() < back:
            return 503, {"Retry-After": "1"}
        return 200, {}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def flipping(tmp_path: Path) -> Iterator[tuple[Flip, Target]]:
    flip = Flip(Journal.in_state_dir(tmp_path / "state").path, "cut")
    server = Target(flip.respond)
    yield flip, server
    server.close()
    flip.close()


def test_recovery_time_is_within_one_bucket_of_a_known_8_second_recovery(
    tmp_path: Path, flipping: tuple[Flip, Target]
) -> None:
    flip, target = flipping
    scenario = write_scenario(
        tmp_path,
        users_py=USERS,
        body=f"""\
        stack: {{kind: external, entry_url: "{target.url}", front_proxy: true}}
        load:
          locustfile: users.py
          phases:
            - {{name: warmup, duration: 4s, users: 30, spawn_rate: 100}}
            - {{name: main, duration: 18s, users: 30, spawn_rate: 100}}
        faults:
          - {{name: cut, action: down, target: edge, at: 4s, for: 2s}}
        slos:
          - {{name: recovers, expr: "recovery_time(cut) < 8.1s"}}
          - {{name: not-early, expr: "recovery_time(cut) > 7.9s"}}
        """,
    )
    state, reports = tmp_path / "state", tmp_path / "reports"
    code, out, err = run_harness(scenario, "--reports", str(reports), "--state-dir", str(state))
    run = the_run(reports)
    (reverted,) = [e.t for e in run.events() if e.kind is EventKind.FAULT_REVERTED]
    assert flip.reverted_at == reverted, "the service flipped on the revert the verdict reads"
    summary = json.loads(run.summary_json.read_text())
    (recovery,) = [r for r in summary["recoveries"] if r["fault"] == "cut"]
    measured = recovery["recovery_time_s"]
    assert measured is not None, recovery["detail"]
    error_ms = (measured - REFUSING_S) * 1000
    print(f"\nrecovery_time {measured:.3f}s, truth {REFUSING_S:.3f}s, error {error_ms:+.0f} ms")
    assert abs(error_ms) <= 100, recovery["detail"]
    assert code == 0, out + err
