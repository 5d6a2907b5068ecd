"""``harness run``: the orchestration, in the CLI's own process (no Locust, no gevent here).

::

    harness run (this module)                 python -m harness.load.master      (Locust master)
    ─────────────────────────                 ───────────────────────────────
    load + resolve the scenario               reads scenario.json, opens the run store (the one
    stack up (or reuse a healthy one)         writer), listens for workers, writes master.json,
    RunDir.create + scenario.json             runs the phases and the fault timeline, reverts
    spawn the master ───────────────────────► every fault on its way out, records how it ended
    spawn N workers (once master.json says    python -m harness.load.worker, N times
      where it listens) ────────────────────► record every request, ship buckets every second
    forward SIGINT / SIGTERM to the master    (a guard's breach: the master stops the load,
    wait for the master; stop the workers      reverts its faults, and records "aborted")
    master died without recording an end?
      roll back pending faults, record the run as crashed (or interrupted)
    judge the run, write summary.json, junit.xml, report.html; print the verdict table
    the exit code: 0 every SLO met · 1 one failed · 4 aborted · 130 interrupted · 3 crashed

The Locust processes run in their own sessions, so a Ctrl-C at the terminal reaches this process
only, which forwards it to the master: the master stops the load and reverts the faults itself,
and stops the workers. Every child is stopped (by PID) before :func:`run` returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn

from rich.console import Console

from harness.errors import BadInputError, HarnessError, InfrastructureError, StackError
from harness.exit_codes import ExitCode
from harness.load.launch import SCENARIO_FILE, MasterArgs, WorkerArgs, read_master_file
from harness.record import RunDir, RunStatus, RunWriter
from harness.report.model import JudgementLike, Unjudged
from harness.safety import TargetPolicy, check_record, run_policy
from harness.scenario import Scenario, StackKind, load_scenario
from harness.stack.base import StackInfo
from harness.stack.config import LocalStackConfig
from harness.stack.local import LocalStack
from harness.stack.state import DEFAULT_STATE_DIR, StateDir

if TYPE_CHECKING:
    from harness.integrity import CheckTarget
    from harness.scenario import Stack as ScenarioStack
    from harness.stack.compose import ComposeStack, ComposeTopology

__all__ = ["RunOutcome", "RunRequest", "check_scenario", "conclude", "exec_worker", "judge", "run"]


MASTER_START_TIMEOUT_S: Final = 60.0  # importing Locust and the locustfile, opening the store
# Past the phases: waiting for workers, stopping, reverting faults, flushing. After a forwarded
# signal the master gets this long to stop before it is killed (and its faults rolled back here).
MASTER_STOP_GRACE_S: Final = 90.0
MASTER_OVERRUN_S: Final = 120.0
WORKER_EXIT_WAIT_S: Final = 10.0
TERM_GRACE_S: Final = 5.0
# How long the post-run checks wait for a stack that is still healing after the run.
POST_CHECK_SETTLE_S: Final = 20.0
# The compose project `harness run` uses when the request names none (as a `--project` option
# of `harness run` would read it).
PROJECT_ENV: Final = "HARNESS_RUN_PROJECT"
COMPOSE_FILE_ENV: Final = "HARNESS_RUN_COMPOSE_FILE"
# The scenario's stack keys that only a compose stack reads.
_COMPOSE_ONLY: Final = ("compose_file", "project", "entry", "backends", "toxiproxy", "proxies")


@dataclass(frozen=True)
class RunRequest:
    """What ``harness run`` was asked: the scenario file, and the flags that override it."""

    scenario: Path
    workers: int | None = None
    stack: StackKind | None = None
    reports: Path = Path("reports")
    state_dir: Path = DEFAULT_STATE_DIR
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    worker_timeout_s: float = 60.0
    # The compose project (stack kind compose); empty: $HARNESS_RUN_PROJECT, else the
    # scenario's stack.project, else "harness".
    compose_project: str = ""
    # The compose file; None: $HARNESS_RUN_COMPOSE_FILE, else the scenario's, else the sample's.
    compose_file: Path | None = None
    # A game day (`harness gameday`): the master serves Locust's web UI with the chaos tab on
    # this address and port, and faults without `at` may be injected by hand. Empty: a run.
    web_host: str = ""
    web_port: int = 8089
    # Hosts besides loopback that load and faults may reach (--allow-target), added to the
    # scenario's allow_targets (harness.safety).
    allow_targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. ``report``: its report.html, None when none could be written."""

    run_dir: RunDir
    status: RunStatus
    exit_code: int
    detail: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None


