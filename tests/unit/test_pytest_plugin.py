"""The pytest plugin: settings from the command line, environment and ini file; scenarios built
from keyword arguments; results read and explained; the session stack's lifetime. The plain
functions are tested directly, the pytest wiring (options, ini keys, marker, fixtures a user
overrides, the failure report) through ``pytester`` in-process runs, with no stack and no load.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.errors import BadInputError, InfrastructureError, StackError
from harness.pytest_plugin import resolve_settings
from harness.record import RunDir, RunStatus
from harness.report import judge_stored, write_reports
from harness.run.request import RunOutcome
from harness.stack.base import StackInfo
from harness.testing import (
    DEFAULT_STATE_DIR,
    FailedSlos,
    RunResult,
    ScenarioRunner,
    Settings,
    apply_fields,
    file_scenario,
    result_of,
    scenario_name,
    session_stack,
    slo_line,
    with_stack,
)

from .test_report_synthetic import build_run

# In a test module, not a conftest: pytest refuses ``pytest_plugins`` in a non-root conftest.
pytest_plugins = ["pytester"]

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.

PHASES = [{"name": "base", "duration": "2s", "users": 1, "spawn_rate": 1}]
EXTERNAL = StackInfo("http://127.0.0.1:9", "", (), (), (), "")


# --- settings: command line > environment > ini file > default ------------------------------------


def settings(
    cli: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    ini: dict[str, str] | None = None,
) -> Settings:
    return resolve_settings(
        cli or {}, env or {}, ini or {}, cwd=Path("/work/here"), root=Path("/repo")
    )


def test_without_any_source_the_defaults_hold_relative_to_the_ini_file() -> None:
    assert settings() == Settings(
        stack="local",
        state_dir=Path("/repo/.harness"),
        reports=Path("/repo/reports"),
        keep_stack=False,
    )


def test_the_command_line_wins_over_the_environment_which_wins_over_the_ini_file() -> None:
    ini = {"harness_stack": "external", "harness_entry_url": "http://127.0.0.1:1"}
    env = {"HARNESS_ENTRY_URL": "http://127.0.0.1:2/", "HARNESS_REPORTS": "env-reports"}
    cli: dict[str, object] = {"harness_entry_url": "http://127.0.0.1:3", "harness_reports": None}
    got = settings(cli, env, ini)
    assert got.stack == "external"  # only the ini file says
    assert got.entry_url == "http://127.0.0.1:3"  # all three say: the command line wins
    assert got.reports == Path("/work/here/env-reports")  # the cli's None is "not given"
    assert settings({}, env, ini).entry_url == "http://127.0.0.1:2"  # the trailing / dropped


def test_relative_paths_start_where_pytest_started_or_at_the_ini_file() -> None:
    cli: dict[str, object] = {"harness_state_dir": "cli-state"}
    assert settings(cli).state_dir == Path("/work/here/cli-state")
    assert settings(env={"HARNESS_STATE_DIR": "env-state"}).state_dir == Path(
        "/work/here/env-state"
    )
    assert settings(ini={"harness_state_dir": "ini-state"}).state_dir == Path("/repo/ini-state")
    assert settings(ini={"harness_reports": "/abs/r"}).reports == Path("/abs/r")


@pytest.mark.parametrize(
    ("cli", "env", "ini", "expected"),
    [
        ({"harness_keep_stack": True}, {"HARNESS_KEEP_STACK": "0"}, {}, True),
        ({}, {"HARNESS_KEEP_STACK": "yes"}, {"harness_keep_stack": "false"}, True),
        ({}, {"HARNESS_KEEP_STACK": "off"}, {"harness_keep_stack": "true"}, False),
        ({}, {}, {"harness_keep_stack": "true"}, True),
        ({"harness_keep_stack": None}, {"HARNESS_KEEP_STACK": " "}, {}, False),
    ],
)
def test_keep_stack_is_a_flag_with_a_boolean_twin(
    cli: dict[str, object], env: dict[str, str], ini: dict[str, str], expected: bool
) -> None:
    assert settings(cli, env, ini).keep_stack is expected


@pytest.mark.parametrize(
    ("cli", "env", "ini", "message"),
    [
        (
            {"harness_stack": "compose"},
            {},
            {},
            "--harness-stack: expected one of local, external, got 'compose'",
        ),
        ({}, {"HARNESS_STACK": "docker"}, {}, "HARNESS_STACK: expected one of local, external"),
        ({}, {}, {"harness_keep_stack": "maybe"}, "ini harness_keep_stack: expected true or false"),
        (
            {"harness_stack": "external", "harness_entry_url": "127.0.0.1:8080"},
            {},
            {},
            "--harness-entry-url: expected an http(s) URL, got '127.0.0.1:8080'",
        ),
        (
            {"harness_stack": "external"},
            {},
            {},
            "--harness-stack external: needs the URL to send load to: --harness-entry-url",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_where_it_came_from(
    cli: dict[str, object], env: dict[str, str], ini: dict[str, str], message: str
) -> None:
    with pytest.raises(BadInputError) as raised:
        settings(cli, env, ini)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_default_state_dir_is_the_one_the_harness_command_uses() -> None:
    from harness.stack.state import DEFAULT_STATE_DIR as CLI_DEFAULT

    assert DEFAULT_STATE_DIR == CLI_DEFAULT


@pytest.mark.integration  # Python processes
def test_importing_the_plugin_loads_no_load_generator_and_no_heavy_library() -> None:
    # Every pytest session in an environment with the harness imports it (pytest11 entry point).
    code = (
        "import sys, harness.pytest_plugin; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('locust', 'gevent', 'pydantic', 'yaml', 'matplotlib', 'lark', 'psutil', 'jinja2'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, harness.pytest_plugin; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "harness.run" not in loaded
    assert "harness.stack" not in loaded


# --- scenarios from keyword arguments -------------------------------------------------------------


def test_fields_go_where_the_scenario_format_keeps_them(tmp_path: Path) -> None:
    data = apply_fields(
        {"name": "x", "load": {"phases": []}},
        {
            "phases": PHASES,
            "locustfile": "scenarios/users.py",
            "user_classes": ("ShopUser",),
            "workers": 2,
            "faults": [],
            "slos": ["count(status == 500) == 0"],
            "env": {"SHOP_MAX_INFLIGHT": "8"},
        },
        base_dir=tmp_path,
        where="harness_run",
    )
    assert data == {
        "name": "x",
        "load": {
            "phases": PHASES,
            "locustfile": str(tmp_path / "scenarios" / "users.py"),
            "user_classes": ["ShopUser"],  # a tuple, as YAML can write it
            "workers": 2,
        },
        "faults": [],
        "slos": ["count(status == 500) == 0"],
        "stack": {"env": {"SHOP_MAX_INFLIGHT": "8"}},
    }


def test_an_unknown_keyword_is_one_line_with_the_keyword_meant(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as raised:
        apply_fields({}, {"phaes": PHASES}, base_dir=tmp_path, where="harness_run")
    assert str(raised.value) == ("harness_run: unknown argument 'phaes' (did you mean \"phases\"?)")


def test_a_value_yaml_cannot_hold_is_refused_naming_the_argument(tmp_path: Path) -> None:
    phases = [{"name": "a", "duration": object(), "users": 1, "spawn_rate": 1}]
    with pytest.raises(BadInputError) as raised:
        apply_fields({}, {"phases": phases}, base_dir=tmp_path, where="harness_run")
    assert str(raised.value) == (
        "harness_run: phases[0].duration: expected text, a number, a list or a mapping, "
        "got a object"
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's repository: a locustfile and a scenario file next to it."""
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "users.py").write_text("")
    (tmp_path / "scenarios" / "gate.yaml").write_text(
        textwrap.dedent(
            """\
            stack: {kind: local, env: {SHOP_MAX_INFLIGHT: "8"}}
            load:
              locustfile: users.py
              phases: [{name: base, duration: 3s, users: 2, spawn_rate: 2}]
            slos: ["count(status == 500) == 0"]
            """
        )
    )
    return tmp_path


