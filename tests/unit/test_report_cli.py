"""harness report RUN_DIR: rebuilds the reports from the store, and never crashes on a verdict."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from harness.cli import main
from harness.record import RunStatus

from .test_report_synthetic import build_run

# No module-wide unit mark: tests/unit/conftest.py marks every test unit but those marked
# integration here (they start processes or wait), which -m unit must leave out.
# The plots are drawn for real in test_report_plots.py and test_report_html.py; here they
# would only cost time (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("plots_not_drawn")


def summary_of(run_root: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run_root / "summary.json").read_text("utf-8"))
    return data


def test_report_on_a_crashed_run_says_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path, upto=20.0, finish=None)
    assert main(["report", str(run.root)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("INCOMPLETE  flash-sale  (crashed, exit 3")
    assert f"wrote {run.report_html}" in out
    html = run.report_html.read_text("utf-8")
    assert ">INCOMPLETE<" in html
    assert "status: crashed" in html
    assert summary_of(run.root)["outcome"] == "INCOMPLETE"
    assert run.junit_xml.is_file()


def test_report_on_a_missing_directory_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["report", str(missing)]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err == f"harness: run directory {missing}: does not exist or is not a directory\n"
    )
    assert captured.out == ""


def test_report_on_a_directory_that_is_not_a_run_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "report.html").exists()


def test_a_bad_step_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = build_run(tmp_path)
    assert main(["report", "--step", "0.25", str(run.root)]) == 2
    assert "multiple of 0.1 s" in capsys.readouterr().err


@pytest.mark.integration  # a Python child
def test_a_verdict_module_that_cannot_be_imported_fails_loudly_never_passes() -> None:
    # A packaging mistake (the verdict missing or broken) must stop the report, never make a
    # PASS out of nothing judged. In a fresh interpreter, so the real modules stay loaded here.
    code = (
        "import sys\n"
        "sys.modules['harness.verdict'] = None  # makes `import harness.verdict` fail\n"
        "from harness.cli import main\n"
        "raise SystemExit(main(['report', '.']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode != 0
    assert "PASS" not in result.stdout
    assert "harness.verdict" in result.stderr


def test_a_verdict_that_raises_is_reported_and_cannot_pass_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def judge(run_dir: object, scenario: object) -> object:
        raise ZeroDivisionError("bug in the verdict")

    monkeypatch.setattr("harness.verdict.judge", judge)
    run = build_run(tmp_path)
    assert main(["report", str(run.root)]) == 1
    assert "the verdict failed: ZeroDivisionError: bug in the verdict" in capsys.readouterr().out


def test_the_stored_scenario_is_what_gets_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[object] = []

    def judge(run_dir: object, scenario: object) -> object:
        seen.append(scenario)
        return types.SimpleNamespace(
            verdicts=(), recoveries=(), passed=True, aborted=False, incomplete=False
        )

    monkeypatch.setattr("harness.verdict.judge", judge)
    run = build_run(tmp_path, finish=RunStatus.ABORTED)
    assert main(["report", str(run.root)]) == 4  # the store says aborted, whatever the verdict
    (scenario,) = seen
    assert scenario.name == "flash-sale"  # type: ignore[attr-defined]
    assert "ABORTED" in capsys.readouterr().out


def test_report_with_the_real_verdict_when_it_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No skip when the verdict is missing: it is there, and an import error must fail here.
    run = build_run(tmp_path)
    code = main(["report", str(run.root)])
    summary = summary_of(run.root)
    assert code == summary["exit_code"]
    assert code in (0, 1)
    assert summary["notes"] == []
    slos = summary["slos"]
    assert [s["name"] for s in slos] == [  # type: ignore[attr-defined]
        "spike-503",
        "no-500s",
        "p99-warmup",
        "recovery",
    ]
    assert all(s["judged"] for s in slos)  # type: ignore[attr-defined]
    assert "spike-503" in capsys.readouterr().out