def judge(run_dir: RunDir, scenario: Scenario) -> tuple[JudgementLike, tuple[str, ...]]:
    """The verdict on a recorded run, and the notes its report must carry.

    Never raises: a verdict that cannot be reached (the store unreadable, a bug) is a judgement
    with nothing judged that does not pass, and a note saying why; :func:`conclude` then exits 3,
    so a broken verdict can neither turn a gate green nor pass for an SLO that failed.
    """
    from harness.verdict import judge as judge_run

    try:
        return judge_run(run_dir, scenario), ()
    except Exception as exc:  # a report of what was recorded beats no report at all
        status = _status_or_crashed(run_dir)
        unjudged = Unjudged(
            passed=False,
            aborted=status is RunStatus.ABORTED,
            incomplete=status is not RunStatus.COMPLETED and status is not RunStatus.ABORTED,
        )
        return unjudged, (f"SLOs not judged: the verdict failed: {type(exc).__name__}: {exc}",)


def _status_or_crashed(run_dir: RunDir) -> RunStatus:
    try:
        return run_dir.status
    except HarnessError:
        return RunStatus.CRASHED


def run(
    request: RunRequest,
    *,
    say: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Run a scenario from start to verdict. Raises :class:`BadInputError` (bad scenario or
    flags), :class:`InfrastructureError` (the stack would not start) or ``KeyboardInterrupt``
    (interrupted before the run directory existed); anything later is in the outcome.

    ``say`` gets the progress lines (stderr by default); ``console`` the verdict table at the
    end (stdout by default)."""
    tell = say or _stderr
    scenario = resolve_scenario(request)
    check_scenario(scenario, request.scenario)
    check_faults_supported(scenario)
    check_catalogue_faults(scenario, request)
    with _Signals() as signals:
        kind = scenario.stack.kind
        compose = (
            compose_stack_of(scenario, request.compose_project, request.compose_file)
            if kind == "compose"
            else None
        )
        info = bring_up_stack(scenario, request.state_dir, tell, compose=compose)
        entry_url = scenario.stack.entry_url or info.entry_url
        if scenario.stack.entry_url:  # not the stack the harness started: the scenario's word
            run_policy(scenario.allow_targets).check_url(entry_url, "the load's entry URL")
        run_dir = RunDir.create(request.reports, scenario.name)
        tell(f"run directory: {run_dir.root}")
        checks_target = _checks_target(
            entry_url, info, compose, run_policy(scenario.allow_targets, entry_url)
        )
        # The baseline of the post-run checks, before any load: their deltas are the run's.
        record_post_checks(run_dir, scenario, checks_target, "before", tell)
        local_workers = scenario.load.workers
        master_args = MasterArgs(
            run_dir=run_dir.root.absolute(),
            host=entry_url,
            stack_kind=kind,
            # The fault journal lives in the state directory for every stack the harness runs.
            state_dir=request.state_dir.absolute() if kind != "external" else None,
            stack_ref=json.dumps(compose.to_ref()) if compose is not None else "",
            toxiproxy_url=scenario.stack.toxiproxy_url or "",
            workers=local_workers + request.remote_workers,
            bind_host=request.master_bind,
            bind_port=request.master_port,
            worker_timeout_s=request.worker_timeout_s,
            web_host=request.web_host,
            web_port=request.web_port,
        )
        deadline = (
            time.monotonic()
            + MASTER_START_TIMEOUT_S
            + request.worker_timeout_s
            + scenario.total_duration
            + MASTER_OVERRUN_S
        )
        with _Children() as children:
            master: subprocess.Popen[bytes] | None = None
            try:
                _write_json(run_dir.root / SCENARIO_FILE, scenario.to_dict())
                master = children.start(master_args.argv())
                signals.forward_to(master, ready=lambda: read_master_file(run_dir.root) is not None)
                if local_workers:
                    port = _wait_for_master_port(run_dir, master, signals)
                    for _ in range(local_workers):
                        worker = WorkerArgs("127.0.0.1", port, scenario.load.locustfile)
                        children.start(worker.argv())
                master_rc = _wait_for_master(master, deadline, signals, tell)
            except _MasterGone as gone:
                master_rc = gone.returncode
            except KeyboardInterrupt:
                # Before the master could take the signal itself: SIGTERM is the same graceful
                # stop (it reverts its faults), and the workers follow it.
                signals.received.append(signal.SIGINT)
                master_rc = _stop_master(master)
            except (HarnessError, OSError) as exc:
                tell(str(exc))
                master_rc = _stop_master(master)
        settled = _settle(
            run_dir,
            master_rc,
            interrupted=bool(signals.received),
            state_dir=request.state_dir if kind != "external" else None,
            tell=tell,
        )
        # Every fault is reverted by now (or the run says it is not): read the checks again,
        # giving a stack that is still healing (an instance restarting) time to answer.
        record_post_checks(
            run_dir,
            scenario,
            checks_target,
            "after",
            tell,
            settle_s=0.0 if signals.received else POST_CHECK_SETTLE_S,
        )
        # Still under the signal handlers: a second Ctrl-C is noted, and cannot cut the report
        # of an interrupted run short.
        return conclude(settled, scenario, tell=tell, console=console)


def _checks_target(
    entry_url: str, info: StackInfo, compose: ComposeStack | None, policy: TargetPolicy
) -> CheckTarget:
    from harness.integrity import CheckTarget

    return CheckTarget(
        entry_url=entry_url,
        database_url=info.database_url,
        compose_project=compose.project if compose is not None else "",
        policy=policy,
    )


def record_post_checks(
    run_dir: RunDir,
    scenario: Scenario,
    target: CheckTarget,
    stage: Literal["before", "after"],
    tell: Callable[[str], None],
    *,
    settle_s: float = 0.0,
) -> None:
    """Read the scenario's post-run checks and record them in the run store (``check`` events).
    Never raises: a check that cannot be read, or a store that refuses it, leaves the SLOs that
    use the check without a value, and so failing."""
    if not scenario.checks:
        return
    from harness.integrity import record_checks

    try:
        writer = run_dir.writer()
    except HarnessError as exc:
        tell(f"post-run checks ({stage}) not recorded: {exc}")
        return
    try:
        record_checks(scenario.checks, target, stage, writer, settle_s=settle_s, tell=tell)
    except HarnessError as exc:
        tell(f"post-run checks ({stage}) not recorded: {exc}")
    finally:
        writer.close()


def check_scenario(scenario: Scenario, path: Path) -> None:
    """Parse the scenario's SLOs and guards and check the phases and faults they name, before
    anything starts: a typo must cost a second, not a run. One line, naming the file."""
    from harness.verdict import parse_checks

    try:
        parse_checks(scenario)
    except BadInputError as exc:
        raise BadInputError(f"{path}: {exc}") from None


def conclude(
    outcome: RunOutcome,
    scenario: Scenario,
    *,
    tell: Callable[[str], None],
    console: Console | None = None,
) -> RunOutcome:
    """Judge the run, write its reports, print the verdict table; the outcome with the exit code
    the verdict decides. Every run directory gets its report, also an aborted, interrupted or
    crashed run's (marked so): what was recorded is worth reading."""
    from harness.report import write_report
    from harness.report.data import collect
    from harness.report.terminal import show

    run_dir = outcome.run_dir
    judgement, notes = judge(run_dir, scenario)
    try:
        report = collect(run_dir, judgement, notes=notes)
        paths = write_report(run_dir, report)
    except HarnessError as exc:
        tell(f"writing the report failed: {exc}")
        code = ExitCode.INFRASTRUCTURE if outcome.exit_code == ExitCode.OK else outcome.exit_code
        return replace(outcome, exit_code=code)
    console = console or _console()
    show(report, console)
    console.print(f"report: {paths.report_html}", markup=False, highlight=False, soft_wrap=True)
    code = outcome.exit_code
    if code == ExitCode.OK:
        # A completed run: the SLOs decide (0 or 1); a verdict that could not be reached is 3.
        code = ExitCode.INFRASTRUCTURE if notes else report.exit_code
    return replace(outcome, exit_code=code, report=paths.report_html)


def resolve_scenario(request: RunRequest) -> Scenario:
    """The scenario file with the command line's overrides applied, validated again."""
    scenario = load_scenario(request.scenario, allow_targets=request.allow_targets)
    data = scenario.to_dict()
    if request.workers is not None:
        data["load"]["workers"] = request.workers
    if request.stack is not None:
        data["stack"]["kind"] = request.stack
        if request.stack != "compose":
            # A compose scenario run on another stack: its project and topology do not apply.
            for key in _COMPOSE_ONLY:
                data["stack"].pop(key, None)
    if data == scenario.to_dict():
        return scenario
    return Scenario.from_dict(data)


def check_catalogue_faults(scenario: Scenario, request: RunRequest) -> None:
    """A fault without ``at`` is only injected by hand, on a game day: in a run it would never
    happen, and an SLO about it would judge a fault that was never there."""
    if request.web_host:
        return
    for index, fault in enumerate(scenario.faults):
        if fault.at is None:
            raise BadInputError(
                f"{request.scenario}: faults[{index}].at: required by `harness run` (fault "
                f'"{fault.name}" has none: a catalogue fault for `harness gameday`)'
            )


def check_faults_supported(scenario: Scenario) -> None:
    """Refuse faults this harness cannot inject, before anything starts: running the load
    without them would pass a test that never happened."""
    if scenario.faults and scenario.stack.kind == "external":
        raise BadInputError(
            f"scenario {scenario.name!r}: faults need a stack the harness runs (local or "
            f"compose), not {scenario.stack.kind}"
        )


def compose_stack_of(
    scenario: Scenario, project: str = "", compose_file: Path | None = None
) -> ComposeStack:
    """The compose project a scenario of stack kind compose runs against. The command line
    (``project``, ``compose_file``, or their variables) overrides the scenario's stack section,
    which overrides the sample stack (``harness``, compose/docker-compose.yml). The topology
    (entry, backends, Toxiproxy, proxies) is the scenario's, else the sample's."""
    from harness.stack.compose import (
        DEFAULT_COMPOSE_FILE,
        DEFAULT_PROJECT,
        ComposeStack,
        ComposeStackConfig,
    )

    stack = scenario.stack
    file = (
        compose_file
        or Path(os.environ.get(COMPOSE_FILE_ENV) or stack.compose_file or DEFAULT_COMPOSE_FILE)
    ).absolute()
    if not file.is_file():
        raise BadInputError(f"compose file not found: {file}")
    topology = compose_topology(stack)
    return ComposeStack(
        ComposeStackConfig(
            project=project or os.environ.get(PROJECT_ENV) or stack.project or DEFAULT_PROJECT,
            compose_file=file,
            app_env=tuple(stack.env),
            topology=topology,
        )
    )


def compose_topology(stack: ScenarioStack) -> ComposeTopology:
    """Which services of a compose project play which part, as the scenario's stack section
    says; what it leaves out is the sample stack's."""
    from harness.stack.compose import ComposeTopology, ProxySpec

    topology = ComposeTopology()
    if stack.entry is not None:
        topology = replace(
            topology,
            entry_service=stack.entry.service,
            entry_port=stack.entry.port,
            ready_path=stack.entry.ready_path,
        )
    if stack.backends is not None:
        topology = replace(
            topology,
            backends=stack.backends.services,
            backend_port=stack.backends.port,
            health_path=stack.backends.health_path,
        )
    if stack.toxiproxy is not None:
        topology = replace(
            topology, toxiproxy_service=stack.toxiproxy.service, toxiproxy_port=stack.toxiproxy.port
        )
    proxies = tuple(ProxySpec(p.name, p.listen, p.upstream) for p in stack.proxies)
    return replace(topology, proxies=proxies)


def check_fault_targets(scenario: Scenario, info: StackInfo, where: str) -> None:
    """Every instance and proxy the faults name exists in the stack that is up (a compose
    project's are known only once it runs): one line naming the fault, before any load."""
    from harness.scenario import INSTANCE_ACTIONS, TOXIPROXY_ACTIONS

    for index, fault in enumerate(scenario.faults):
        if fault.target is None:
            continue
        if fault.action in INSTANCE_ACTIONS:
            known = [i.name for i in info.instances]
            what = "instance"
        elif fault.action in TOXIPROXY_ACTIONS:
            known = [p.name for p in info.proxies]
            what = "Toxiproxy proxy"
        else:
            continue
        if fault.target not in known:
            raise BadInputError(
                f"{where}: faults[{index}].target: no {what} {fault.target!r} in the stack "
                f"(it has {', '.join(known) or 'none'})"
            )


def bring_up_stack(
    scenario: Scenario,
    state_dir: Path,
    tell: Callable[[str], None],
    *,
    compose: ComposeStack | None = None,
) -> StackInfo:
    """The stack the scenario runs against: a healthy local stack or compose project already up
    is reused; else one is started (and left up for the next run). External stacks are taken as
    they are. ``compose``: the project of a compose scenario (:func:`compose_stack_of`)."""
    kind = scenario.stack.kind
    if kind == "external":
        assert scenario.stack.entry_url is not None  # the scenario model requires it
        return StackInfo(
            entry_url=scenario.stack.entry_url,
            toxiproxy_url=scenario.stack.toxiproxy_url or "",
            services=(),
            instances=(),
            proxies=(),
            admin_token="",
        )
    if kind == "compose":
        info = _bring_up_compose(compose or compose_stack_of(scenario), state_dir, tell)
        check_fault_targets(scenario, info, scenario.name)
        return info
    if kind != "local":
        raise InfrastructureError(
            f"stack kind {kind!r} is not available in this harness yet; use --stack local"
        )
    env = dict(scenario.stack.env)
    stack = LocalStack(state_dir, LocalStackConfig(app_env=tuple(env.items())))
    # Faults an earlier run left in force (a crash, a failed revert) would skew this one.
    if not rollback_faults(stack.state_dir, tell):
        raise StackError(
            f"faults of an earlier run are still in force on the stack in {stack.state_dir}; "
            "run `harness rollback` once the cause is fixed"
        )
    if stack.status().healthy:
        state = StateDir(stack.state_dir).load()
        running = dict(state.config.app_env) if state is not None else {}
        differing = {k: v for k, v in env.items() if running.get(k) != v}
        if differing:
            raise StackError(
                f"the stack up in {stack.state_dir} runs the shop without "
                f"{', '.join(f'{k}={v}' for k, v in sorted(differing.items()))}, which the "
                "scenario asks for; run `harness down` first"
            )
        tell(f"using the local stack already up in {stack.state_dir}")
        return stack.info()
    tell(f"starting the local stack in {stack.state_dir} ...")
    started = time.monotonic()
    info = stack.up()
    tell(
        f"stack up in {time.monotonic() - started:.1f}s; it stays up for the next run "
        "(`harness down` stops it)"
    )
    return info


def _bring_up_compose(
    stack: ComposeStack, state_dir: Path, tell: Callable[[str], None]
) -> StackInfo:
    # Docker missing or stopped: InfrastructureError (exit 3) with ComposeStack's own message,
    # before the journal is read (its records would need Docker to be reverted).
    stack.status()
    if not rollback_faults(state_dir, tell):
        raise StackError(
            f"faults of an earlier run are still in force (journal in {state_dir}); "
            "run `harness rollback` once the cause is fixed"
        )
    if stack.status().healthy:
        tell(f"using the compose project {stack.project!r} already up")
        return stack.info()
    tell(f"starting the compose project {stack.project!r} ...")
    started = time.monotonic()
    info = stack.up()
    tell(
        f"compose project up in {time.monotonic() - started:.1f}s; it stays up for the next run "
        f"(`harness down --stack compose --project {stack.project}` stops it)"
    )
    return info


def exec_worker(args: WorkerArgs) -> NoReturn:
    """Become a Locust worker (``harness worker``): this process is replaced, so signals and the
    exit code are the worker's own."""
    argv = args.argv()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606  # no shell: the argv is ours


# --- the children -------------------------------------------------------------------------------


class _Children:
    """The Locust processes of a run, each in its own session; all stopped on the way out."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> _Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            env=env,
            # Its own session: a terminal's Ctrl-C reaches `harness run` only, which forwards it
            # to the master; the workers are told to stop by the master.
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        """Wait a little for the children to leave by themselves, then SIGTERM, then SIGKILL."""
        alive = [p for p in self.processes if p.poll() is None]
        _wait_all(alive, WORKER_EXIT_WAIT_S)
        for process in alive:
            if process.poll() is None:
                _signal(process, signal.SIGTERM)
        _wait_all(alive, TERM_GRACE_S)
        for process in alive:
            if process.poll() is None:
                _signal(process, signal.SIGKILL)
                process.wait()


def _wait_all(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


def _wait_for_master_port(
    run_dir: RunDir, master: subprocess.Popen[bytes], signals: _Signals
) -> int:
    deadline = time.monotonic() + MASTER_START_TIMEOUT_S
    while True:
        info = read_master_file(run_dir.root)
        if info is not None and isinstance(info.get("port"), int):
            port: int = info["port"]
            return port
        if master.poll() is not None:
            raise _MasterGone(master.returncode)
        signals.deliver_held()
        if time.monotonic() > deadline:
            raise InfrastructureError(
                f"the Locust master did not listen within {MASTER_START_TIMEOUT_S:g}s"
            )
        time.sleep(0.02)


class _MasterGone(Exception):
    """The master exited before it said where it listens (its exit code tells why)."""

    def __init__(self, returncode: int) -> None:
        super().__init__(returncode)
        self.returncode = returncode


def _wait_for_master(
    master: subprocess.Popen[bytes],
    deadline: float,
    signals: _Signals,
    tell: Callable[[str], None],
) -> int | None:
    """The master's exit code; None when it had to be killed."""
    while True:
        try:
            return master.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
        signals.deliver_held()
        now = time.monotonic()
        if signals.received and signals.first_at is not None:
            if now - signals.first_at > MASTER_STOP_GRACE_S:
                tell("the Locust master did not stop in time after the signal; killing it")
                _signal(master, signal.SIGKILL)
                master.wait()
                return None
        elif now > deadline:
            tell("the Locust master overran the scenario's time; stopping it")
            signals.escalate(master)


def _stop_master(master: subprocess.Popen[bytes] | None) -> int | None:
    """SIGTERM (a graceful stop), then SIGKILL after the grace; its exit code, None if killed."""
    if master is None:
        return None
    if master.poll() is None:
        _signal(master, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return master.wait(timeout=MASTER_STOP_GRACE_S)
        _signal(master, signal.SIGKILL)
        master.wait()
        return None
    return master.returncode


# --- how the run ended ---------------------------------------------------------------------------


def _settle(
    run_dir: RunDir,
    master_rc: int | None,
    *,
    interrupted: bool,
    state_dir: Path | None,
    tell: Callable[[str], None],
) -> RunOutcome:
    status = run_dir.status
    # "running" in the store: no one recorded an end (the store's status says crashed then).
    ended = run_dir.meta.get("status") != RunStatus.RUNNING.value
    # The master is gone, so the store's writer lock is free: what is done here is recorded too.
    writer = run_dir.writer()
    try:
        # The master reverts its faults on every way out it lives through; a killed one, or one
        # whose reverts failed, leaves them in the journal: roll back from here, as
        # `harness rollback` would, with each step an event of this run.
        clean = state_dir is None or rollback_faults(state_dir, tell, on_event=writer)
        if ended:
            ends = [e for e in run_dir.events() if e.kind == "run_end"]
            detail = dict(ends[-1].detail) if ends else {}
        else:
            detail = {"error": f"the Locust master exited ({_exit_text(master_rc)}) mid-run"}
            status = RunStatus.INTERRUPTED if interrupted else RunStatus.CRASHED
            writer.finish(status, detail=detail)
    finally:
        writer.close()
    if not clean:
        detail["error"] = "faults are still in force: fix the cause, then run `harness rollback`"
        code = ExitCode.INFRASTRUCTURE
    elif status is RunStatus.COMPLETED:
        code = ExitCode.OK  # until the verdict says otherwise (conclude)
    elif status is RunStatus.ABORTED:
        code = ExitCode.ABORTED
    elif status is RunStatus.INTERRUPTED:
        code = ExitCode.INTERRUPTED
    elif master_rc == ExitCode.BAD_INPUT:
        code = ExitCode.BAD_INPUT
    else:
        code = ExitCode.INFRASTRUCTURE
    return RunOutcome(run_dir, status, code, detail)


def rollback_faults(
    state_dir: Path, tell: Callable[[str], None], *, on_event: RunWriter | None = None
) -> bool:
    """Revert whatever the stack's fault journal says may still be in force; True when nothing
    is left (also when there was nothing to do). ``on_event``: a run store to record it in."""
    from harness.faults import Journal, roll_back, run_store_listener

    listener = run_store_listener(on_event) if on_event is not None else None
    journal = Journal.in_state_dir(state_dir, on_event=listener)
    try:
        if not journal.pending():
            return True
        tell("rolling back the faults the run left in force")
        # Loopback, $HARNESS_ALLOW_TARGETS and a TCP Docker engine only: a journal is a file,
        # and a crafted one must not send requests (or the admin token) elsewhere.
        policy = run_policy(())
        result = roll_back(
            journal,
            on_outcome=lambda outcome: tell(outcome.line),
            check=lambda record: check_record(record, policy),
        )
    except HarnessError as exc:
        tell(f"rollback failed: {exc}")
        return False
    tell(result.summary)
    return result.clean


def _exit_text(rc: int | None) -> str:
    if rc is None:
        return "killed by the harness"
    if rc < 0:
        return f"signal {-rc}"
    return f"exit code {rc}"


# --- signals ------------------------------------------------------------------------------------


class _Signals:
    """SIGINT and SIGTERM while a run goes. Until the master process exists they interrupt this
    process (KeyboardInterrupt, as Ctrl-C does). Then they are forwarded to it, the same signal,
    once it is ready for them (``ready()``: it has installed its handlers); until then they are
    held, so a stop asked for while it is still starting is not lost, nor a traceback. Once it
    has exited they are only noted: the cleanup must not be cut short."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.first_at: float | None = None
        self._master: subprocess.Popen[Any] | None = None
        self._ready: Callable[[], bool] = lambda: True
        self._held: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def forward_to(
        self, master: subprocess.Popen[Any], ready: Callable[[], bool] = lambda: True
    ) -> None:
        self._master = master
        self._ready = ready

    def deliver_held(self) -> None:
        """Forward the signals held while the master was starting, if it is ready now."""
        master = self._master
        if self._held and master is not None and self._ready():
            held, self._held = self._held, []
            for signum in held:
                _signal(master, signum)

    def escalate(self, master: subprocess.Popen[Any]) -> None:
        """Stop an overrunning master as if interrupted (it reverts its faults)."""
        _signal(master, signal.SIGTERM)
        self._note(signal.SIGTERM)

    def _note(self, signum: int) -> None:
        self.received.append(signum)
        if self.first_at is None:
            self.first_at = time.monotonic()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        master = self._master
        if master is None:
            raise KeyboardInterrupt
        self._note(signum)
        if master.poll() is not None:
            return
        if self._ready():
            _signal(master, signum)
        else:
            self._held.append(signum)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _console() -> Console:
    # Piped output (CI logs, tests) gets room for whole lines instead of Rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def _stderr(line: str) -> None:
    print(f"harness: {line}", file=sys.stderr, flush=True)