def runner(project: Path, stack_settings: Settings | None = None) -> ScenarioRunner:
    return ScenarioRunner(
        stack_settings or Settings(),
        EXTERNAL,
        workdir=project / "work",
        base_dir=project,
        default_name="test_x",
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"phases": [{"name": "a", "duration": 8, "users": 1, "spawn_rate": 1}]},
            "harness_run: load.phases[0].duration: expected a duration like 30s, got 8",
        ),
        ({"locustfile": None}, "harness_run: load.locustfile: expected a file path, got null"),
        ({"locustfile": " "}, 'harness_run: load.locustfile: expected a file path, got " "'),
        (
            {"slos": ["count(status == 500) = 0"]},
            'harness_run: slos[0]: unexpected "=" at column 22',
        ),
        (
            {"slos": ["recovery_time(kill-app-9) < 10s"]},
            'harness_run: slos[0]: unknown fault "kill-app-9"',
        ),
        (
            {"faults": [{"name": "k", "action": "kill", "target": "lb-app-1", "at": "1s"}]},
            "harness_run: faults[0].target: kill needs a shop instance like app-1",
        ),
    ],
)
def test_a_mistake_in_an_inline_scenario_is_one_line_naming_the_field(
    project: Path, fields: dict[str, Any], message: str
) -> None:
    inline = {"phases": PHASES, "locustfile": "scenarios/users.py", **fields}
    the_runner = runner(project)
    with pytest.raises(BadInputError) as raised:
        the_runner.write(
            apply_fields({}, inline, base_dir=project, where="harness_run"), "harness_run"
        )
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert str(project / "work") not in str(raised.value)  # named for the user, not the file


