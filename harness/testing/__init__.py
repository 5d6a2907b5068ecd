"""Resilience checks from Python code: the plain library under the pytest plugin.

::

    settings = Settings(stack="local", state_dir=Path(".harness"), reports=Path("reports"))
    with session_stack(settings) as info:        # up once; down at the end unless kept or
        runner = ScenarioRunner(                 # it was up already
            settings, info, workdir=Path("/tmp/x"), base_dir=Path.cwd()
        )
        result = runner.run_file("scenarios/ci_gate.yaml", workers=0)
        result = runner.run_inline(
            phases=[{"name": "base", "duration": "8s", "users": 10, "spawn_rate": 10}],
            slos=["count(status == 500) == 0"],
            locustfile="scenarios/shop_locustfile.py",
        )
        assert result.passed, result.failed_slos

A scenario given inline, or a file with overrides, is validated as ``harness run`` reads a file
(as if it were ``workdir/NAME.yaml``) and run by the same pipeline,
:func:`harness.run.pipeline.run`: one code path, and the run directory holds the same files
(scenario.json, summary.json, junit.xml, report.html). :meth:`ScenarioRunner.write` keeps a copy
as a file, for ``harness run``.

What a run returns, or raises:

- exit 0, 1 or 4 (passed, an SLO failed, aborted by a guard): a :class:`RunResult`; the test
  decides what it expected;
- exit 2 (bad input) and 3 (the stack or the load generator failed): :class:`BadInputError`
  and :class:`InfrastructureError`, never a result, so a test expecting an SLO to fail cannot
  pass because the stack was down;
- exit 130 (interrupted; every fault reverted): ``KeyboardInterrupt``, so the session stops as
  the user asked.

Importing this module is cheap, standard library only: the pytest plugin imports it in every
pytest session of a repository that installs the harness. The scenario model, the pipeline,
the verdict and the report (matplotlib) load when a run or a stack is asked for.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from harness.errors import BadInputError, InfrastructureError
from harness.exit_codes import ExitCode
from harness.testing.results import FailedSlos, RunResult, shown, slo_line, why

if TYPE_CHECKING:
    from harness.run.request import RunOutcome
    from harness.scenario import Scenario
    from harness.stack.base import StackInfo
    from harness.stack.config import LocalStackConfig

__all__ = [
    "FIELDS",
    "FailedSlos",
    "HarnessRun",
    "RunResult",
    "RunScenario",
    "ScenarioRunner",
    "Settings",
    "apply_fields",
    "file_scenario",
    "result_of",
    "scenario_name",
    "session_stack",
    "slo_line",
    "with_stack",
]

StackChoice = Literal["local", "external"]
STACK_CHOICES: Final[tuple[StackChoice, ...]] = ("local", "external")

# harness.stack.state.DEFAULT_STATE_DIR, spelled out: importing harness.stack loads psutil, which
# this module must not cost a pytest session that never asks for a stack (a test keeps them equal).
DEFAULT_STATE_DIR: Final = Path(".harness")

# The exit codes of ARCHITECTURE.md a run can end with.

Say = Callable[[str], None]


def _stderr(line: str) -> None:
    print(f"harness: {line}", file=sys.stderr, flush=True)


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where the checks run: the session's one stack, and where run directories go.

    ``stack`` ``local``: the stack in ``state_dir`` (brought up if it is not); ``external``: the
    system at ``entry_url``, with faults through the Toxiproxy API at ``toxiproxy_url``.
    ``keep_stack``: leave a local stack this session started up at its end.
    """

    stack: StackChoice = "local"
    state_dir: Path = DEFAULT_STATE_DIR
    entry_url: str | None = None
    toxiproxy_url: str | None = None
    reports: Path = Path("reports")
    keep_stack: bool = False


# --- the stack -----------------------------------------------------------------------------------


def external_info(settings: Settings) -> StackInfo:
    """An external stack as the harness sees it: URLs only, nothing it runs."""
    from harness.stack.base import StackInfo  # deferred: psutil, with the stack

    if not settings.entry_url:
        raise BadInputError("an external stack needs an entry URL (--harness-entry-url)")
    return StackInfo(
        entry_url=settings.entry_url,
        toxiproxy_url=settings.toxiproxy_url or "",
        services=(),
        instances=(),
        proxies=(),
        admin_token="",
    )


