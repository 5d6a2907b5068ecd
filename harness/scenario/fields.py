"""Field types of the scenario's own sections: text, hosts, URLs, paths, ports, arrival rates.

The validators the fault families share with the scenario (names, durations, whole numbers, the
base model, the error every validator raises) live a floor below, in :mod:`harness.fields`,
since the fault models in :mod:`harness.faults` use them too. These are the scenario's alone.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import PlainValidator, ValidationInfo

from harness.errors import clip
from harness.fields import MAX_RATE, as_number, invalid, is_resolved, show
from harness.safety import url_problem

__all__ = [
    "MAX_LOCUSTFILE_BYTES",
    "Address",
    "ArrivalRate",
    "ExistingPath",
    "FailedStatus",
    "Hostname",
    "LocustFile",
    "Port",
    "Text",
    "Url",
    "UrlPath",
    "arrival_rate",
    "compose_project",
    "identifier",
    "text",
    "unique",
]

_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*/\s*([sm])")
_ADDRESS = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]*):(?P<port>[0-9]{1,5})")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def text(value: object) -> str:
    """Some text, stripped; blank is refused."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise invalid(f"expected some text, got {show(value)}")


def identifier(value: object) -> str:
    """A Python class name (a locustfile's user class)."""
    if isinstance(value, str) and value.isidentifier():
        return value
    raise invalid(f"expected a Python class name, got {show(value)}")


def _hostname(value: object) -> str:
    if isinstance(value, str):
        host = value.strip().lower().rstrip(".")
        if _is_ip(host) or (
            len(host) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in host.split("."))
        ):
            return host
        if "/" in host or ":" in host:
            raise invalid(
                f"expected a host name like staging.example.com, not a URL: {show(value)}"
            )
    raise invalid(f"expected a host name like staging.example.com, got {show(value)}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url(value: object) -> str:
    if isinstance(value, str):
        # The host as the HTTP clients will read it (harness.safety.url_problem): user info, a
        # backslash or a space could make the policy check one host and a client dial another.
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018  # raises ValueError for a port out of range
        except ValueError:
            parts = None
        if parts and parts.scheme in ("http", "https") and parts.hostname:
            problem = url_problem(value.strip())
            if problem:
                raise invalid(f"{problem}: got {show(value)}")
            return value.strip().rstrip("/")
    raise invalid(f"expected an http(s) URL like http://127.0.0.1:8080, got {show(value)}")


def _existing_path(value: object, info: ValidationInfo) -> Path:
    """A path relative to the scenario file, made absolute; it must exist (unless re-reading a
    run directory, whose scenario may have moved machines since)."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"expected a file path, got {show(value)}")
    base = Path(info.context["base_dir"]) if info.context and "base_dir" in info.context else None
    # abspath, not resolve(): absolute and normalised is all the run directory needs, and
    # resolve() follows symlinks and can raise on a loop.
    path = Path(os.path.abspath((base or Path.cwd()) / value.strip()))
    if is_resolved(info):
        return path
    try:
        found = path.exists()
    except (OSError, ValueError):  # a name too long, or a NUL byte in it
        found = False
    if not found:
        raise invalid(
            f"file not found: {show(value)} (looked for {clip(str(path), 200, middle=True)})"
        )
    return path


MAX_LOCUSTFILE_BYTES = 1_000_000


def _locustfile(value: object, info: ValidationInfo) -> Path:
    """An existing regular ``.py`` file of at most :data:`MAX_LOCUSTFILE_BYTES`: what Locust
    imports. ``/dev/zero``, a FIFO or a directory would be read until memory runs out or
    forever."""
    path = _existing_path(value, info)
    if is_resolved(info):
        return path
    shown = clip(str(path), 200, middle=True)
    if path.suffix != ".py":
        raise invalid(f"expected a Python file ending in .py, got {shown}")
    try:
        status = path.stat()
    except (OSError, ValueError):
        raise invalid(f"cannot read {shown}") from None
    if not stat.S_ISREG(status.st_mode):
        raise invalid(f"expected a regular file, got {shown}")
    if status.st_size > MAX_LOCUSTFILE_BYTES:
        raise invalid(
            f"larger than {MAX_LOCUSTFILE_BYTES} bytes ({status.st_size}); not a locustfile: "
            f"{shown}"
        )
    return path


def _port(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise invalid(f"expected a port number from 1 to 65535, got {show(value)}")


def _failed_status(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    raise invalid(f"expected an HTTP status from 100 to 599, like 429, got {show(value)}")


def _url_path(value: object) -> str:
    if isinstance(value, str) and value.startswith("/") and not any(c.isspace() for c in value):
        return value
    raise invalid(f"expected a URL path like /healthz, got {show(value)}")


def _address(value: object) -> str:
    match = _ADDRESS.fullmatch(value) if isinstance(value, str) else None
    if match and 1 <= int(match["port"]) <= 65535:
        return str(value)
    raise invalid(f"expected host:port like 0.0.0.0:15432 or db:5432, got {show(value)}")


def compose_project(value: object) -> str:
    """A compose project name."""
    if isinstance(value, str) and _PROJECT.fullmatch(value):
        return value
    raise invalid(
        "expected a compose project name (lowercase letters, digits, '-' and '_'), "
        f"got {show(value)}"
    )


def arrival_rate(value: object) -> float:
    """Requests per second: ``50``, ``50/s``, ``1.5/s`` or ``300/m``; 0 is a pause."""
    number = as_number(value)
    if number is None and isinstance(value, str):
        match = _RATE.fullmatch(value.strip())
        if match:
            number = float(match[1]) / (60.0 if match[2] == "m" else 1.0)
    if number is not None and math.isfinite(number) and 0 <= number <= MAX_RATE:
        return number
    if number is not None and number > MAX_RATE:
        raise invalid(f"expected an arrival rate of at most {MAX_RATE:g}/s, got {show(value)}")
    raise invalid(f"expected an arrival rate like 50/s (requests per second), got {show(value)}")


def unique(names: list[str], where: str, field: str, what: str) -> None:
    """Refuse a name listed twice in ``where``, pointing at the second and naming the first."""
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            raise invalid(
                f"duplicate {what} name {show(name)} (also {where}[{first[name]}])",
                where,
                index,
                field,
            )
        first[name] = index


Text = Annotated[str, PlainValidator(text)]
ExistingPath = Annotated[Path, PlainValidator(_existing_path)]
LocustFile = Annotated[Path, PlainValidator(_locustfile)]
Url = Annotated[str, PlainValidator(_url)]
Hostname = Annotated[str, PlainValidator(_hostname)]
Port = Annotated[int, PlainValidator(_port)]
FailedStatus = Annotated[int, PlainValidator(_failed_status)]
UrlPath = Annotated[str, PlainValidator(_url_path)]
Address = Annotated[str, PlainValidator(_address)]
ArrivalRate = Annotated[float, PlainValidator(arrival_rate)]