def test_an_inline_scenario_is_written_as_a_scenario_file_harness_run_reads(
    project: Path,
) -> None:
    from harness.scenario import load_scenario

    the_runner = runner(project, Settings(stack="local"))
    data = apply_fields(
        {"name": "test_x"},
        {"phases": PHASES, "locustfile": "scenarios/users.py", "slos": ["availability > 99%"]},
        base_dir=project,
        where="harness_run",
    )
    first = the_runner.write(data, "harness_run")
    second = the_runner.write(data, "harness_run")
    assert (first.name, second.name) == ("test_x.yaml", "test_x-2.yaml")
    scenario = load_scenario(first)
    assert scenario.name == "test_x"
    assert scenario.stack.kind == "local"
    assert scenario.load.locustfile == project / "scenarios" / "users.py"
    assert [slo.expr for slo in scenario.slos] == ["availability > 99%"]


def test_a_scenario_file_keeps_its_name_and_paths_when_rewritten_with_overrides(
    project: Path,
) -> None:
    from harness.scenario import load_scenario

    data = file_scenario(project / "scenarios" / "gate.yaml")
    data = apply_fields(data, {"workers": 0, "slos": []}, base_dir=project, where="gate")
    scenario = load_scenario(runner(project).write(data, "gate"))
    assert scenario.name == "gate"
    assert scenario.load.locustfile == project / "scenarios" / "users.py"
    assert scenario.slos == ()
    assert dict(scenario.stack.env) == {"SHOP_MAX_INFLIGHT": "8"}


def test_a_mistake_in_the_scenario_file_itself_is_reported_against_the_file(
    project: Path,
) -> None:
    broken = project / "scenarios" / "broken.yaml"
    broken.write_text("load: {locustfile: users.py, phases: [{name: a, duration: soon}]}\n")
    with pytest.raises(BadInputError) as raised:
        file_scenario(broken)
    assert str(raised.value).startswith(f"{broken}: load.phases[0].duration")


def test_the_session_stack_decides_where_a_scenario_goes() -> None:
    local = {"stack": {"kind": "local", "env": {"A": "1"}, "entry_url": "http://127.0.0.1:7"}}
    external = Settings(
        stack="external", entry_url="http://127.0.0.1:8", toxiproxy_url="http://127.0.0.1:9"
    )
    assert with_stack(local, Settings())["stack"] == local["stack"]  # as the user wrote it
    assert with_stack(local, external)["stack"] == {
        "kind": "external",
        "entry_url": "http://127.0.0.1:8",
        "toxiproxy_url": "http://127.0.0.1:9",
    }
    written_for_staging = {"stack": {"kind": "external", "entry_url": "http://staging.example.com"}}
    assert with_stack(written_for_staging, Settings())["stack"] == {"kind": "local"}
    assert with_stack({}, Settings())["stack"] == {}  # local, the format's default


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("test_checkout", "test_checkout"),
        ("test_x[a b-c]", "test_x-a-b-c"),
        ("[weird]", "weird"),
        ("[]", "harness-run"),
        ("t" * 100, "t" * 64),
    ],
)
def test_a_test_name_becomes_a_valid_scenario_name(text: str, name: str) -> None:
    assert scenario_name(text) == name


# --- results: judged, explained -------------------------------------------------------------------