@contextmanager
def session_stack(
    settings: Settings, config: LocalStackConfig | None = None, *, say: Say = _stderr
) -> Iterator[StackInfo]:
    """The stack the session's checks run against, for the length of the ``with``.

    A healthy local stack already up in ``settings.state_dir`` is used as it is and left up: it
    is someone else's (``harness up``, another session). Otherwise one is started with
    ``config`` (default ports and settings), and brought down on the way out unless
    ``settings.keep_stack``. External stacks are taken as they are.
    """
    if settings.stack == "external":
        yield external_info(settings)
        return
    from harness.stack.local import LocalStack  # deferred: psutil, with the stack

    stack = LocalStack(settings.state_dir, config)
    if stack.status().healthy:
        say(f"using the local stack already up in {stack.state_dir}; it stays up")
        yield stack.info()
        return
    with ExitStack() as cleanup:
        if settings.keep_stack:
            say(f"the local stack in {stack.state_dir} stays up (`harness down` stops it)")
        else:
            # Registered before up(): a start that fails half-way is torn down too (down is
            # idempotent, and up already stops what it started when it fails).
            cleanup.callback(stack.down)
        say(f"starting the local stack in {stack.state_dir} ...")
        yield stack.up()


# --- building a scenario from keyword arguments --------------------------------------------------

# Each keyword a check may pass, and where the scenario format keeps it.
FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "name": ("name",),
    "description": ("description",),
    "locustfile": ("load", "locustfile"),
    "user_classes": ("load", "user_classes"),
    "workers": ("load", "workers"),
    "phases": ("load", "phases"),
    "faults": ("faults",),
    "slos": ("slos",),
    "guards": ("guards",),
    "env": ("stack", "env"),
    "allow_targets": ("allow_targets",),
}


def apply_fields(
    data: Mapping[str, Any], fields: Mapping[str, Any], *, base_dir: Path, where: str
) -> dict[str, Any]:
    """``data`` (a scenario as YAML would hold it) with ``fields`` put where the format keeps
    them. A relative ``locustfile`` is taken from ``base_dir``. The values are checked by the
    scenario model later; here only that each keyword is known and can be written as YAML."""
    out = copy.deepcopy(dict(data))
    for key, value in fields.items():
        path = FIELDS.get(key)
        if path is None:
            known = sorted(FIELDS)
            close = difflib.get_close_matches(key, known, n=1)
            hint = (
                f'did you mean "{close[0]}"?' if close else f"expected one of: {', '.join(known)}"
            )
            raise BadInputError(f"{where}: unknown argument {key!r} ({hint})")
        plain = _plain(value, f"{where}: {key}")
        if key == "locustfile" and isinstance(plain, str) and plain.strip():
            plain = _absolute(plain.strip(), base_dir)
        target = out
        for part in path[:-1]:
            inner = target.get(part)
            if not isinstance(inner, dict):
                inner = target[part] = {}
            target = inner
        target[path[-1]] = plain
    return out


