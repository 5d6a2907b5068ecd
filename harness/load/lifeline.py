"""A lifeline from `harness run` to its Locust processes: they stop when it dies, however it dies.

The run's process keeps the write end of a pipe (:class:`Lifeline`) and hands the read end to
each master and worker it starts (the fd number in ``$HARNESS_LIFELINE_FD``). It never writes:
the kernel closes the write end when the process ends, ``kill -9`` included, and the child's read
then returns end-of-file. The child's watch (:func:`watch_parent`) turns that into a SIGHUP to
itself, which its own handler treats as "stop the load now, revert the faults, leave"; should that
hang, the watch ends the process after ``grace_s``.

Why a pipe and not ``prctl(PR_SET_PDEATHSIG)``: the parent-death signal fires when the *thread*
that started the child ends, not its process, so a library caller starting runs from a worker
thread would see its load stopped under it; a pipe's write end belongs to the process. (Forked,
not exec'd, children of the harness would hold the write end too; the harness forks none.)

Pure Python, imported on both sides. The watch blocks in a real OS thread (gevent's original,
when the process is monkey-patched), so it reads the pipe even while the gevent hub is busy, and
its last-resort exit needs no hub at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["LIFELINE_ENV", "Lifeline", "watch_parent"]

LIFELINE_ENV: Final = "HARNESS_LIFELINE_FD"

logger = logging.getLogger(__name__)


class Lifeline:
    """The parent's end: one pipe for every child of a run. Keep it open while the children
    run; :meth:`close` it once they are gone (a close while they run tells them to stop)."""

    def __init__(self) -> None:
        # Both ends non-inheritable (os.pipe's default): only pass_fds hands the read end on.
        self._read, self._write = os.pipe()

    def child_env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {**env, LIFELINE_ENV: str(self._read)}

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self._read,) if self._read >= 0 else ()

    def close(self) -> None:
        for fd in (self._read, self._write):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read = self._write = -1


def watch_parent(*, grace_s: float, exit_code: int) -> bool:
    """In a child started with a :class:`Lifeline`: send this process SIGHUP when the parent
    dies, and end it with ``exit_code`` if it is still there ``grace_s`` later. Install the
    SIGHUP handler first (its default action ends the process with nothing reverted).

    False when the process was not started with a lifeline (``harness worker`` on another
    machine): nothing is watched. The variable is removed, so processes this one starts do not
    take it for their own."""
    value = os.environ.pop(LIFELINE_ENV, "")
    try:
        fd = int(value)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
    except (ValueError, OSError):
        return False
    start_thread, sleep = _real_threads()
    start_thread(_watch, (fd, grace_s, exit_code, sleep))
    return True


def _watch(fd: int, grace_s: float, exit_code: int, sleep: Callable[[float], None]) -> None:
    while True:
        try:
            if not os.read(fd, 1):  # end-of-file: every write end is closed, the parent is gone
                break
        except InterruptedError:
            continue
        except OSError:
            break  # the fd was closed under us: no way left to know; act as if it were gone
    logger.warning("the harness process that started this one is gone: stopping")
    os.kill(os.getpid(), signal.SIGHUP)
    sleep(grace_s)
    # The graceful stop did not end the process in time: nothing it holds outlives it for long.
    with contextlib.suppress(Exception):
        print(
            f"{os.path.basename(sys.argv[0])}: still running {grace_s:g}s after the harness "
            "died; exiting",
            file=sys.stderr,
            flush=True,
        )
    os._exit(exit_code)


def _real_threads() -> tuple[Callable[..., Any], Callable[[float], None]]:
    """``_thread.start_new_thread`` and ``time.sleep`` as the OS provides them, also in a
    process gevent has monkey-patched (where they would be greenlets on the blocked hub)."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey  # type: ignore[import-untyped]  # gevent ships no types

        if monkey.is_module_patched("threading"):
            return (
                monkey.get_original("_thread", "start_new_thread"),
                monkey.get_original("time", "sleep"),
            )
    import _thread

    return _thread.start_new_thread, time.sleep