def test_an_slo_line_shows_observed_against_threshold_in_the_unit_written() -> None:
    slo = {
        "name": "spike-503",
        "judged": True,
        "observed": 0.125,
        "threshold": 0.05,
        "comparator": "<",
        "unit": "%",
        "window": "phase spike",
        "detail": "",
    }
    assert slo_line(slo) == "spike-503: observed 12.5%, needs < 5% (phase spike)"
    never = {**slo, "name": "recovery", "observed": None, "threshold": 10.0, "unit": "s"}
    never |= {"window": "", "detail": "never recovered"}
    assert (
        slo_line(never) == "recovery: observed no value, needs < 10s (whole run): never recovered"
    )
    assert slo_line({"name": "x", "judged": False}) == "x: not judged"


def test_failed_slos_read_as_the_failure_in_an_assertion_message() -> None:
    failed = FailedSlos(
        ["no-500s: observed 3, needs == 0 (whole run)"],
        why="run FAIL (exit 1): 1 of 2 SLO(s) failed",
        report=Path("reports/x/report.html"),
    )
    assert failed == ("no-500s: observed 3, needs == 0 (whole run)",)
    assert repr(failed) == (
        "run FAIL (exit 1): 1 of 2 SLO(s) failed\n"
        "  no-500s: observed 3, needs == 0 (whole run)\n"
        "report: reports/x/report.html"
    )


@pytest.mark.usefixtures("plots_not_drawn")  # the plots: test_report_plots.py
def test_a_completed_run_is_judged_and_reported_when_the_engine_did_not(tmp_path: Path) -> None:
    run = build_run(tmp_path)  # one 500 among its responses
    result = result_of(RunOutcome(run, RunStatus.COMPLETED, 0))
    assert run.summary_json.is_file()
    assert run.junit_xml.is_file()
    assert run.report_html.is_file()
    assert result.summary == json.loads(run.summary_json.read_text())
    assert result.exit_code == 1
    assert not result.passed
    assert result.run_dir == run.root
    assert result.report == run.report_html
    assert "no-500s: observed 1, needs == 0 (whole run)" in result.failed_slos
    assert [v.name for v in result.judgement.verdicts][:2] == ["spike-503", "no-500s"]
    assert result.explain().startswith("run FAIL (exit 1): ")
    assert result.explain().endswith(f"report: {run.report_html}")


def engine_summary(run: RunDir) -> dict[str, Any]:
    """A summary.json as the engine writes it (valid against its schema, which every summary a
    test leaves must be: tests/summary_schema_check.py), saying PASS; no other report file."""
    judgement, notes = judge_stored(run)
    paths = write_reports(run, judgement, notes=notes)
    paths.report_html.unlink()
    paths.junit_xml.unlink()
    written: dict[str, Any] = json.loads(paths.summary_json.read_text())
    written.update(outcome="PASS", passed=True, exit_code=0, slos=[])
    paths.summary_json.write_text(json.dumps(written))
    return written


