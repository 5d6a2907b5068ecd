"""One reading of one post-run check: a number from the system under test, or an error saying
why there is none. Nothing here reaches a shell: SQL goes over the PostgreSQL protocol (asyncpg)
or, on a compose stack, as one argv element of ``psql`` run inside the database container
through the Docker API; HTTP is a plain GET.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import math
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

from harness.safety import TargetPolicy, TargetRefused, check_dsn
from harness.scenario import PostCheck

__all__ = ["CheckError", "CheckTarget", "expand_env", "number_at", "read_check"]

TIMEOUT_S: Final = 10.0
_ENV_REFERENCE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Labels docker compose puts on the containers it runs.
_PROJECT_LABEL: Final = "com.docker.compose.project"
_SERVICE_LABEL: Final = "com.docker.compose.service"


class CheckError(Exception):
    """A check gave no number; the message says why, on one line."""


@dataclass(frozen=True)
class CheckTarget:
    """Where checks read from: the entry URL (http), and the database: a DSN, or a compose
    project whose ``db_service`` container runs ``psql`` (``db_user``, ``db_name``)."""

    entry_url: str
    database_url: str = ""
    compose_project: str = ""
    db_service: str = "postgres"
    db_user: str = "shop"
    db_name: str = "shop"
    # The run's target policy: a ``dsn`` that names its host through ``${VAR}`` is only known
    # here, after expansion, so it is checked here, before any connection is made.
    policy: TargetPolicy | None = None


def read_check(check: PostCheck, target: CheckTarget) -> float:
    """The check's number now. Raises :class:`CheckError`, and nothing else."""
    try:
        if check.sql is not None:
            return _read_sql(check, target)
        return _read_http(check, target)
    except CheckError:
        raise
    except Exception as exc:  # a driver's own error type: still one line, still ours
        raise CheckError(_one_line(f"{type(exc).__name__}: {exc}")) from None


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    """``${NAME}`` replaced by the environment variable; CheckError when it is not set."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise CheckError(f"environment variable {name} is not set")
        return env[name]

    return _ENV_REFERENCE.sub(value, text)


def number_at(document: Any, path: str | None) -> float:
    """The number at the dotted ``path`` of a JSON document (list indices as numbers)."""
    node = document
    walked: list[str] = []
    for part in path.split(".") if path else ():
        walked.append(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise CheckError(f"the answer has no field {'.'.join(walked)}")
    return _as_number(node, f"field {path}" if path else "the answer")


def _as_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise CheckError(f"{what} is not a number: {_one_line(repr(value))[:80]}")
    number = float(value)
    if not math.isfinite(number):
        raise CheckError(f"{what} is not a finite number: {value}")
    return number


# --- sql ---------------------------------------------------------------------------------------


def _read_sql(check: PostCheck, target: CheckTarget) -> float:
    assert check.sql is not None
    dsn = expand_env(check.dsn) if check.dsn is not None else target.database_url
    if check.dsn is None and target.compose_project:
        return _read_psql(check.sql, target)
    if not dsn:
        raise CheckError("no database to query: this stack exposes none (give the check a dsn)")
    if check.dsn is not None and target.policy is not None:
        try:
            check_dsn(dsn, target.policy, f"checks: {check.name}: dsn")
        except TargetRefused as exc:
            raise CheckError(str(exc)) from None
    return asyncio.run(_fetch(dsn, check.sql))


async def _fetch(dsn: str, sql: str) -> float:
    import asyncpg  # type: ignore[import-untyped]  # ships no type information

    conn = await asyncpg.connect(dsn, timeout=TIMEOUT_S)
    try:
        # Read-only: a check looks, it never changes what it measures.
        async with conn.transaction(readonly=True):
            rows = await conn.fetch(sql, timeout=TIMEOUT_S)
    finally:
        await conn.close(timeout=TIMEOUT_S)
    if len(rows) != 1 or len(rows[0]) != 1:
        width = len(rows[0]) if rows else 0
        raise CheckError(
            f"the query must answer one row of one column, got {len(rows)} rows of {width}"
        )
    return _as_number(rows[0][0], "the query's answer")


def _read_psql(sql: str, target: CheckTarget) -> float:
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=int(TIMEOUT_S))
        containers = client.containers.list(
            filters={
                "label": [
                    f"{_PROJECT_LABEL}={target.compose_project}",
                    f"{_SERVICE_LABEL}={target.db_service}",
                ]
            }
        )
        if not containers:
            raise CheckError(
                f"compose project {target.compose_project!r} has no running "
                f"{target.db_service} container"
            )
        argv = [
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            target.db_user,
            "-d",
            target.db_name,
            "-c",
            sql,
        ]
        # Read-only, as over asyncpg: the session refuses any write the query might attempt.
        code, output = containers[0].exec_run(
            argv, demux=True, environment={"PGOPTIONS": "-c default_transaction_read_only=on"}
        )
    except docker.errors.DockerException as exc:
        raise CheckError(_one_line(f"docker: {exc}")) from None
    # demux=True: a (stdout, stderr) pair of bytes or None.
    stdout, stderr = output if isinstance(output, tuple) else (None, None)
    if code != 0:
        raise CheckError(_one_line(f"psql: {(stderr or b'').decode(errors='replace')}"))
    lines = [line for line in (stdout or b"").decode(errors="replace").splitlines() if line]
    if len(lines) != 1 or "|" in lines[0]:
        raise CheckError(f"the query must answer one row of one column, got {lines[:3]!r}")
    try:
        return _as_number(decimal.Decimal(lines[0].strip()), "the query's answer")
    except decimal.InvalidOperation:
        raise CheckError(f"the query's answer is not a number: {lines[0][:80]!r}") from None


# --- http --------------------------------------------------------------------------------------


def _read_http(check: PostCheck, target: CheckTarget) -> float:
    assert check.http is not None
    url = target.entry_url.rstrip("/") + check.http
    headers = {name: expand_env(value) for name, value in check.headers}
    request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            body = response.read(1_000_000)
    except urllib.error.HTTPError as exc:
        raise CheckError(f"GET {check.http}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckError(_one_line(f"GET {check.http}: {reason}")) from None
    try:
        document = json.loads(body)
    except ValueError:
        raise CheckError(f"GET {check.http}: the answer is not JSON") from None
    return number_at(document, check.field)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
