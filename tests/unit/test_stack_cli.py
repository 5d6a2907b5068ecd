"""harness up / down / status: arguments and exit codes, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

pytestmark = pytest.mark.unit


def test_status_without_a_stack_says_so_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    assert f"no stack is up in {tmp_path}" in capsys.readouterr().out


def test_down_without_a_stack_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["down", "--state-dir", str(tmp_path)]) == 0
    assert "is down" in capsys.readouterr().out


def test_state_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "from-env"))
    main(["status"])
    assert str(tmp_path / "from-env") in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app-ports", "18001,x"], "expected comma-separated port numbers"),
        (["--app-ports", "18001,18002", "--lb-proxy-ports", "18101"], "must be as many"),
        (["--entry-port", "15432"], "port 15432 is given to both postgres and caddy entry"),
        (["--app-env", "NOEQUALS"], "expected KEY=VALUE"),
        (["--toxiproxy", "docker"], "'docker' is not one of"),
    ],
)
def test_bad_up_arguments_exit_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["up", "--state-dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "stack.json").exists()


def test_port_options_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARNESS_UP_ENTRY_PORT", "15433")  # the app-db proxy's default
    assert main(["up", "--state-dir", str(tmp_path)]) == 2
    assert "port 15433 is given to both" in capsys.readouterr().err
