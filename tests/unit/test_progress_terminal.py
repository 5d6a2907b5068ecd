"""The live progress line on a real terminal (a pty): however the process ends (an exception,
SIGINT, a SIGTERM handler that exits), the line is ended and the cursor the live line hid is
shown again, so the shell the user gets back has a cursor and starts on a fresh line."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import textwrap

import pytest

# A real child process on a real pseudo-terminal per case: the integration tier (the unit tier
# runs no processes of its own), beside the progress line's other tests.
pytestmark = pytest.mark.integration

HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"

CHILD = textwrap.dedent(
    """\
    import signal, sys, time
    from harness.load.progress import ProgressOutput

    # Ctrl-C as on a terminal, whatever this test's own process was started with: a pytest run
    # in the background of a non-interactive shell has SIGINT ignored, which the child would
    # inherit and so sleep through the SIGINT below (Python leaves an ignored SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    how = sys.argv[1]
    if how == "sigterm":  # as a program with its own handler ends on SIGTERM
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = ProgressOutput(sys.stderr)
    assert out.in_place, "stderr is a pty: the line must update in place"
    out.update("  1.0s/9.0s  warm 1/1  users 1")
    out.update("  2.0s/9.0s  warm 1/1  users 2")
    print("ready", file=sys.stdout, flush=True)
    if how == "raise":
        raise RuntimeError("a bug in the run")
    if how == "close":
        out.close()
        out.update("  3.0s/9.0s  after the end")  # a late update: no second live line
        sys.exit(0)
    time.sleep(30)  # sigint / sigterm arrive here
    """
)


def run_on_a_pty(how: str, send: signal.Signals | None = None) -> tuple[int, str]:
    """The child's exit code and all it wrote to its terminal."""
    primary, secondary = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, how],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(secondary)
    written = b""
    sent = False
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], 20)
            if not ready:
                break  # the child hangs: the assertions below say how
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            written += chunk
            if send is not None and not sent and b"ready" in written:
                child.send_signal(send)
                sent = True
    finally:
        os.close(primary)
        try:
            code = child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
    return code, written.decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("how", "send", "code"),
    [
        ("raise", None, 1),
        ("sigint", signal.SIGINT, -signal.SIGINT),  # KeyboardInterrupt, uncaught
        ("sigterm", signal.SIGTERM, 143),
        ("close", None, 0),
    ],
)
def test_the_cursor_is_shown_again_and_the_line_ended_on_every_way_out(
    how: str, send: signal.Signals | None, code: int
) -> None:
    exit_code, written = run_on_a_pty(how, send)
    assert exit_code == code, written
    assert HIDE in written, "the live line never started: nothing was tested"
    assert written.rfind(SHOW) > written.rfind(HIDE), f"cursor left hidden: {written!r}"
    last_progress = written.rfind("users 2")
    assert "\n" in written[last_progress:], "the progress line was never ended"
    assert written.count(HIDE) == 1  # one live line, never a second one
    assert "after the end" not in written
