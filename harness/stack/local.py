"""The local stack: the sample shop as processes on 127.0.0.1, no Docker.

::

    client ─► Caddy ─┬─► toxiproxy lb-app-1 ─► app-1 ─┐
                     ├─► toxiproxy lb-app-2 ─► app-2 ─┼─► toxiproxy app-db ─► PostgreSQL
                     └─► toxiproxy lb-app-3 ─► app-3 ─┘

``up`` starts the pieces in dependency order, each detached (its own session, its log in the
state directory) so the stack outlives the command. Before each piece starts, its teardown is
registered, and each process is written to the state file as soon as it has a PID: a failure, an
interrupt or a SIGTERM stops what was started, and even a SIGKILLed harness leaves a record the
next ``up`` or ``down`` cleans up.

``up`` on a state directory whose stack is alive and healthy changes nothing and returns its info
(``reused`` is then True); a stack that is partly dead, paused or unhealthy is stale: it is torn
down and a new one started. The PostgreSQL data directory survives ``down``, so only the first
``up`` pays for ``initdb``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import BadInputError, InfrastructureError, StackError
from harness.private_files import write_private
from harness.proxy.launcher import port_is_free, start_toxiproxy
from harness.stack import local_shop, postgres, processes
from harness.stack.base import (
    DeclaredParts,
    Endpoint,
    ProcessState,
    StackInfo,
    StackOptions,
    StackSection,
    StackStatus,
)
from harness.stack.caddy import caddy_binary, caddy_config
from harness.stack.config import LocalStackConfig
from harness.stack.health import stack_status
from harness.stack.ports import PORT_FLAG, StackPorts, check_ports_free, taken
from harness.stack.processes import ProcessRecord, environ_set, log_tail, sigterm_interrupts
from harness.stack.readiness import http_get_json, http_ok, wait_ready
from harness.stack.state import DEFAULT_STATE_DIR, StackState, StateDir, gameday_pid
from harness.stack.topology import (
    APP,
    DATABASE,
    DB_NAME,
    DB_USER,
    ENTRY,
    TOXIPROXY,
    proxies,
    stack_info,
    toxiproxy_config,
)

READY_TIMEOUT_S = 30.0
# Restarted instances: Caddy's passive fail duration (2 s) and next active check (500 ms) pass.
REBALANCE_S = 2.5
TOXIPROXY_LOG_LEVEL = "warn"
# Caddy's admin API, in the state directory's 0700 caddy/ (never on a TCP port: see caddy.py).
ADMIN_SOCKET = "admin.sock"
# sockaddr_un.sun_path holds 108 bytes with the NUL.
MAX_SOCKET_PATH = 107
# Set in the environment of every process a stack starts, to its state directory: the way to
# find one whose PID never reached the state file.
STACK_MARK = "HARNESS_STACK_DIR"


class LocalStack:
    """The local-process stack recorded in ``state_dir``. ``config`` only matters to ``up``;
    every other method works from the state file, so any process can drive a stack that another
    process brought up."""

    kind: ClassVar[str] = "local"

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        config: LocalStackConfig | None = None,
        *,
        ports_asked: bool = False,
    ) -> None:
        # Absolute, because the records (log paths) are read from other working directories.
        self._dir = StateDir(Path(state_dir).absolute())
        self._wanted = config or LocalStackConfig()
        # Ports given on the command line: a stack up on others is restarted on these.
        self._ports_asked = ports_asked
        self.reused = False

    @classmethod
    def from_section(cls, section: StackSection, options: StackOptions) -> LocalStack:
        asked = dict(options.ports or {})
        ports = StackPorts(**{**LocalStackConfig().ports.__dict__, **asked})
        config = LocalStackConfig(ports=ports, app_env=tuple(section.env))
        return cls(options.state_dir, config, ports_asked=bool(asked))

    @classmethod
    def from_ref(cls, ref: Mapping[str, Any], *, state_dir: Path) -> LocalStack:
        named = ref.get("state_dir")
        if ref.get("kind") != cls.kind or not isinstance(named, str) or not named:
            raise BadInputError(f"not a local stack reference: {dict(ref)!r}")
        return cls(Path(named))

    def to_ref(self) -> dict[str, Any]:
        return {"kind": self.kind, "state_dir": str(self.state_dir)}

    @property
    def state_dir(self) -> Path:
        return self._dir.root

    @property
    def journal_dir(self) -> Path:
        return self._dir.root

    def owns_host(self, host: str) -> bool:
        return host in self.info().hosts()

    def release(self) -> None:
        """Nothing: the stack stays up for the next run."""

    def declared_parts(self) -> DeclaredParts:
        names = tuple(p.name for p in proxies(self._wanted))
        return DeclaredParts(instances=self._wanted.instance_names, proxies=names)

    def check_ports(self) -> None:
        """The ports a start needs, less those the stack recorded here holds (it is reused, or
        stopped before the new one starts)."""
        state = self._dir.load()
        held = {port for port, _ in state.config.ports.wanted()} if state is not None else set()
        if state is not None and self.status().healthy and not self._new_ports(state.config):
            return
        host = self._wanted.ports.host
        for port, wanted_by, field_name in self._wanted.ports.wanted_fields():
            if port not in held and not port_is_free(host, port):
                raise taken(port, PORT_FLAG[field_name], host, wanted_by)

    def bring_up(self, say: Callable[[str], None]) -> StackInfo:
        """A healthy stack already up in the state directory is used, brought to the settings
        asked for: the shop's instances restarted when its environment differs (the settings
        `harness up` was given, then the scenario's, and nothing an earlier scenario left), the
        whole stack when ports given on the command line do (else it keeps ``harness up``'s);
        else one is started, left up for the next run. A game day's stack is never changed."""
        state = self._dir.load()
        if state is not None and self.status().healthy:
            running = state.config
            env = running.env_for(self._wanted.app_env)
            change = local_shop.env_change(running.app_env, env)
            if self._new_ports(running):
                change = ", ".join(x for x in (change, "other ports") if x)
            if change:
                self._refuse_in_gameday(change)
            if self._new_ports(running):
                say(f"restarting the local stack in {self.state_dir}: {change}")
                self._wanted = replace(self._wanted, app_env=env, base_env=running.base_env)
                self.down()
            elif change:
                say(f"restarting the shop instances in {self.state_dir}: {change}")
                return self._restart_apps(env)
            else:
                self.reused = True
                say(f"using the local stack already up in {self.state_dir}")
                return self.info()
        say(f"starting the local stack in {self.state_dir} ...")
        started = time.monotonic()
        info = self.up()
        say(
            f"stack up in {time.monotonic() - started:.1f}s; it stays up for the next run "
            "(`harness down` stops it)"
        )
        return info

    def _new_ports(self, running: LocalStackConfig) -> bool:
        return self._ports_asked and running.ports != self._wanted.ports

    def _refuse_in_gameday(self, change: str) -> None:
        pid = gameday_pid(self.state_dir)
        if pid is not None:
            raise StackError(
                f"the stack up in {self.state_dir} is in a game day (process {pid}) and the "
                f"scenario asks for {change}; not touched: run it when the game day is over"
            )

    def _restart_apps(self, env: tuple[tuple[str, str], ...]) -> StackInfo:
        """The shop's instances stopped and started again with ``env``; the database, Toxiproxy
        (its toxics) and Caddy stay as they are."""
        with self._dir.locked():
            state = self._load()
            config = replace(state.config, app_env=env)
            state = replace(state, config=config)
            shop_env = local_shop.app_env(config)
            local_shop.migrate(shop_env, self._dir.log("migrate"))
            fresh = []
            for record in [p for p in state.processes if p.role == APP]:
                processes.stop([record])
                with self._marking_children():
                    fresh.append(
                        local_shop.spawn_app(record.name, record.endpoint, shop_env, record.log)
                    )
                state = state.with_process(fresh[-1])
                self._dir.save(state)
            for app in fresh:
                _wait_http(app, "/healthz")
            local_shop.leave_maintenance(fresh[0], config.admin_token)
            for app in fresh:
                _wait_http(app, "/readyz")
        time.sleep(REBALANCE_S)
        self.reused = True
        return stack_info(config)

    # --- lifecycle -----------------------------------------------------------------------------

    def up(self) -> StackInfo:
        with self._dir.locked():
            existing = self._dir.load()
            if existing is not None:
                if stack_status(self._dir.root, existing.processes).healthy:
                    if not self._wanted.satisfied_by(existing.config):
                        raise StackError(
                            f"a stack with other settings is already up in {self._dir.root}; "
                            "run `harness down` first to change them"
                        )
                    self.reused = True
                    return stack_info(existing.config)
                self._teardown(existing)
            self._stop_unrecorded()
            config = self._wanted.with_token()
            check_ports_free(config.ports)
            with sigterm_interrupts(), self._marking_children():
                self._start(config)
            self.reused = False
            return stack_info(config)

    def down(self, *, purge: bool = False) -> None:
        """Stop every process of the stack (idempotent); ``purge`` also deletes the database."""
        with self._dir.locked():
            state = self._dir.load()
            if state is not None:
                self._teardown(state)
            self._stop_unrecorded()
            if purge:
                shutil.rmtree(self._dir.pgdata, ignore_errors=True)

    def info(self) -> StackInfo:
        return stack_info(self._load().config)

    def status(self) -> StackStatus:
        state = self._dir.load()
        if state is None:
            return StackStatus(location=self._dir.root, processes=())
        return stack_status(self._dir.root, state.processes)

    # --- instance primitives -------------------------------------------------------------------

    def kill(self, instance: str) -> None:
        record = self._instance_record(instance)
        processes.send(record, signal.SIGKILL)
        # Return only once it is gone (and reaped, if it was our child): callers time from here.
        processes.wait_gone([record], processes.STOP_GRACE_S)

    def pause(self, instance: str) -> None:
        record = self._instance_record(instance)
        if not processes.send(record, signal.SIGSTOP):
            raise StackError(f"cannot pause {instance}: it is not running")
        _wait_state(record, ProcessState.PAUSED)

    def resume(self, instance: str) -> None:
        record = self._instance_record(instance)
        if not processes.send(record, signal.SIGCONT):
            raise StackError(f"cannot resume {instance}: it is not running")
        _wait_state(record, ProcessState.ALIVE)

    def restart(self, instance: str) -> None:
        with self._dir.locked():
            state = self._load()
            record = _instance_of(state, instance)
            processes.stop([record])
            _truncate(record.log)
            with self._marking_children():
                fresh = processes.spawn(
                    record.name,
                    record.role,
                    record.argv,
                    endpoint=record.endpoint,
                    log=record.log,
                    env=record.env,
                )
            self._dir.save(state.with_process(fresh))
        # Alive is enough: whether it is *ready* depends on the database link, which a fault
        # may be cutting on purpose; the load balancer's health checks decide about traffic.
        _wait_http(fresh, "/healthz")

    # --- internals -----------------------------------------------------------------------------

    def _load(self) -> StackState:
        state = self._dir.load()
        if state is None:
            raise StackError(f"no stack is up in {self._dir.root}; run `harness up` first")
        return state

    def _instance_record(self, instance: str) -> ProcessRecord:
        return _instance_of(self._load(), instance)

    def _start(self, config: LocalStackConfig) -> None:
        ports, host = config.ports, config.ports.host
        self._dir.logs.mkdir(parents=True, exist_ok=True)
        state = StackState(config=config)
        self._dir.save(state)

        def record(rec: ProcessRecord) -> None:
            nonlocal state
            state = state.with_process(rec)
            self._dir.save(state)

        def stop_named(name: str) -> None:
            rec = state.process(name)
            if rec is not None:
                processes.stop([rec])

        with ExitStack() as undo:
            # Registered first, so it runs last: a failed start leaves no state behind.
            undo.callback(self._dir.clear)

            # LIFO: the recorded server is stopped first; then any server on our data
            # directory that escaped the record (interrupted between its start and the record).
            undo.callback(self._stop_unrecorded)
            undo.callback(stop_named, "postgres")
            record(self._start_postgres(Endpoint(host, ports.postgres), config.db_password))

            undo.callback(stop_named, "toxiproxy")
            toxiproxy = self._start_toxiproxy(config)
            record(toxiproxy)
            self._check_proxies(config, toxiproxy)

            app_env = local_shop.app_env(config)
            local_shop.migrate(app_env, self._dir.log("migrate"))

            apps = []
            for name, port in zip(config.instance_names, ports.apps, strict=True):
                undo.callback(stop_named, name)
                endpoint = Endpoint(host, port)
                apps.append(local_shop.spawn_app(name, endpoint, app_env, self._dir.log(name)))
                record(apps[-1])
            for app in apps:
                _wait_http(app, "/healthz")
            local_shop.leave_maintenance(apps[0], config.admin_token)
            for app in apps:
                _wait_http(app, "/readyz")

            undo.callback(stop_named, "caddy")
            caddy = self._spawn_caddy(config)
            record(caddy)
            # Through Caddy and a proxy to an instance: the shop is served end to end.
            _wait_http(caddy, "/readyz")
            undo.pop_all()

    def _start_postgres(self, endpoint: Endpoint, password: str) -> ProcessRecord:
        log = self._dir.log("postgres")
        _truncate(log)
        pgdata = self._dir.pgdata
        if postgres.outdated(pgdata):
            # Its login role is the superuser, which cannot be demoted: made again (test data).
            shutil.rmtree(pgdata)
        existed = (pgdata / postgres.MARKER).exists()
        postgres.init_cluster(pgdata, user=DB_USER, password=password, database=DB_NAME)
        if existed:
            # The cluster outlives `down`; this stack's password replaces the last one's.
            postgres.set_password(pgdata, user=DB_USER, password=password)
        process = postgres.start_postgres(
            self._dir.pgdata, host=endpoint.host, port=endpoint.port, log_file=log
        )
        return processes.adopt(
            process, "postgres", DATABASE, endpoint=endpoint, log=log, stop_signal=signal.SIGINT
        )

    def _start_toxiproxy(self, config: LocalStackConfig) -> ProcessRecord:
        log = self._dir.log("toxiproxy")
        _truncate(log)
        _write_state_file(
            self._dir.toxiproxy_config, json.dumps(toxiproxy_config(config), indent=2)
        )
        endpoint = Endpoint(config.ports.host, config.ports.toxiproxy_api)
        try:
            # The real server logs every connection at trace level by default: the health
            # checks alone would grow its log by megabytes an hour. The launcher passes our
            # environment on, and takes no other, so set it here (a user's LOG_LEVEL wins).
            with environ_set("LOG_LEVEL", TOXIPROXY_LOG_LEVEL, keep_existing=True):
                _, process = start_toxiproxy(
                    kind=config.toxiproxy,
                    host=endpoint.host,
                    port=endpoint.port,
                    config_file=self._dir.toxiproxy_config,
                    log_file=log,
                    # GET /metrics for a game day's Prometheus: bytes per link, the process.
                    metrics=("proxy", "runtime"),
                )
        except InfrastructureError as exc:
            raise StackError(f"toxiproxy: {exc}; last lines of {log}:\n{log_tail(log)}") from exc
        return processes.adopt(process, "toxiproxy", TOXIPROXY, endpoint=endpoint, log=log)

    def _check_proxies(self, config: LocalStackConfig, toxiproxy: ProcessRecord) -> None:
        """-config creates the proxies before the API answers, but one whose port was taken
        meanwhile is only logged, and the rest of the file skipped: all of them must exist."""
        names = {p.name for p in proxies(config)}
        listed = http_get_json(toxiproxy.endpoint.url("/proxies"), timeout_s=5.0)
        found = listed.keys() if isinstance(listed, dict) else set()
        if not names <= found:
            raise StackError(
                f"toxiproxy: proxies {', '.join(sorted(names - found))} were not created; "
                f"last lines of {toxiproxy.log}:\n{log_tail(toxiproxy.log)}"
            )

    def _spawn_caddy(self, config: LocalStackConfig) -> ProcessRecord:
        ports, host = config.ports, config.ports.host
        self._dir.caddy.mkdir(parents=True, exist_ok=True)
        # Only this user may enter: the admin socket in it reconfigures Caddy to anyone who can.
        self._dir.caddy.chmod(0o700)
        config_file = self._dir.caddy / "caddy.json"
        entry = Endpoint(host, ports.entry)
        document = caddy_config(
            entry=entry,
            upstreams=[Endpoint(host, port) for port in ports.lb_proxies],
            admin_socket=_socket_or_none(self._dir.caddy / ADMIN_SOCKET),
            storage_dir=self._dir.caddy / "data",
        )
        _write_state_file(config_file, json.dumps(document, indent=2))
        log = self._dir.log("caddy")
        _truncate(log)
        caddy_home = str(self._dir.caddy)
        return processes.spawn(
            "caddy",
            ENTRY,
            [str(caddy_binary()), "run", "--config", str(config_file)],
            endpoint=entry,
            log=log,
            # Keep Caddy's autosave and data out of the user's home directory.
            env={"XDG_CONFIG_HOME": caddy_home, "XDG_DATA_HOME": caddy_home},
        )

    def _teardown(self, state: StackState) -> None:
        """Stop the state's processes, the last started first, each layer together. A process
        that survives even SIGKILL does not stop the rest; the state is then kept, so the next
        ``down`` tries again."""
        failures = []
        for layer in processes.layers(state.processes):
            try:
                processes.stop(layer)
            except StackError as exc:
                failures.append(str(exc))
        if failures:
            raise StackError("; ".join(failures))
        self._dir.clear()

    def _marking_children(self) -> contextlib.AbstractContextManager[None]:
        """Every process started in the block carries this stack's mark. Through our own
        environment, because the PostgreSQL and Toxiproxy helpers pass theirs on, and take none."""
        return environ_set(STACK_MARK, str(self._dir.root), keep_existing=False)

    def _stop_unrecorded(self) -> None:
        """Stop what this stack started but never recorded: a harness killed between a start
        and the state write leaves such a process, which would hold its port forever. Only
        called when the state names no live process (before a start, after a teardown)."""
        processes.stop(processes.strays(STACK_MARK, str(self._dir.root), known=()))
        # Started by an older harness, or by hand: a server on our data directory blocks ours.
        pid = postgres.running_pid(self._dir.pgdata)
        if pid is not None:
            postgres.stop_postgres(pid)


def _instance_of(state: StackState, instance: str) -> ProcessRecord:
    record = state.process(instance)
    if record is None or record.role != APP:
        known = ", ".join(p.name for p in state.processes if p.role == APP)
        raise BadInputError(f"unknown instance {instance!r}; the stack has {known}")
    return record


def _wait_http(record: ProcessRecord, path: str) -> None:
    wait_ready(
        record,
        partial(http_ok, record.endpoint.url(path)),
        what=f"GET {path}",
        timeout_s=READY_TIMEOUT_S,
    )


def _wait_state(record: ProcessRecord, wanted: ProcessState, timeout_s: float = 2.0) -> None:
    """Signals are asynchronous: wait until the kernel shows the process in ``wanted`` state."""
    deadline = time.monotonic() + timeout_s
    pause = 0.001  # usually there within a millisecond: a fault is timed from here
    while (current := processes.state_of(record)) is not wanted:
        if current is ProcessState.DEAD or time.monotonic() >= deadline:
            raise StackError(f"{record.name} is {current.value}, expected {wanted.value}")
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _write_state_file(path: Path, text: str) -> None:
    """A file of the state directory, written without following a link planted in its place."""
    try:
        write_private(path, text.encode())
    except OSError as exc:
        raise StackError(f"{path}: cannot write it: {exc.strerror}") from None


def _socket_or_none(path: Path) -> Path | None:
    """``path`` when it fits in a Unix socket address, else None (the admin API is then off:
    nothing the harness does needs it)."""
    return path if len(str(path)) <= MAX_SOCKET_PATH else None


def _truncate(log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Never through a symbolic link: that would empty the file it points at.
        os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600))
    except OSError as exc:
        raise StackError(f"{log}: cannot truncate the log: {exc.strerror}") from None
