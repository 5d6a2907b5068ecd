"""The run history: rows read from run directories, an index that survives its own deletion,
and names (latest, latest-pass, git refs) resolved to the right run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from harness.cli.entry import main
from harness.errors import BadInputError
from harness.history import HistoryIndex, read_row, record_run, resolve_run
from harness.history.table import history_table
from tests.unit.history_stores import T0, make_run

pytestmark = pytest.mark.unit


def three_runs(reports: Path) -> None:
    make_run(reports, "ci-gate-1", at=0, outcome="PASS", p99_ms=200)
    make_run(reports, "ci-gate-2", at=60, outcome="PASS", p99_ms=210)
    make_run(reports, "ci-gate-3", at=120, outcome="FAIL", p99_ms=900)
    make_run(reports, "other-1", at=180, outcome="PASS", scenario="other")
    for name in ("ci-gate-1", "ci-gate-2", "ci-gate-3", "other-1"):
        assert record_run(reports / name) is None


def test_a_row_holds_the_figures_of_its_summary(tmp_path: Path) -> None:
    root = make_run(tmp_path, "r", rps=123.0, p99_ms=250.0, ratio_503=0.04, recovery_s=3.5)
    row = read_row(root)
    assert row.figures["phase:spike:rps"] == 123.0
    assert row.figures["phase:spike:p99_ms"] == 250.0
    assert row.figures["total:ratio_503"] == 0.04
    assert row.figures["recovery:kill-app-1"] == 3.5
    assert row.git_commit == "a" * 40
    assert row.slos["spike-503"]["observed"] == 0.04
    assert row.passed


def test_the_index_is_rebuilt_from_the_run_directories_after_deletion(tmp_path: Path) -> None:
    three_runs(tmp_path)
    index = HistoryIndex(tmp_path)
    before = index.rows()
    assert [r.run for r in before] == ["other-1", "ci-gate-3", "ci-gate-2", "ci-gate-1"]
    index.path.unlink()
    after = index.rows()
    assert index.path.is_file()
    assert after == before


def test_a_damaged_index_is_rebuilt_too(tmp_path: Path) -> None:
    three_runs(tmp_path)
    HistoryIndex(tmp_path).path.write_bytes(b"not a database at all")
    assert len(HistoryIndex(tmp_path).rows("ci-gate")) == 3


def test_latest_pass_is_the_newest_passing_run_of_the_scenario(tmp_path: Path) -> None:
    three_runs(tmp_path)
    found = resolve_run("latest-pass", tmp_path, scenario="ci-gate")
    assert found == tmp_path / "ci-gate-2"
    assert resolve_run("latest", tmp_path, scenario="ci-gate") == tmp_path / "ci-gate-3"
    # The run being judged is never its own baseline.
    assert resolve_run("latest-pass", tmp_path, scenario="ci-gate", exclude="ci-gate-2") == (
        tmp_path / "ci-gate-1"
    )


def test_latest_pass_without_a_passing_run_is_bad_input(tmp_path: Path) -> None:
    make_run(tmp_path, "only", outcome="FAIL")
    record_run(tmp_path / "only")
    with pytest.raises(BadInputError, match="no passing run of scenario ci-gate"):
        resolve_run("latest-pass", tmp_path, scenario="ci-gate", what="BASELINE")


def test_a_git_ref_resolves_to_the_run_recorded_at_that_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        pytest.skip("no git")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
    }
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "one"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    reports = tmp_path / "reports"
    run = make_run(reports, "at-head", commit=None)
    (run / "provenance.json").unlink()  # recorded from the checkout, as a run's end does
    assert record_run(run, cwd=repo) is None
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "two"], cwd=repo, check=True, env=env
    )
    make_run(reports, "later", at=60, commit="f" * 40)
    record_run(reports / "later")
    monkeypatch.chdir(repo)
    assert resolve_run("HEAD~1", reports, scenario="ci-gate") == reports / "at-head"
    with pytest.raises(BadInputError, match="no run of scenario ci-gate at commit"):
        resolve_run("HEAD", reports, scenario="ci-gate")
    with pytest.raises(BadInputError, match="not a run directory, latest, latest-pass or a git"):
        resolve_run("no-such-ref-anywhere", reports)


def test_history_table_fits_100_columns(tmp_path: Path) -> None:
    three_runs(tmp_path)
    out = Console(width=100, record=True)
    out.print(history_table(HistoryIndex(tmp_path).rows(), "history"))
    text = out.export_text()
    assert "ci-gate" in text
    assert "FAIL" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_history_command_prints_json_of_one_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_runs(tmp_path)
    HistoryIndex(tmp_path).path.unlink()
    code = main(["history", "ci-gate", "--reports", str(tmp_path), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == ["ci-gate-3", "ci-gate-2", "ci-gate-1"]
    assert rows[0]["started_at"] == T0 + 120
    assert rows[0]["figures"]["total:p99_ms"] == 900


def test_history_of_a_directory_that_does_not_exist_is_empty_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--reports", str(tmp_path / "none")]) == 0
    assert "no runs" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()


def test_the_packages_export_what_they_name() -> None:
    import harness.compare
    import harness.history

    for package in (harness.history, harness.compare):
        for name in package.__all__:
            assert hasattr(package, name), (package.__name__, name)


def test_a_run_whose_directory_is_gone_is_never_the_baseline(tmp_path: Path) -> None:
    three_runs(tmp_path)
    shutil.rmtree(tmp_path / "ci-gate-2")  # still in the index
    found = resolve_run("latest-pass", tmp_path, scenario="ci-gate")
    assert found == tmp_path / "ci-gate-1"
