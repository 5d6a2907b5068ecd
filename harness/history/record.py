"""The one call the end of a run makes: add the run to the history of its reports directory.

:func:`record_run` first writes ``provenance.json`` into the run directory (the git commit and
branch of the working directory, when it is a checkout), so the row can be read again from the
run directory alone, then adds the row to ``history.sqlite`` beside the run directories. A
history that cannot be written costs the history, never the run: the caller gets the reason to
print, and the run's exit code stands.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.history.git import git_info
from harness.history.index import HistoryIndex
from harness.history.row import PROVENANCE_FILE, read_row

__all__ = ["record_run", "write_provenance"]


def write_provenance(root: Path, cwd: Path | None = None) -> None:
    """``provenance.json``: the commit and branch the run was made from, and when it was
    recorded. Kept when it is there already: a report rebuilt later is not from a new commit."""
    path = root / PROVENANCE_FILE
    if path.is_file():
        return
    info = git_info(cwd)
    data = {"git_commit": info.commit, "git_branch": info.branch, "recorded_at": time.time()}
    # A file that cannot be written costs the commit after a rebuild, not the row.
    with contextlib.suppress(OSError):
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def record_run(root: Path, *, cwd: Path | None = None) -> str | None:
    """Add the run or capacity directory ``root`` to the history of ``root.parent``; None when
    done, else why not, in one line."""
    try:
        write_provenance(root, cwd)
        HistoryIndex(root.parent).add(read_row(root))
    except HarnessError as exc:
        return f"history: not recorded: {exc}"
    return None
