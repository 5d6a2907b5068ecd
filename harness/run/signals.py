"""SIGINT and SIGTERM while a run goes: a Ctrl-C reaches this process only (the Locust processes
run in sessions of their own), which forwards it to the master; the master stops the load,
reverts its faults and stops the workers.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Signals", "send_signal"]


def send_signal(process: subprocess.Popen[Any], signum: int) -> None:
    """``signum`` to ``process``, which may have exited meanwhile."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


class Signals:
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

    def __enter__(self) -> Signals:
        # Handlers can only be set from the main thread; elsewhere (a library caller's thread)
        # the caller's own handling stays.
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
                send_signal(master, signum)

    def escalate(self, master: subprocess.Popen[Any]) -> None:
        """Stop an overrunning master as if interrupted (it reverts its faults)."""
        send_signal(master, signal.SIGTERM)
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
            send_signal(master, signum)
        else:
            self._held.append(signum)
