"""The shop's side of the local stack: its environment, its migration, an instance started,
maintenance turned off. Used by ``up`` (the first start) and by a reconfiguration that restarts
only the instances with new settings (:meth:`harness.stack.local.LocalStack.bring_up`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

from harness.errors import StackError
from harness.stack import processes
from harness.stack.base import Endpoint
from harness.stack.config import LocalStackConfig
from harness.stack.processes import ProcessRecord, log_tail
from harness.stack.readiness import http_post_json
from harness.stack.topology import APP, database_url

MIGRATE_TIMEOUT_S: Final = 60.0


def app_env(config: LocalStackConfig) -> dict[str, str]:
    """The shop's environment: the stack's settings, then what wires the topology."""
    app_db = Endpoint(config.ports.host, config.ports.app_db_proxy)
    return {
        **dict(config.app_env),
        # The shop reaches its database through Toxiproxy, so the app-db link can be hurt.
        "SHOP_DATABASE_URL": database_url(app_db, config.db_password),
        "SHOP_ADMIN_TOKEN": config.admin_token,
        "PYTHONUNBUFFERED": "1",
    }


def migrate(env: dict[str, str], log: Path) -> None:
    """Schema and seed data (the command is idempotent). A plain child of ours, not detached:
    it must end before anything else starts, and with us if we stop."""
    with open(_open_log(log), "wb") as out:
        try:
            result = subprocess.run(
                [sys.executable, "-m", "shopapp", "migrate"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                timeout=MIGRATE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"shop migrate did not finish in {MIGRATE_TIMEOUT_S:.0f}s; "
                f"last lines of {log}:\n{log_tail(log)}"
            ) from exc
    if result.returncode != 0:
        raise StackError(
            f"shop migrate failed with exit code {result.returncode}; "
            f"last lines of {log}:\n{log_tail(log)}"
        )


def spawn_app(name: str, endpoint: Endpoint, env: dict[str, str], log: Path) -> ProcessRecord:
    """One shop instance, detached, its log truncated."""
    os.close(_open_log(log))
    argv = [
        sys.executable,
        "-m",
        "shopapp",
        "serve",
        "--host",
        endpoint.host,
        "--port",
        str(endpoint.port),
    ]
    return processes.spawn(
        name, APP, argv, endpoint=endpoint, log=log, env={**env, "SHOP_INSTANCE": name}
    )


def _open_log(log: Path) -> int:
    """The log, emptied, opened for writing; never through a link planted in its place (that
    would empty the file it points at)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(log, flags, 0o600)
    except OSError as exc:
        raise StackError(f"{log}: cannot open the log: {exc.strerror}") from None


def leave_maintenance(app: ProcessRecord, token: str) -> None:
    """A started shop is out of maintenance, whatever the last run left in the database."""
    status = http_post_json(
        app.endpoint.url("/admin/maintenance"), {"enabled": False}, token=token, timeout_s=5.0
    )
    if status != 200:
        raise StackError(
            f"{app.name}: turning maintenance off answered {status or 'nothing'}; "
            f"last lines of {app.log}:\n{log_tail(app.log)}"
        )


def env_change(running: tuple[tuple[str, str], ...], wanted: tuple[tuple[str, str], ...]) -> str:
    """What differs between the shop's running settings and those asked for, in one phrase
    (empty: nothing). The settings asked for are the whole environment: a setting an earlier
    scenario left is dropped, so scenarios run alike in any order."""
    now, asked = dict(running), dict(wanted)
    parts = [f"{k}={v}" for k, v in sorted(asked.items()) if now.get(k) != v]
    parts += [f"no {k}" for k in sorted(now.keys() - asked.keys())]
    return ", ".join(parts)