def _plain(value: object, where: str) -> object:
    """``value`` as plain YAML data: tuples as lists, paths as strings; anything else refused
    here, with the argument named, rather than as a YAML representer's traceback."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise BadInputError(
        f"{where}: expected text, a number, a list or a mapping, got a {type(value).__name__}"
    )


def _absolute(path: str, base_dir: Path) -> str:
    # abspath, not resolve(): the scenario model does the same, and symlinks stay as written.
    return os.path.abspath(base_dir / os.path.expanduser(path))


def file_scenario(path: Path) -> dict[str, Any]:
    """A scenario file as data to rewrite elsewhere: validated as it is first (its mistakes are
    reported against it), its name kept, its paths made absolute."""
    import yaml

    from harness.scenario import load_scenario  # deferred: pydantic, with the model

    load_scenario(path)
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault("name", path.stem)
    load = data.get("load")
    if isinstance(load, dict) and isinstance(load.get("locustfile"), str):
        load["locustfile"] = _absolute(load["locustfile"], path.parent)
    stack = data.get("stack")
    if isinstance(stack, dict) and isinstance(stack.get("compose_file"), str):
        stack["compose_file"] = _absolute(stack["compose_file"], path.parent)
    return data


def with_stack(data: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """``data`` aimed at the session's stack: the stack a scenario names is the one it was
    written for, but a session runs its checks against one stack, the ``harness_stack``."""
    out = copy.deepcopy(dict(data))
    written = out.get("stack")
    written = dict(written) if isinstance(written, Mapping) else {}
    if settings.stack == "external":
        # The shop's env is for stacks the harness runs; an external one is what it is.
        stack: dict[str, Any] = {"kind": "external", "entry_url": settings.entry_url}
        if settings.toxiproxy_url:
            stack["toxiproxy_url"] = settings.toxiproxy_url
    elif written.get("kind", "local") == "local":
        stack = written  # its entry_url, if any, is an override the user meant
    else:
        # Written for another kind: its URLs and compose file point at that stack, not ours.
        stack = {"kind": "local", **({"env": written["env"]} if "env" in written else {})}
    out["stack"] = stack
    return out


# --- the result ----------------------------------------------------------------------------------


def result_of(outcome: RunOutcome) -> RunResult:
    """Judge the run the pipeline made and read its summary.json, writing the reports first if
    the pipeline did not (``harness run`` judges as ``harness report`` does, once it judges)."""
    from harness.report import judge_stored, write_report  # deferred: jinja2, the report
    from harness.report.data import collect  # deferred: the verdict and lark, with it

    run_dir = outcome.run_dir
    judgement, notes = judge_stored(run_dir)
    if not run_dir.summary_json.exists():
        write_report(run_dir, collect(run_dir, judgement, notes=notes))
    summary: dict[str, Any] = json.loads(run_dir.summary_json.read_text(encoding="utf-8"))
    # The pipeline's code covers what the report cannot see (faults left in force, bad input,
    # an interrupt); where it says 0, the report's verdict on the SLOs decides.
    exit_code = outcome.exit_code or int(summary.get("exit_code", 0))
    if outcome.detail.get("error") and not summary.get("error"):
        summary["error"] = str(outcome.detail["error"])
    lines = [slo_line(s) for s in summary.get("slos", []) if s.get("judged") and not s["passed"]]
    failed = FailedSlos(
        lines, why=why(summary, exit_code, len(lines)), report=shown(run_dir.report_html)
    )
    return RunResult(
        exit_code=exit_code,
        status=str(summary.get("status", outcome.status)),
        run_dir=run_dir.root,
        summary=summary,
        judgement=judgement,
        failed_slos=failed,
    )


# --- running --------------------------------------------------------------------------------------


class RunScenario(Protocol):
    """The ``run_scenario`` fixture: a scenario file, with keyword overrides (:data:`FIELDS`)."""

    def __call__(self, path: str | os.PathLike[str], /, **overrides: Any) -> RunResult: ...


class HarnessRun(Protocol):
    """The ``harness_run`` fixture: a scenario from keyword arguments (:data:`FIELDS`)."""

    def __call__(self, **fields: Any) -> RunResult: ...


class ScenarioRunner:
    """Runs scenarios against one stack, each validated as if it were a file in ``workdir``.

    Relative paths given as arguments (the scenario file, ``locustfile``) are taken from
    ``base_dir``, the project's root, wherever pytest was started.
    """

    def __init__(
        self,
        settings: Settings,
        stack: StackInfo,
        *,
        workdir: Path,
        base_dir: Path,
        default_name: str = "harness-run",
        say: Say = _stderr,
    ) -> None:
        self.settings = settings
        self.stack = stack
        self.workdir = workdir
        self.base_dir = base_dir
        self.default_name = default_name
        self.say = say
        self.results: list[RunResult] = []

    def run_file(self, path: str | os.PathLike[str], /, **overrides: Any) -> RunResult:
        """Run the scenario file ``path`` (relative to ``base_dir``), with ``overrides``."""
        where = os.fspath(path)
        data = file_scenario(Path(_absolute(where, self.base_dir)))
        return self._run(apply_fields(data, overrides, base_dir=self.base_dir, where=where), where)

    def run_inline(self, **fields: Any) -> RunResult:
        """Run the scenario ``fields`` describe: ``phases`` and ``locustfile`` at least."""
        data = apply_fields(
            {"name": self.default_name}, fields, base_dir=self.base_dir, where="harness_run"
        )
        return self._run(data, "harness_run")

    def scenario(self, data: Mapping[str, Any], where: str) -> Scenario:
        """The scenario ``data`` describes, aimed at the session's stack and validated as
        ``harness run`` reads a file in ``workdir``; mistakes are one-line
        :class:`BadInputError` naming ``where``."""
        text, path = self._text(data)
        return self._validated(text, path, where)

    def write(self, data: Mapping[str, Any], where: str) -> Path:
        """The scenario as a file in ``workdir``, validated as ``harness run`` will read it;
        mistakes are one-line :class:`BadInputError` naming ``where``, not the file."""
        text, path = self._text(data)
        self.workdir.mkdir(parents=True, exist_ok=True)
        n = 1
        stem = path.stem
        while path.exists():  # two runs of one test keep both files
            n += 1
            path = self.workdir / f"{stem}-{n}.yaml"
        path.write_text(text, encoding="utf-8")
        self._validated(text, path, where)
        return path

    def _text(self, data: Mapping[str, Any]) -> tuple[str, Path]:
        """The scenario as YAML, and the file in ``workdir`` it would be."""
        import yaml

        aimed = with_stack(data, self.settings)
        stem = _file_name(str(aimed.get("name") or self.default_name))
        text = yaml.safe_dump(aimed, sort_keys=False, allow_unicode=True)
        return text, self.workdir / f"{stem}.yaml"

    @staticmethod
    def _validated(text: str, path: Path, where: str) -> Scenario:
        from harness.scenario import parse_scenario  # deferred: pydantic, with the model
        from harness.verdict import parse_checks  # deferred: lark, with the SLO language

        try:
            scenario = parse_scenario(text, path)
            # The SLOs too: a typo in one must fail now, not after the run it was meant to judge.
            parse_checks(scenario)
        except BadInputError as exc:
            message = str(exc).removeprefix(f"{path}: ")
            raise BadInputError(f"{where}: {message}") from None
        return scenario

    def _run(self, data: Mapping[str, Any], where: str) -> RunResult:
        from harness.capacity import extensions_for  # deferred: the verdict and lark
        from harness.run.pipeline import run  # deferred: rich, psutil, the whole pipeline
        from harness.run.request import RunRequest  # deferred: pydantic, with the model

        scenario = self.scenario(data, where)
        outcome = run(
            scenario,
            RunRequest(
                reports=self.settings.reports,
                state_dir=self.settings.state_dir,
                # A staircase (capacity.stop_at_break) stops at its break, as under `harness run`.
                extensions=extensions_for(scenario),
                source=where,
            ),
            say=self.say,
        )
        result = result_of(outcome)
        self.results.append(result)
        error = result.summary.get("error") or "see the run directory"
        if result.exit_code == ExitCode.INTERRUPTED:
            raise KeyboardInterrupt(f"{where}: interrupted; every fault was reverted")
        if result.exit_code == ExitCode.BAD_INPUT:
            raise BadInputError(f"{where}: {error} (run directory {result.run_dir})")
        if result.exit_code == ExitCode.INFRASTRUCTURE:
            raise InfrastructureError(
                f"{where}: the run did not complete: {error} (run directory {result.run_dir})"
            )
        return result


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def scenario_name(text: str) -> str:
    """A scenario name (letters, digits, ``-``, ``_``, ``.``; at most 64) made from ``text``, a
    test's name: ``test_x[a b]`` -> ``test_x-a-b``."""
    name = _UNSAFE_NAME.sub("-", text).strip("-._")[:64].rstrip("-._")
    return name or "harness-run"


def _file_name(name: str) -> str:
    return _UNSAFE_NAME.sub("-", name).strip("-.") or "scenario"
