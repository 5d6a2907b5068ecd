"""How a second terminal finds a running game day and talks to it.

The game day's Locust master writes ``gameday.json`` into the stack's state directory (where the
fault journal lives) once its web UI listens: its PID, the control URL (always 127.0.0.1), the
chaos page's URL, the run directory, and a random token. The file is owner-only, and every
control request must carry the token, so another local user can neither read nor flip faults.
The master removes the file on its way out; a file whose process is gone (``kill -9``) is stale.

Pure Python (no Locust, no gevent): the CLI imports it. HTTP through the standard library.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from harness.errors import BadInputError, HarnessError, InfrastructureError
from harness.private_files import read_private, write_private
from harness.safety import run_policy
from harness.stack.processes import pid_alive

__all__ = [
    "CONTROL_FILE",
    "TOKEN_HEADER",
    "ControlFile",
    "GamedayClient",
    "NoGameday",
    "default_who",
    "new_token",
]

CONTROL_FILE: Final = "gameday.json"
TOKEN_HEADER: Final = "X-Harness-Token"  # noqa: S105  # a header name, not a secret
REQUEST_TIMEOUT_S: Final = 60.0  # an inject may restart an instance, which takes a while


class NoGameday(InfrastructureError):
    """No game day is running where we looked (exit 3)."""


def new_token() -> str:
    return secrets.token_urlsafe(24)


def default_who() -> str:
    """``user@host``: who pressed the button, as the journal and the report show it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the number will do
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class ControlFile:
    """What ``gameday.json`` holds."""

    pid: int
    url: str  # the control API's base, e.g. http://127.0.0.1:8089
    page: str  # the chaos page, token included (what a person opens)
    token: str
    run_dir: str
    scenario: str

    @staticmethod
    def path(state_dir: Path) -> Path:
        return Path(state_dir) / CONTROL_FILE

    def write(self, state_dir: Path) -> Path:
        """Atomically and owner-only: the token must never be readable by others, even briefly."""
        path = self.path(state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_private(path, json.dumps(asdict(self)).encode())
        except OSError as exc:
            raise InfrastructureError(f"{path}: cannot write it: {exc.strerror}") from None
        return path

    @classmethod
    def remove(cls, state_dir: Path, *, pid: int) -> None:
        """Remove the file if it is still ``pid``'s (a newer game day's is left alone)."""
        path = cls.path(state_dir)
        with contextlib.suppress(NoGameday):
            if cls.read(state_dir, check_alive=False).pid != pid:
                return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    @classmethod
    def read(cls, state_dir: Path, *, check_alive: bool = True) -> ControlFile:
        """The running game day's file; :class:`NoGameday` when there is none (or it is stale)."""
        path = cls.path(state_dir)
        try:
            data = json.loads(read_private(path))
        except FileNotFoundError:
            raise NoGameday(f"no game day is running (no {path})") from None
        except (OSError, ValueError) as exc:
            raise NoGameday(f"{path}: unreadable ({exc}); is a game day running?") from None
        try:
            control = cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            raise NoGameday(f"{path}: not a game day's control file") from None
        if check_alive and not pid_alive(control.pid):
            raise NoGameday(
                f"no game day is running ({path} is left from process {control.pid}, which is "
                "gone; `harness rollback` reverts any fault it left)"
            )
        return control


class GamedayClient:
    """The control API of a running game day, as ``harness inject/revert/status`` use it."""

    def __init__(self, control: ControlFile, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.control = control
        self.timeout_s = timeout_s

    @classmethod
    def find(cls, state_dir: Path) -> GamedayClient:
        control = ControlFile.read(state_dir)
        # The file says where to send the token and the fault commands: a file pointing
        # anywhere but loopback (or a host allowed by $HARNESS_ALLOW_TARGETS) is not followed.
        run_policy(()).check_url(control.url, f"the game day's control file in {state_dir}")
        return cls(control)

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/chaos/api/state")

    def inject(self, name: str, *, who: str, for_s: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "who": who}
        if for_s is not None:
            body["for_s"] = for_s
        return self._call("POST", "/chaos/api/inject", body)

    def revert(self, name: str | None, *, who: str) -> dict[str, Any]:
        body: dict[str, Any] = {"who": who}
        if name is None:
            body["all"] = True
        else:
            body["name"] = name
        return self._call("POST", "/chaos/api/revert", body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.control.url.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310  # http only
        request.add_header(TOKEN_HEADER, self.control.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return _json(response.read())
        except urllib.error.HTTPError as exc:
            raise _error_of(exc.code, _json(exc.read()).get("error") or exc.reason) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NoGameday(
                f"no game day answers at {self.control.url} ({reason}); is it still running?"
            ) from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_of(status: int, message: str) -> HarnessError:
    """The control API's statuses as the harness's exit codes: 404 unknown fault (2), 400 bad
    request (2), 409 not possible now (1), 401/403 wrong token and anything else (3)."""
    if status in (400, 404):
        return BadInputError(message)
    if status == 409:
        return HarnessError(message)
    if status in (401, 403):
        return InfrastructureError(f"the game day refused our token: {message}")
    return InfrastructureError(f"the game day answered {status}: {message}")
