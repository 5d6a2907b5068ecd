"""Owner-only state files, opened without following links: the one way the harness opens the files
of a state directory (the fault journal and its lock, ``stack.json`` and its lock, the front
proxy's record, the game day's control file).

Those files say what a rollback reverts, which processes ``down`` stops and which ``restart``
starts again, and they hold the shop's admin token. A symbolic link put in their place would
make the harness truncate or overwrite the file it points at, and a file another user could have
written would make it act on their say. So each is opened with ``O_NOFOLLOW`` and used only when
it is a regular file owned by this user with mode 0600 (nothing for group or others); anything
else is refused with a ``PermissionError`` whose ``strerror`` is one line saying why (the caller
names the file). Writes go to a fresh temporary file (``O_EXCL``, never an existing one) that is
then renamed over the old one, so a reader never sees half a file and a link is never written
through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Final

__all__ = ["MODE", "check_private", "open_private", "read_private", "write_private"]

MODE: Final = 0o600


def _refused(problem: str) -> PermissionError:
    return PermissionError(errno.EPERM, f"refused: {problem}")


def check_private(info: os.stat_result, *, exact_mode: bool = True) -> None:
    """``PermissionError`` unless ``info`` is a regular file of this user's that group and others
    cannot use (``exact_mode=False``: that they cannot write)."""
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode):
        raise _refused("not a regular file")
    if info.st_uid != os.geteuid():
        raise _refused(f"owned by uid {info.st_uid}, not by this user ({os.geteuid()})")
    if mode & (0o077 if exact_mode else 0o022):
        raise _refused(f"mode {mode:o}, not {MODE:o} (group or others may use it)")


def open_private(path: Path | str, flags: int, *, repair_mode: bool = False) -> int:
    """``os.open`` of a state file without following a link, created 0600 with ``O_CREAT``,
    checked by :func:`check_private` before anything is read or written (``O_TRUNC`` is applied
    only after the check). ``repair_mode``: a file of this user's whose content does not matter
    (a lock file an older version created 0644) is set to 0600 instead of being refused.
    ``FileNotFoundError`` when absent; ``PermissionError`` with a one-line reason."""
    truncate = flags & os.O_TRUNC
    try:
        fd = os.open(path, (flags & ~os.O_TRUNC) | os.O_NOFOLLOW | os.O_CLOEXEC, MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refused("a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        if repair_mode and stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
            os.fchmod(fd, MODE)
            info = os.fstat(fd)
        check_private(info)
        if truncate:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private(path: Path | str) -> bytes:
    """The whole of a state file (see :func:`open_private`)."""
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as file:
        return file.read()


def write_private(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600. What is there now must be a state
    file of this user's (or nothing); the temporary file beside it is always made afresh."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        check_private(os.lstat(path))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a leftover (or a link someone put there): the name only, never its target
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, MODE)
    except FileExistsError:
        raise _refused(f"{tmp} appeared while it was being written") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
