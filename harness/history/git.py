"""The git commit and branch a run was made from, when the working directory is a checkout.

Asked of ``git`` itself (argument lists, never a shell), with a short timeout: a missing git, a
directory that is no checkout or a slow filesystem gives None, never an error. A run's history
row is worth having without its commit.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["GitInfo", "git_info", "resolve_ref"]

_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    branch: str | None = None


def _git(args: list[str], cwd: Path) -> str | None:
    exe = shutil.which("git")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, no directory, too slow: no answer
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def git_info(cwd: Path | None = None) -> GitInfo:
    """The checkout's HEAD commit and branch (None for a detached HEAD), or nothing."""
    where = cwd or Path.cwd()
    commit = _git(["rev-parse", "--verify", "HEAD"], where)
    if commit is None:
        return GitInfo()
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], where)
    return GitInfo(commit, None if branch in (None, "HEAD") else branch)


def resolve_ref(ref: str, cwd: Path | None = None) -> str | None:
    """The full commit a ref names (a branch, a tag, ``HEAD~1``, a short hash), or None."""
    if not ref or ref.startswith("-"):  # never an option to git
        return None
    return _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd or Path.cwd())
