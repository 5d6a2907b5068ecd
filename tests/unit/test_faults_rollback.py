"""``harness rollback`` against a fake Toxiproxy: every pending fault reverted newest first, bad
records reported without stopping the rest, the journal set aside only when all is clean."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import ProxyNotFound, ToxiproxyError
from harness.faults import Journal, RollbackOutcome, roll_back
from harness.faults import toxic as toxic_module
from harness.faults.toxic import AddToxics, DisableProxy, ToxicSpec

pytestmark = pytest.mark.unit


@dataclass
class FakeToxiproxy:
    toxics: dict[str, set[str]] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)  # toxic -> removals that fail first
    calls: list[str] = field(default_factory=list)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(f"remove {proxy}/{name}")
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            raise ToxiproxyError("toxiproxy at http://tp is unreachable: timed out", status=0)
        if name not in self.toxics.get(proxy, set()):
            raise ProxyNotFound("toxic not found", status=404)
        self.toxics[proxy].discard(name)

    def enable(self, proxy: str) -> None:
        self.calls.append(f"enable {proxy}")
        self.disabled.discard(proxy)


@pytest.fixture
def toxiproxy(monkeypatch: pytest.MonkeyPatch) -> FakeToxiproxy:
    fake = FakeToxiproxy()
    monkeypatch.setattr(toxic_module, "ToxiproxyClient", lambda url, timeout_s: fake)
    return fake


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


# Loopback: `harness rollback` refuses a record naming any other host (harness.safety).
TOXIPROXY = "http://127.0.0.1:8474"


def slow(name: str, proxy: str = "app-db") -> AddToxics:
    spec = ToxicSpec(f"harness-{name}", "latency", attributes=(("latency", 500),))
    return AddToxics(name, proxy, (spec,), TOXIPROXY)


def crashed_run(state_dir: Path, toxiproxy: FakeToxiproxy) -> None:
    """What a run killed mid-way leaves: two faults in force, one already reverted."""
    first, down, done = slow("slow-db"), DisableProxy("cut", "lb-app-1", TOXIPROXY), slow("old")
    toxiproxy.toxics = {"app-db": {"harness-slow-db"}}
    toxiproxy.disabled = {"lb-app-1"}
    with Journal.in_state_dir(state_dir) as journal:
        journal.reverted(journal.journaled(done), done)
        journal.injected(journal.journaled(first), first)
        journal.injected(journal.journaled(down), down)


def rollback_cli(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["rollback", "--state-dir", str(state_dir)])
    return code, capsys.readouterr().out.splitlines()


def test_rollback_without_a_journal_has_nothing_to_do(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = rollback_cli(state_dir, capsys)
    assert code == 0
    assert out == [f"nothing to roll back (journal {state_dir / 'faults.jsonl'})"]
    assert not state_dir.exists()  # a rollback never creates a state directory


def test_rollback_reverts_every_pending_fault_newest_first_then_sets_the_journal_aside(
    state_dir: Path, toxiproxy: FakeToxiproxy, capsys: pytest.CaptureFixture[str]
) -> None:
    crashed_run(state_dir, toxiproxy)

    code, out = rollback_cli(state_dir, capsys)

    assert code == 0
    assert toxiproxy.calls == ["enable lb-app-1", "remove app-db/harness-slow-db"]
    assert toxiproxy.toxics == {"app-db": set()}
    assert toxiproxy.disabled == set()
    assert out == [
        "reverted: cut: disable proxy lb-app-1 (connections refused)",
        "reverted: slow-db: latency toxic harness-slow-db (latency=500; downstream) on app-db",
        "rollback done: 2 fault(s) reverted, journal set aside",
    ]
    journal = Journal.in_state_dir(state_dir)
    assert not journal.path.exists()
    set_aside = [json.loads(line) for line in journal.previous_file.read_text().splitlines()]
    assert [(line["op"], line["name"]) for line in set_aside[-2:]] == [
        ("reverted", "cut"),
        ("reverted", "slow-db"),
    ]
    assert set_aside[-1]["detail"] == {"by": "rollback"}

    code, out = rollback_cli(state_dir, capsys)
    assert code == 0
    assert out[-1].startswith("nothing to roll back")


def test_a_revert_that_fails_at_first_is_retried_after_the_others(
    state_dir: Path, toxiproxy: FakeToxiproxy
) -> None:
    crashed_run(state_dir, toxiproxy)
    toxiproxy.failures = {"harness-slow-db": 1}
    sleeps: list[float] = []
    heard: list[RollbackOutcome] = []

    result = roll_back(
        Journal.in_state_dir(state_dir), on_outcome=heard.append, sleep=sleeps.append
    )

    assert result.clean
    assert result.cleared
    assert toxiproxy.calls == [
        "enable lb-app-1",
        "remove app-db/harness-slow-db",
        "remove app-db/harness-slow-db",
    ]
    assert sleeps == [0.5]
    assert [(o.name, o.reverted) for o in heard] == [("cut", True), ("slow-db", True)]


def test_a_fault_that_will_not_revert_stays_in_the_journal(
    state_dir: Path, toxiproxy: FakeToxiproxy
) -> None:
    crashed_run(state_dir, toxiproxy)
    toxiproxy.failures = {"harness-slow-db": 99}
    sleeps: list[float] = []

    result = roll_back(Journal.in_state_dir(state_dir), sleep=sleeps.append)

    assert not result.clean
    assert not result.cleared
    (failed,) = [o for o in result.outcomes if not o.reverted]
    assert failed.name == "slow-db"
    assert "unreachable: timed out" in failed.error
    assert failed.line.startswith("NOT reverted: slow-db: latency toxic")
    assert result.summary.startswith("rollback incomplete: could not revert slow-db.")
    assert sleeps == [0.5, 1.0]
    (pending,) = Journal.in_state_dir(state_dir).pending()
    assert pending.name == "slow-db"
    assert len(pending.errors) == 3  # one per attempt, each journaled


def test_an_unreadable_record_is_reported_and_the_others_still_reverted(
    state_dir: Path, toxiproxy: FakeToxiproxy, capsys: pytest.CaptureFixture[str]
) -> None:
    crashed_run(state_dir, toxiproxy)
    journal = Journal.in_state_dir(state_dir)
    future = {"v": 1, "op": "journaled", "id": "f1", "name": "flood", "t": 1.0, "record": {}}
    future["record"] = {"v": 1, "kind": "flood", "name": "flood"}
    with open(journal.path, "a") as out:
        out.write(json.dumps(future) + "\n")

    code, out = rollback_cli(state_dir, capsys)

    assert code == 3
    assert toxiproxy.disabled == set()
    assert toxiproxy.toxics == {"app-db": set()}
    assert out[0] == (
        "NOT reverted: flood: flood fault, line 7 of the journal: cannot rebuild it from its "
        "record: BadInputError: fault record 'flood': unknown kind 'flood'"
    )
    assert out[-1].startswith("rollback incomplete: could not revert flood.")
    assert [p.name for p in journal.pending()] == ["flood"]


def test_an_unreadable_journal_line_fails_the_rollback_and_says_to_check_by_hand(
    state_dir: Path, toxiproxy: FakeToxiproxy, capsys: pytest.CaptureFixture[str]
) -> None:
    crashed_run(state_dir, toxiproxy)
    journal = Journal.in_state_dir(state_dir)
    text = journal.path.read_text().splitlines()
    journal.path.write_text("\n".join([text[0], "garbage{", *text[1:]]) + "\n")

    code, out = rollback_cli(state_dir, capsys)

    assert code == 3
    assert toxiproxy.disabled == set()  # the readable faults are still reverted
    assert any(line.startswith("unreadable: ") and "line 2: not JSON" in line for line in out)
    assert f"check the stack by hand, then delete {journal.path}" in out[-1]
    assert journal.path.exists()


def test_rollback_refuses_while_a_live_run_holds_the_journal(
    state_dir: Path, toxiproxy: FakeToxiproxy, capsys: pytest.CaptureFixture[str]
) -> None:
    crashed_run(state_dir, toxiproxy)
    with Journal.in_state_dir(state_dir):  # the run is still going
        code = main(["rollback", "--state-dir", str(state_dir)])
    assert code == 3
    assert "in use by process" in capsys.readouterr().err
    assert toxiproxy.calls == []


def test_rollback_takes_the_state_dir_from_the_environment(
    state_dir: Path,
    toxiproxy: FakeToxiproxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    crashed_run(state_dir, toxiproxy)
    monkeypatch.setenv("HARNESS_STATE_DIR", str(state_dir))
    assert main(["rollback"]) == 0
    assert "2 fault(s) reverted" in capsys.readouterr().out


def test_rollback_can_be_given_the_stack_instead_of_the_records_reference(
    state_dir: Path, toxiproxy: FakeToxiproxy
) -> None:
    stack: Any = object()  # whatever the caller has; records of a local stack do not need it
    crashed_run(state_dir, toxiproxy)
    assert roll_back(Journal.in_state_dir(state_dir), stack=stack).clean
