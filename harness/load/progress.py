"""The live progress line the master writes to stderr, and how it is written.

On a terminal the line updates in place (a one-line Rich ``Live``, cut to the terminal's width),
and the master's messages ("guard breached", "load over") print above it. Anywhere else (a CI log,
a pipe, a file) a line every few seconds, at most :data:`PIPE_WIDTH` characters: a log of a
three-minute run is then some forty short lines, not one line a second of any length.
"""

from __future__ import annotations

import atexit
import contextlib
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import IO, Final, Self

from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness.load.collector import Window
from harness.load.plan import PlannedPhase

__all__ = [
    "PIPE_INTERVAL_S",
    "PIPE_WIDTH",
    "PREFIX",
    "ProgressOutput",
    "fault_names",
    "progress_line",
]

PREFIX: Final = "harness: "
PIPE_INTERVAL_S: Final = 5.0
PIPE_WIDTH: Final = 100


def fault_names(active: Iterable[object]) -> list[str]:
    """Names of the active faults, whatever the timeline hands out (names or fault objects)."""
    return [item if isinstance(item, str) else str(getattr(item, "name", item)) for item in active]


def progress_line(
    *,
    elapsed: float,
    total: float,
    phase: PlannedPhase | None,
    phases: int,
    users: int,
    window: Window,
    faults: Iterable[str] = (),
) -> str:
    """``  12.0s/40.0s  spike 2/3  users 60  rps 523.0  err 0.4%  faults: kill-app-1``

    ``window`` is the last complete second the master has received (shipments lag by about one).
    """
    where = f"{phase.name} {phase.index + 1}/{phases}" if phase else "-"
    active = ", ".join(faults) or "none"
    return (
        f"{elapsed:6.1f}s/{total:.1f}s  {where}  users {users}  rps {window.rate:.1f}  "
        f"err {100 * window.error_ratio:.1f}%  faults: {active}"
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class ProgressOutput:
    """The master's stderr (``stream``, unless ``console`` writes elsewhere): :meth:`update`
    for the progress line, :meth:`say` for a message, :meth:`close` at the end of the load.
    Writing errors (a closed stderr) are swallowed: a lost progress line must not end the run.

    ``console`` decides whether this is a terminal (``Console(force_terminal=True)`` makes it
    one in a test); ``clock`` paces the lines written to a pipe.

    On a terminal the live line hides the cursor: :meth:`close` shows it again and ends the
    line. It runs on every way out: the master closes it when the load ends (SIGINT and SIGTERM
    end the load that way), when its run raises, and, for any other end of the process (an
    uncaught exception, ``sys.exit`` from a signal handler), at interpreter exit. Only a kill
    that runs no Python (SIGKILL) leaves the cursor hidden. After :meth:`close` the line stays
    closed: a late update does not open a new one below the messages that ended the run.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        console: Console | None = None,
        interval_s: float = PIPE_INTERVAL_S,
        width: int = PIPE_WIDTH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console or Console(file=stream, highlight=False, soft_wrap=False)
        self.interval_s = interval_s
        self.width = width
        self.clock = clock
        self._live: Live | None = None
        self._last: float | None = None  # when the last line went to a pipe
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def in_place(self) -> bool:
        return self.console.is_terminal

    def update(self, line: str) -> None:
        """The current progress: redrawn in place on a terminal; on a pipe, written when
        ``interval_s`` has passed since the last one (the first at once)."""
        if self._closed:
            return
        try:
            if self.in_place:
                self._draw(line)
                return
            now = self.clock()
            if self._last is not None and now - self._last < self.interval_s:
                return
            self._last = now
            self._write(_cut(PREFIX + line.strip(), self.width))
        except (OSError, ValueError):  # a closed stderr must not end the run
            pass

    def say(self, line: str) -> None:
        """A message, whole, on its own line (above the progress line on a terminal)."""
        try:
            if self._live is not None:
                # Through the Live's console: printed above the line, which is redrawn below.
                self.console.print(Text(PREFIX + line), soft_wrap=True)
            else:
                self._write(PREFIX + line)
        except (OSError, ValueError):  # a closed stderr must not end the run
            pass

    def close(self) -> None:
        """Leave the last progress line where it is, end it with a newline and show the cursor
        again (idempotent)."""
        self._closed = True
        live, self._live = self._live, None
        if live is not None:
            atexit.unregister(self.close)
            with contextlib.suppress(OSError, ValueError):  # a closed stderr: the run goes on
                live.stop()

    def _draw(self, line: str) -> None:
        text = Text(PREFIX + line, no_wrap=True, overflow="ellipsis")
        if self._live is None:
            # Refreshed by the caller, once a second: no refresh thread in the master (gevent),
            # and no redirection of sys.stdout and sys.stderr (Locust's loggers hold them).
            self._live = Live(
                text,
                console=self.console,
                auto_refresh=False,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            # Before it hides the cursor: whatever ends the process from here shows it again.
            atexit.register(self.close)
            self._live.start(refresh=True)
        else:
            self._live.update(text, refresh=True)

    def _write(self, text: str) -> None:
        stream = self.console.file
        stream.write(text + "\n")
        stream.flush()