@pytest.mark.usefixtures("plots_not_drawn")  # the plots: test_report_plots.py
def test_the_reports_the_engine_wrote_are_read_not_rewritten(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    written = engine_summary(run)
    result = result_of(RunOutcome(run, RunStatus.COMPLETED, 0))
    assert result.summary == written
    assert result.passed
    assert not run.report_html.exists()


@pytest.mark.usefixtures("plots_not_drawn")  # the plots: test_report_plots.py
def test_the_engine_exit_code_wins_when_it_saw_what_the_report_cannot(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    engine_summary(run)  # the SLOs held; the engine still says 3
    left = "faults are still in force: fix the cause, then run `harness rollback`"
    result = result_of(RunOutcome(run, RunStatus.COMPLETED, 3, {"error": left}))
    assert result.exit_code == 3
    assert result.summary["error"] == left
    assert left in result.explain()


def canned(exit_code: int, run_dir: Path) -> RunResult:
    return RunResult(
        exit_code=exit_code,
        status="completed",
        run_dir=run_dir,
        summary={"error": "the Locust master exited (signal 9) mid-run"},
        judgement=None,  # type: ignore[arg-type]
        failed_slos=FailedSlos(),
    )


@pytest.mark.parametrize(
    ("exit_code", "raised", "message"),
    [
        (2, BadInputError, "harness_run: the Locust master exited (signal 9) mid-run"),
        (3, InfrastructureError, "harness_run: the run did not complete: the Locust master"),
        (130, KeyboardInterrupt, "harness_run: interrupted; every fault was reverted"),
    ],
)
def test_a_run_that_did_not_complete_raises_and_never_looks_like_a_result(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    exit_code: int,
    raised: type[BaseException],
    message: str,
) -> None:
    requests: list[Any] = []
    monkeypatch.setattr(
        "harness.run.pipeline.run",
        lambda scenario, request, say: requests.append((scenario, request)),
    )
    monkeypatch.setattr("harness.testing.result_of", lambda _: canned(exit_code, project))
    with pytest.raises(raised) as caught:
        runner(project).run_inline(phases=PHASES, locustfile="scenarios/users.py")
    assert str(caught.value).startswith(message)
    ((scenario, request),) = requests
    assert scenario.name == "test_x"  # the scenario model, built in memory: no file to run
    assert request.reports == Settings().reports


# --- the session stack ----------------------------------------------------------------------------


class FakeLocalStack:
    """LocalStack's lifecycle as session_stack uses it, recording the calls."""

    calls: ClassVar[list[str]] = []
    healthy = False
    fail_up = False

    def __init__(self, state_dir: Path, config: object = None) -> None:
        self.state_dir = Path(state_dir)
        self.config = config

    def status(self) -> Any:
        return type("Status", (), {"healthy": self.healthy})()

    def info(self) -> StackInfo:
        self.calls.append("info")
        return EXTERNAL

    def up(self) -> StackInfo:
        self.calls.append("up")
        if self.fail_up:
            raise StackError("caddy would not start")
        return EXTERNAL

    def down(self) -> None:
        self.calls.append("down")


@pytest.fixture
def fake_stack(monkeypatch: pytest.MonkeyPatch) -> type[FakeLocalStack]:
    monkeypatch.setattr(FakeLocalStack, "calls", [])
    monkeypatch.setattr("harness.stack.local.LocalStack", FakeLocalStack)
    return FakeLocalStack


def test_a_stack_the_session_started_is_brought_down_at_its_end(
    fake_stack: type[FakeLocalStack],
) -> None:
    with session_stack(Settings(), say=lambda _: None) as info:
        assert info == EXTERNAL
        assert fake_stack.calls == ["up"]
    assert fake_stack.calls == ["up", "down"]


def test_a_stack_that_was_up_already_is_used_and_left_up(
    fake_stack: type[FakeLocalStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_stack, "healthy", True)
    with session_stack(Settings(), say=lambda _: None):
        pass
    assert fake_stack.calls == ["info"]


def test_keep_stack_leaves_the_stack_up(fake_stack: type[FakeLocalStack]) -> None:
    with session_stack(Settings(keep_stack=True), say=lambda _: None):
        pass
    assert fake_stack.calls == ["up"]


def test_a_stack_that_fails_to_start_is_still_brought_down(
    fake_stack: type[FakeLocalStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_stack, "fail_up", True)
    with pytest.raises(StackError), session_stack(Settings(), say=lambda _: None):
        pass
    assert fake_stack.calls == ["up", "down"]


def test_a_failing_check_still_brings_the_stack_down(fake_stack: type[FakeLocalStack]) -> None:
    with pytest.raises(AssertionError), session_stack(Settings(), say=lambda _: None):
        raise AssertionError("the check failed")
    assert fake_stack.calls == ["up", "down"]


def test_an_external_stack_is_taken_as_it_is(fake_stack: type[FakeLocalStack]) -> None:
    external = Settings(stack="external", entry_url="http://127.0.0.1:8")
    with session_stack(external) as info:
        assert info.entry_url == "http://127.0.0.1:8"
        assert info.instances == ()
    assert fake_stack.calls == []


# --- the pytest wiring, through pytester ----------------------------------------------------------


def test_the_plugin_registers_its_options_ini_keys_and_marker(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest("--help").stdout.str()
    for flag in (
        "--harness-stack=local|external",
        "--harness-state-dir=DIR",
        "--harness-entry-url=URL",
        "--harness-toxiproxy-url=URL",
        "--harness-reports=DIR",
        "--harness-keep-stack",
    ):
        assert flag in help_text
    for ini in ("harness_stack", "harness_state_dir", "harness_reports", "harness_keep_stack"):
        assert f"{ini} (string)" in help_text
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.resilience: a resilience check" in markers


def test_options_reach_the_settings_fixture_over_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        harness_reports = ini-reports
        harness_state_dir = ini-state
        """
    )
    pytester.makepyfile(
        f"""
        from pathlib import Path

        def test_settings(harness_settings):
            root = Path({str(pytester.path)!r})
            assert harness_settings.reports == root / "ini-reports"
            assert harness_settings.state_dir == root / "cli-state"
            assert harness_settings.keep_stack is True
        """
    )
    result = pytester.runpytest("--harness-state-dir=cli-state", "--harness-keep-stack")
    result.assert_outcomes(passed=1)


def test_a_bad_option_fails_the_checks_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_settings(harness_settings): pass")
    result = pytester.runpytest("--harness-stack=compose")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--harness-stack: expected one of local, external*"])
    result.stdout.no_fnmatch_line("*Traceback*")


# A user's conftest: the stack fixture overridden (nothing starts), and the pipeline replaced by a
# fake that judges from the scenario it is given (the failing SLO is named "impossible").
FAKE_ENGINE_CONFTEST = """
import pytest
from harness.stack.base import StackInfo
from harness.testing import FailedSlos, RunResult


@pytest.fixture(scope="session")
def harness_stack():
    return StackInfo("http://127.0.0.1:9", "", (), (), (), "")


@pytest.fixture(autouse=True)
def fake_pipeline(monkeypatch, tmp_path):
    def run(scenario, request, say):
        return scenario

    def result_of(scenario):
        failing = any(slo.name == "impossible" for slo in scenario.slos)
        lines = ["impossible: observed 250, needs == 0 (whole run)"] if failing else []
        why = "run FAIL (exit 1): 1 of 1 SLO(s) failed" if failing else "run PASS (exit 0)"
        report = tmp_path / "reports" / "run" / "report.html"
        return RunResult(
            exit_code=1 if failing else 0,
            status="completed",
            run_dir=report.parent,
            summary={"scenario": scenario.name},
            judgement=None,
            failed_slos=FailedSlos(lines, why=why, report=report),
        )

    monkeypatch.setattr("harness.run.pipeline.run", run)
    monkeypatch.setattr("harness.testing.result_of", result_of)
"""

CHECKS = """
PHASES = [{"name": "base", "duration": "2s", "users": 1, "spawn_rate": 1}]


def test_passes(harness_run):
    outcome = harness_run(phases=PHASES, locustfile="users.py", slos=["availability > 0%"])
    assert outcome.passed, outcome.failed_slos
    assert outcome.summary["scenario"] == "test_passes"


def test_fails(harness_run):
    impossible = {"name": "impossible", "expr": "count(status == 200) == 0"}
    outcome = harness_run(phases=PHASES, locustfile="users.py", slos=[impossible])
    assert outcome.passed, outcome.failed_slos


def test_typo(harness_run):
    harness_run(phaes=PHASES, locustfile="users.py")


def test_unrelated():
    pass
"""


@pytest.fixture
def checks(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(FAKE_ENGINE_CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    (pytester.path / "users.py").write_text("")
    return pytester


def test_checks_with_an_overridden_stack_fixture_pass_and_fail_with_the_slo_named(
    checks: pytest.Pytester,
) -> None:
    result = checks.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails _*",
            "E*AssertionError: run FAIL (exit 1): 1 of 1 SLO(s) failed",
            "E*  impossible: observed 250, needs == 0 (whole run)",
            "E*report: *report.html",
            "*- harness runs -*",
            "run FAIL (exit 1): 1 of 1 SLO(s) failed",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*_ test_typo _*", "*harness_run: unknown argument 'phaes' (did you mean \"phases\"?)"]
    )


def test_every_check_using_the_fixtures_is_marked_resilience(checks: pytest.Pytester) -> None:
    selected = checks.runpytest("-m", "resilience", "--collect-only", "-q")
    selected.stdout.fnmatch_lines(["*test_passes", "*test_fails", "*test_typo", "*3/4 tests*"])
    left = checks.runpytest("-m", "not resilience", "-q")
    left.assert_outcomes(passed=1, deselected=3)


def test_a_session_that_does_not_use_the_plugin_is_not_changed_by_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_plain(request):
            assert [m.name for m in request.node.iter_markers()] == []

        def test_failing():
            assert 1 == 2
        """
    )
    result = pytester.runpytest("-W", "error", "--strict-markers")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["plugins: *harness-*"])  # loaded, and idle
    result.stdout.no_fnmatch_line("*harness runs*")
    assert not (pytester.path / "reports").exists()
    assert not (pytester.path / ".harness").exists()
