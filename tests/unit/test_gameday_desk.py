"""The chaos desk's answers (what the chaos page and `harness inject/revert` get back), and how
a second terminal finds a running game day."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.faults.timeline import FaultConflict, SlotView, UnknownFault
from harness.gameday import ControlFile, GamedayClient, NoGameday
from harness.gameday.desk import CatalogueEntry, ChaosDesk
from harness.gameday.live import LiveBoard
from harness.safety import TargetRefused

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.


def view(name: str, state: str = "active", for_s: float | None = None) -> SlotView:
    return SlotView(
        name,
        f"fake {name}",
        state,
        1.0,
        None if for_s is None else 1.0 + for_s,
        True,
        "ana",
        "",
        None,
        "",
    )


class FakeTimeline:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str, float | None]] = []

    def inject_now(self, name: str, *, who: str, for_s: float | None = None) -> SlotView:
        self.calls.append(("inject", name, who, for_s))
        if name == "nope":
            raise UnknownFault("no fault 'nope'")
        if name == "busy":
            raise FaultConflict("fault 'busy' is already in force")
        return view(name, for_s=for_s)

    def revert_now(self, name: str | None, *, who: str) -> list[SlotView]:
        self.calls.append(("revert", name, who, None))
        return [view(name or "x", "reverted")]

    def views(self) -> list[SlotView]:
        return [view("slow")]


def desk(timeline: FakeTimeline) -> ChaosDesk:
    return ChaosDesk(
        scenario="gd",
        timeline=timeline,
        catalogue=[CatalogueEntry("slow", "fake slow", 30.0, False)],
        board=LiveBoard([], []),
        total_s=60.0,
        phase_now=lambda: (12.0, "steady"),
    )


def test_inject_answers_with_a_status_per_kind_of_refusal() -> None:
    timeline = FakeTimeline()
    chaos = desk(timeline)
    assert chaos.inject({"name": "slow", "who": "ana"}).status == 200
    assert chaos.inject({"name": "nope", "who": "ana"}).status == 404
    assert chaos.inject({"name": "busy", "who": "ana"}).status == 409
    assert chaos.inject({"name": "slow", "for": "soon"}).status == 400
    assert chaos.inject({"name": "slow", "for_s": -1}).status == 400
    assert chaos.inject({"who": "ana"}).status == 400


def test_a_catalogue_fault_lasts_its_for_unless_told_otherwise() -> None:
    timeline = FakeTimeline()
    chaos = desk(timeline)
    chaos.inject({"name": "slow", "who": "ana"})
    chaos.inject({"name": "slow", "who": "ana", "for": "1m30s"})
    chaos.inject({"name": "slow", "for_s": 5})
    assert [(c[2], c[3]) for c in timeline.calls] == [
        ("ana", 30.0),
        ("ana", 90.0),
        ("unknown", 5.0),
    ]


def test_revert_all_and_the_state_a_page_polls() -> None:
    timeline = FakeTimeline()
    chaos = desk(timeline)
    answer = chaos.revert({"all": True, "who": "bo"})
    assert answer.status == 200
    assert timeline.calls == [("revert", None, "bo", None)]
    state = chaos.state()
    assert (state["phase"], state["elapsed_s"], state["active"]) == ("steady", 12.0, ["slow"])
    assert state["catalogue"][0]["default_for_s"] == 30.0


@pytest.mark.integration  # a Python child
def test_the_control_file_is_owner_only_and_a_dead_games_file_is_no_game_day(
    tmp_path: Path,
) -> None:
    control = ControlFile(os.getpid(), "http://127.0.0.1:1", "p", "t0ken", "r", "gd")
    path = control.write(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ControlFile.read(tmp_path) == control
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    ControlFile(int(gone.stdout), "u", "p", "t", "r", "gd").write(tmp_path)
    with pytest.raises(NoGameday, match="which is gone") as raised:
        ControlFile.read(tmp_path)
    assert raised.value.exit_code == 3
    ControlFile.remove(tmp_path, pid=os.getpid())  # not ours any more: left alone
    assert path.exists()


def test_a_game_day_that_does_not_answer_is_no_game_day() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = GamedayClient(ControlFile(os.getpid(), f"http://127.0.0.1:{port}", "", "t", "", ""))
    with pytest.raises(NoGameday, match="no game day answers"):
        client.state()


def test_no_control_file_is_no_game_day(tmp_path: Path) -> None:
    with pytest.raises(NoGameday, match="no game day is running"):
        GamedayClient.find(tmp_path)


def test_a_control_file_pointing_off_loopback_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crafted gameday.json must not send the token and fault commands to another host.
    monkeypatch.delenv("HARNESS_ALLOW_TARGETS", raising=False)
    ControlFile(os.getpid(), "http://198.51.100.9:8089", "p", "t0ken", "r", "gd").write(tmp_path)
    with pytest.raises(TargetRefused, match=r'host "198\.51\.100\.9" is not loopback'):
        GamedayClient.find(tmp_path)
    ControlFile(os.getpid(), "http://127.0.0.1:8089", "p", "t0ken", "r", "gd").write(tmp_path)
    assert GamedayClient.find(tmp_path).control.url == "http://127.0.0.1:8089"
