"""pytest plugin: resilience checks as ordinary pytest tests in the user's repository.

Registered through the ``pytest11`` entry point, so every pytest session in an environment that
installs the harness loads it, including sessions that never use it (this repository's own). So
importing it costs the standard library and :mod:`harness.testing` only (no Locust, no gevent,
no pydantic), and it changes nothing for a test that does not ask for its fixtures: it adds
options, ini keys and a marker, and acts only on tests that use the fixtures below.
``-p no:harness`` switches it off.

Options, in the group ``harness`` of ``pytest --help``; each has an ini twin and an environment
variable. The command line wins over the environment, which wins over the ini file (as in
pytest-timeout: the environment belongs to one invocation, a CI job; the ini is the project's
default)::

    --harness-stack local|external  harness_stack          HARNESS_STACK          local
    --harness-state-dir DIR         harness_state_dir      HARNESS_STATE_DIR      .harness
    --harness-entry-url URL         harness_entry_url      HARNESS_ENTRY_URL      (external)
    --harness-toxiproxy-url URL     harness_toxiproxy_url  HARNESS_TOXIPROXY_URL  (external)
    --harness-reports DIR           harness_reports        HARNESS_REPORTS        reports
    --harness-keep-stack            harness_keep_stack     HARNESS_KEEP_STACK     false

``HARNESS_STATE_DIR`` is the variable the ``harness`` command reads too, so ``harness up`` and
the tests find the same stack. Relative paths in the ini file, and the defaults, are taken from
the ini file's directory; on the command line and in the environment, from where pytest started.

Fixtures; override any of them in a ``conftest.py``::

    harness_settings      session   the options, resolved: a harness.testing.Settings
    harness_local_config  session   LocalStackConfig for a local stack this session starts
                                    (ports, the shop's env); None: the defaults
    harness_stack         session   the running stack (StackInfo): a healthy local stack already
                                    up is used and left up; else one is started and brought down
                                    at the end (unless --harness-keep-stack)
    run_scenario          function  run_scenario("scenarios/ci_gate.yaml", workers=0, **overrides)
    harness_run           function  harness_run(phases=..., faults=..., slos=..., locustfile=...)

Both return a :class:`harness.testing.RunResult`::

    def test_checkout_survives_a_dead_backend(harness_run):
        outcome = harness_run(
            phases=[{"name": "base", "duration": "8s", "users": 10, "spawn_rate": 10}],
            slos=["count(status == 500) == 0"],
            locustfile="scenarios/shop_locustfile.py", user_classes=["ShopUser"],
        )
        assert outcome.passed, outcome.failed_slos

Bad input (a scenario mistake, an unknown keyword) and a run that could not complete fail the
test with one line; a failed test that ran scenarios gets a "harness runs" section in its report
with every failed SLO (observed against the threshold) and the report to open. Every test using
the fixtures is marked ``resilience``, so ``-m "not resilience"`` leaves them out.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import pytest

from harness.errors import BadInputError, HarnessError
from harness.testing import (
    STACK_CHOICES,
    HarnessRun,
    RunResult,
    RunScenario,
    ScenarioRunner,
    Settings,
    scenario_name,
    session_stack,
)

if TYPE_CHECKING:
    from harness.stack.base import StackInfo
    from harness.stack.config import LocalStackConfig

__all__ = ["OPTIONS", "Option", "resolve_settings", "settings_from_config"]

MARKER: Final = "resilience"
# A test using any of these runs against the harness stack: it gets the marker.
HARNESS_FIXTURES: Final = frozenset({"harness_stack", "run_scenario", "harness_run"})


@dataclass(frozen=True)
class Option:
    """One setting: its command-line flag, its ini key (also the option's ``dest``), its
    environment variable. ``metavar`` None: an on/off flag."""

    field: str  # of harness.testing.Settings
    flag: str
    ini: str
    env: str
    help: str
    metavar: str | None


OPTIONS: Final = (
    Option(
        "stack",
        "--harness-stack",
        "harness_stack",
        "HARNESS_STACK",
        "the stack resilience checks run against: local (started if not up) or external "
        "(default: local)",
        "local|external",
    ),
    Option(
        "state_dir",
        "--harness-state-dir",
        "harness_state_dir",
        "HARNESS_STATE_DIR",
        "state directory of the local stack, as `harness up --state-dir` (default: .harness)",
        "DIR",
    ),
    Option(
        "entry_url",
        "--harness-entry-url",
        "harness_entry_url",
        "HARNESS_ENTRY_URL",
        "external stack: the URL load is sent to",
        "URL",
    ),
    Option(
        "toxiproxy_url",
        "--harness-toxiproxy-url",
        "harness_toxiproxy_url",
        "HARNESS_TOXIPROXY_URL",
        "external stack: its Toxiproxy API, for faults on its links",
        "URL",
    ),
    Option(
        "reports",
        "--harness-reports",
        "harness_reports",
        "HARNESS_REPORTS",
        "where run directories are written (default: reports)",
        "DIR",
    ),
    Option(
        "keep_stack",
        "--harness-keep-stack",
        "harness_keep_stack",
        "HARNESS_KEEP_STACK",
        "leave a local stack this session started up at its end (`harness down` stops it)",
        None,
    ),
)

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


# --- options and settings ------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "resilience checks (load and faults against a stack)")
    for option in OPTIONS:
        where = f"[env {option.env}, ini {option.ini}]"
        if option.metavar is None:
            # default None, not False: "not given" must leave the environment and ini a say.
            group.addoption(
                option.flag,
                action="store_true",
                default=None,
                dest=option.ini,
                help=f"{option.help} {where}",
            )
        else:
            group.addoption(
                option.flag,
                dest=option.ini,
                default=None,
                metavar=option.metavar,
                help=f"{option.help} {where}",
            )
        parser.addini(option.ini, f"{option.help} ({option.flag})", default="")


def resolve_settings(
    cli: Mapping[str, object],
    env: Mapping[str, str],
    ini: Mapping[str, str],
    *,
    cwd: Path,
    root: Path,
) -> Settings:
    """The settings, each from the first source that sets it: the command line (``cli``, keyed
    by ini name, None when not given), the environment, the ini file; else the default.

    Relative paths: from ``cwd`` on the command line and in the environment, from ``root`` (the
    ini file's directory) in the ini file and for the defaults. A bad value is a one-line
    :class:`BadInputError` naming where it came from.
    """
    values: dict[str, Any] = {}
    for option in OPTIONS:
        given = cli.get(option.ini)
        if given is not None:
            values[option.field] = _convert(option, option.flag, given, cwd)
        elif env.get(option.env, "").strip():
            values[option.field] = _convert(option, option.env, env[option.env].strip(), cwd)
        elif ini.get(option.ini, "").strip():
            raw = ini[option.ini].strip()
            values[option.field] = _convert(option, f"ini {option.ini}", raw, root)
    settings = Settings(**values)
    if settings.stack == "external" and not settings.entry_url:
        raise BadInputError(
            "--harness-stack external: needs the URL to send load to: --harness-entry-url "
            "(ini harness_entry_url, env HARNESS_ENTRY_URL)"
        )
    # The defaults are relative: the project's, from its ini file's directory.
    return replace(
        settings,
        state_dir=_path(settings.state_dir, root),
        reports=_path(settings.reports, root),
    )


def _convert(option: Option, source: str, raw: object, base: Path) -> object:
    if option.metavar is None:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise BadInputError(f"{source}: expected true or false, got {raw!r}")
    text = str(raw).strip()
    if option.field == "stack":
        if text not in STACK_CHOICES:
            raise BadInputError(f"{source}: expected one of local, external, got {text!r}")
        return text
    if option.metavar == "URL":
        if not text.startswith(("http://", "https://")):
            raise BadInputError(f"{source}: expected an http(s) URL, got {text!r}")
        return text.rstrip("/")
    return _path(Path(os.path.expanduser(text)), base)


def _path(path: Path, base: Path) -> Path:
    return Path(os.path.abspath(base / path))


def _root(config: pytest.Config) -> Path:
    """Where the project's relative paths start: the ini file's directory, else the rootdir."""
    return config.inipath.parent if config.inipath is not None else config.rootpath


def settings_from_config(config: pytest.Config) -> Settings:
    """:func:`resolve_settings` over this session's command line, environment and ini file."""
    ini = {option.ini: config.getini(option.ini) for option in OPTIONS}
    return resolve_settings(
        {option.ini: config.getoption(option.ini) for option in OPTIONS},
        os.environ,
        {key: value for key, value in ini.items() if isinstance(value, str)},
        cwd=config.invocation_params.dir,
        root=_root(config),
    )


# --- the marker, and the report of a failed check ------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: a resilience check (load and faults against the harness stack); set on "
        "every test that uses harness_stack, run_scenario or harness_run",
    )


# tryfirst: before the mark plugin deselects by ``-m``, so ``-m "not resilience"`` sees it.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HARNESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(MARKER)


# The runners of a test, for the report hook to read their results.
_RUNNERS = pytest.StashKey[list[ScenarioRunner]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    runners = item.stash.get(_RUNNERS, None)
    if runners and report.when == "call" and report.failed:
        results = [result for runner in runners for result in runner.results]
        if results:
            # Whatever the test asserted, its report says how each run went, untruncated.
            report.sections.append(("harness runs", "\n\n".join(r.explain() for r in results)))
    return report


# --- fixtures ------------------------------------------------------------------------------------


def _fail(exc: HarnessError) -> NoReturn:
    # One line, no traceback through the harness: the message says what and where.
    pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def harness_settings(pytestconfig: pytest.Config) -> Settings:
    """The ``--harness-*`` options (ini, environment) resolved. Override to fix them in code."""
    try:
        return settings_from_config(pytestconfig)
    except HarnessError as exc:
        _fail(exc)


@pytest.fixture(scope="session")
def harness_local_config() -> LocalStackConfig | None:
    """How a local stack this session starts is set up (ports, the shop's env): None for the
    defaults. Override to return a ``harness.stack.config.LocalStackConfig``."""
    return None


@pytest.fixture(scope="session")
def harness_stack(
    harness_settings: Settings, harness_local_config: LocalStackConfig | None
) -> Iterator[StackInfo]:
    """The running stack for the whole session. Override to bring up your own and yield its
    ``StackInfo`` (with ``--harness-stack external`` for one the harness does not run)."""
    try:
        with session_stack(harness_settings, harness_local_config) as info:
            yield info
    except HarnessError as exc:
        _fail(exc)


def _runner(
    request: pytest.FixtureRequest, settings: Settings, stack: StackInfo, tmp_path: Path
) -> ScenarioRunner:
    runner = ScenarioRunner(
        settings,
        stack,
        # The written scenarios stay with the test's other temporary files, kept as pytest
        # keeps those (the last few sessions).
        workdir=tmp_path / "harness",
        base_dir=_root(request.config),
        default_name=scenario_name(request.node.name),
    )
    request.node.stash.setdefault(_RUNNERS, []).append(runner)
    return runner


@pytest.fixture
def run_scenario(
    request: pytest.FixtureRequest,
    harness_settings: Settings,
    harness_stack: StackInfo,
    tmp_path: Path,
) -> RunScenario:
    """``run_scenario(path, **overrides) -> RunResult``: run a scenario file (relative to the
    project root) against the session's stack. Overrides: ``workers``, ``phases``, ``faults``,
    ``slos``, ``guards``, ``locustfile``, ``user_classes``, ``env``, ``name``, ... (each replaces
    the file's)."""
    runner = _runner(request, harness_settings, harness_stack, tmp_path)

    def run(path: str | os.PathLike[str], /, **overrides: Any) -> RunResult:
        try:
            return runner.run_file(path, **overrides)
        except HarnessError as exc:
            _fail(exc)

    return run


@pytest.fixture
def harness_run(
    request: pytest.FixtureRequest,
    harness_settings: Settings,
    harness_stack: StackInfo,
    tmp_path: Path,
) -> HarnessRun:
    """``harness_run(**fields) -> RunResult``: run a scenario written inline, through the same
    pipeline as ``harness run``. Fields: ``phases`` and ``locustfile`` (relative to the project
    root) at least; ``faults``, ``slos``, ``guards``, ``user_classes``, ``workers``, ``env``,
    ``name`` (default: the test's name), ``description``, ``allow_targets``."""
    runner = _runner(request, harness_settings, harness_stack, tmp_path)

    def run(**fields: Any) -> RunResult:
        try:
            return runner.run_inline(**fields)
        except HarnessError as exc:
            _fail(exc)

    return run
