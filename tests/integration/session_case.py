"""Not collected by itself (no ``test_`` prefix): the inner session of test_session_cleanup.py
runs it by name. It takes the session's local stack, says so, and waits to be stopped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from stack_support import RunningStack


def test_holds_the_stack_until_stopped(stack: RunningStack) -> None:
    Path(os.environ["SESSION_CASE_READY"]).write_text(str(stack.harness.state_dir))
    time.sleep(600)
