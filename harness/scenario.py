"""The scenario file: what to run, for how long, what to break and what must hold.

A scenario is a YAML file, read with a safe loader and validated once, here, into frozen models.
Everything after this module (the stack, the load shape, the fault timeline, the verdict) trusts
the model and never re-checks it. Anything wrong is a :class:`~harness.errors.BadInputError`
with one line naming the file, the field path and the bad value::

    scenarios/x.yaml: faults[2].for: expected a duration like 30s, got "soon"
    scenarios/x.yaml: load.phases[1].users: expected a whole number >= 0, got -3
    scenarios/x.yaml: load.phaes: unknown key "phaes" (did you mean "phases"?)
    scenarios/x.yaml: line 7, column 3: bad YAML: mapping values are not allowed here

The format, in full::

    name: flash-sale                  # optional; defaults to the file name without .yaml
    description: A sale opens and a backend dies mid-spike.
    stack:
      kind: local                     # local (default) | compose | external
      entry_url: http://127.0.0.1:8080      # required for external; an override otherwise
      toxiproxy_url: http://127.0.0.1:8474  # required for external when faults use Toxiproxy
      env: {SHOP_MAX_INFLIGHT: "32"}  # extra environment for the shop instances (not external)
      # kind compose only, each optional (the defaults are the sample stack, compose/):
      # compose_file: ../deploy/compose.yml         # relative to this file
      # project: myshop                             # compose project name (default harness)
      # entry: {service: caddy, port: 80, ready_path: /readyz}   # port: in the container
      # backends: {services: [app-1, app-2, app-3], port: 8000, health_path: /healthz}
      # toxiproxy: {service: toxiproxy, port: 8474}  # its API, published on the host
      # proxies: [{name: app-db, listen: "0.0.0.0:15433", upstream: "postgres:5432"}]
    allow_targets: [staging.example.com]  # hosts besides loopback that load and faults may reach
    load:
      locustfile: shop_locustfile.py  # relative to this file; must exist
      user_classes: [ShopUser]        # optional: the locustfile's classes to run (default: all)
      workers: 0                      # optional: Locust worker processes (0 = run in the master)
      phases:                         # back to back, in this order
        - {name: warmup, duration: 20s, users: 20, spawn_rate: 10}
        - {name: spike, duration: 40s, users: 120, spawn_rate: 50}
        - {name: cooldown, duration: 20s, users: 20, spawn_rate: 50}
    faults:
      - name: kill-app-1
        action: kill                  # kill | pause | restart: a shop instance (app-1, app-2, ...)
        target: app-1
        at: 25s                       # offset from the start of the run; omitted: a catalogue
                                      # fault, injected by hand on a game day (harness gameday)
        for: 10s                      # optional; omitted = until the run ends (reverted then)
      - name: slow-db
        action: toxic                 # toxic | down: a Toxiproxy proxy (lb-app-1, ..., app-db)
        target: app-db
        at: 30s
        for: 15s
        params: {type: latency, latency: 800, jitter: 50, stream: downstream, toxicity: 1.0}
      - {name: db-throttle, action: db-throttle, at: 50s, for: 5s, params: {rate: 50}}
      - {name: maintenance, action: maintenance, at: 65s, for: 3s}   # no target: the whole shop
    slos:
      - "ratio(status == 503) < 5% during phase spike"      # parsed by harness.verdict
      - {name: no-500s, expr: "count(status == 500) == 0"}
    guards:
      - "abort if ratio(status >= 500) > 50% for 15s"
    checks:                           # numbers read before the load and after the run
      - {name: orders, sql: "SELECT count(*) FROM orders"}     # the stack's own database
      - {name: stock, http: /stats, field: stock.total}        # GET on the entry URL, JSON

Rules beyond the types:

- Durations are ``500ms``, ``1.5s``, ``30s``, ``2m``, ``1m30s``, ``1h`` (:mod:`harness.durations`);
  a bare number is refused because it could be seconds or milliseconds. ``at`` may be ``0s``; a
  phase's ``duration`` and a fault's ``for`` may not.
- Phase and fault names are words (letters, digits, ``-``, ``_``, ``.``) and unique: SLO windows
  refer to them by name (``during phase spike``).
- A fault starts before the phases end and, with ``for``, ends no later than they do.
- ``params`` per action: ``toxic`` takes ``type`` (latency, bandwidth, timeout, reset_peer,
  slow_close, limit_data, slicer), ``stream`` (upstream | downstream, default downstream),
  ``toxicity`` (0..1, default 1) and the type's attributes as whole numbers: latency ``latency``
  and ``jitter`` (ms); bandwidth ``rate`` (KB/s); timeout and reset_peer ``timeout`` (ms);
  slow_close ``delay`` (ms); limit_data ``bytes``; slicer ``average_size``, ``size_variation``
  (bytes) and ``delay`` (µs). ``db-throttle`` takes ``latency`` (ms, with optional ``jitter``)
  and/or ``rate`` (KB/s), and targets ``app-db`` unless told otherwise. ``kill``, ``pause``,
  ``restart``, ``down`` and ``maintenance`` take no params; ``maintenance`` takes no target.
- On the local stack the names are known, so targets are checked: instances ``app-<n>``, proxies
  ``lb-app-<n>`` and ``app-db``. An external stack cannot have its instances killed or its
  maintenance flipped by the harness, and needs ``toxiproxy_url`` for Toxiproxy faults.
- Only loopback and ``allow_targets`` hosts may appear in ``entry_url`` and ``toxiproxy_url``, so a
  typo cannot point a load test at someone else's server.
- Paths (``locustfile``, ``compose_file``) are relative to the scenario file.
- A compose stack's instances are its backend services' containers: ``web`` for a service that
  runs one container, ``web-1``, ``web-2``, ... (compose's container number) for one scaled up.
  ``entry`` and ``toxiproxy`` name a service and the port it listens on inside its container;
  the harness finds where that port is published on the host. ``proxies`` are created through
  the Toxiproxy API when the stack comes up (``POST /populate``); the ones Toxiproxy already
  has are found through its API either way. Targets are checked against the running project.

:meth:`Scenario.to_dict` is the resolved form the run directory keeps (durations in seconds, paths
absolute); :meth:`Scenario.from_dict` reads it back.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self, get_args
from urllib.parse import urlsplit

# types-PyYAML is not a dev dependency yet; the ignore is for then and for now.
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from harness.durations import DurationError, format_duration, parse_duration
from harness.errors import BadInputError

__all__ = [
    "FAULT_ACTIONS",
    "TOXIC_TYPES",
    "AnyFault",
    "Capacity",
    "DbThrottleFault",
    "DbThrottleParams",
    "Fault",
    "Guard",
    "InstanceFault",
    "Load",
    "MaintenanceFault",
    "Phase",
    "PostCheck",
    "ProxyDownFault",
    "Scenario",
    "Slo",
    "Stack",
    "ToxicFault",
    "ToxicParams",
    "Window",
    "load_scenario",
    "parse_scenario",
]

StackKind = Literal["local", "compose", "external"]
FaultAction = Literal["kill", "pause", "restart", "toxic", "down", "db-throttle", "maintenance"]
ToxicType = Literal[
    "latency", "bandwidth", "timeout", "reset_peer", "slow_close", "limit_data", "slicer"
]
Stream = Literal["upstream", "downstream"]

FAULT_ACTIONS: tuple[FaultAction, ...] = get_args(FaultAction)
TOXIC_TYPES: tuple[ToxicType, ...] = get_args(ToxicType)
INSTANCE_ACTIONS = frozenset({"kill", "pause", "restart"})
# The faults that go through a Toxiproxy API, so an external stack must say where it is.
TOXIPROXY_ACTIONS = frozenset({"toxic", "down", "db-throttle"})

# Timeline sums are floats (0.1 + 0.2 > 0.3); a nanosecond of slack keeps exact fits legal.
_SLACK = 1e-9
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_LOCAL_INSTANCE = re.compile(r"app-[1-9][0-9]*")
_LOCAL_PROXY = re.compile(r"lb-app-[1-9][0-9]*|app-db")
_PATH_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*/\s*([sm])")


# --- errors -----------------------------------------------------------------------------------
#
# Validators raise ``_invalid(message, *loc)``: a pydantic error whose text is ours and whose ctx
# carries a path below the field being validated, so a check made at the model level can still
# point at ``faults[2].at``. ``_one_line`` turns the first error into the message users see.


def _invalid(message: str, *loc: str | int) -> PydanticCustomError:
    return PydanticCustomError("harness", "{message}", {"message": message, "loc": loc})


def _show(value: object) -> str:
    """A bad value as the message shows it: short, on one line, YAML-ish."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date):  # YAML reads 2024-01-01 as a date
        return value.isoformat()
    return f"a {type(value).__name__}"


def _did_you_mean(word: object, choices: tuple[str, ...] | list[str]) -> str | None:
    if isinstance(word, str):
        close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
        if close:
            return f'did you mean "{close[0]}"?'
    return None


def _not_one_of(value: object, choices: tuple[str, ...]) -> str:
    hint = _did_you_mean(value, choices)
    message = f"expected one of: {', '.join(choices)}, got {_show(value)}"
    return f"{message} ({hint})" if hint else message


# --- scalar validators: each returns the clean value or raises with the full sentence ---------


def _as_number(value: object) -> float | None:
    # YAML's true/false are ints to Python; a flag where a number goes is a mistake, not 1.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _whole_number(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        raise _invalid(f"expected a whole number >= {minimum}, got {_show(value)}")

    return check


def _number(
    low: float, high: float | None = None, *, above: bool = False
) -> Callable[[object], float]:
    """A finite number >= low (> low with ``above``), <= high when given."""
    wanted = f"> {low:g}" if above else f">= {low:g}"
    if high is not None:
        wanted = f"from {low:g} to {high:g}"

    def check(value: object) -> float:
        number = _as_number(value)
        if (
            number is not None
            and math.isfinite(number)
            and (number > low if above else number >= low)
            and (high is None or number <= high)
        ):
            return number
        raise _invalid(f"expected a number {wanted}, got {_show(value)}")

    return check


def _duration(*, positive: bool) -> Callable[[object, ValidationInfo], float]:
    def check(value: object, info: ValidationInfo) -> float:
        number = _as_number(value)
        if number is not None and _resolved(info):
            seconds = number  # the run directory's own dump: seconds already
        elif isinstance(value, str | int | float):
            try:
                seconds = parse_duration(value)  # numbers (and true/false) get its hint
            except DurationError as exc:
                raise _invalid(str(exc)) from None
        else:
            raise _invalid(f"expected a duration like 30s, got {_show(value)}")
        if not math.isfinite(seconds) or seconds < 0:  # only a resolved dump can say so
            raise _invalid(f"expected a duration in seconds >= 0, got {_show(value)}")
        if positive and seconds == 0:
            raise _invalid(f"expected a duration longer than 0s, got {_show(value)}")
        return seconds

    return check


def _name(value: object) -> str:
    if isinstance(value, str) and _NAME.fullmatch(value):
        return value
    raise _invalid(
        f"expected a name of letters, digits, '-', '_' or '.' (at most 64), got {_show(value)}"
    )


def _text(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _invalid(f"expected some text, got {_show(value)}")


def _identifier(value: object) -> str:
    if isinstance(value, str) and value.isidentifier():
        return value
    raise _invalid(f"expected a Python class name, got {_show(value)}")


def _one_of(choices: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise _invalid(_not_one_of(value, choices))

    return check


def _hostname(value: object) -> str:
    if isinstance(value, str):
        host = value.strip().lower().rstrip(".")
        if _is_ip(host) or (
            len(host) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in host.split("."))
        ):
            return host
        if "/" in host or ":" in host:
            raise _invalid(
                f"expected a host name like staging.example.com, not a URL: {_show(value)}"
            )
    raise _invalid(f"expected a host name like staging.example.com, got {_show(value)}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url(value: object) -> str:
    if isinstance(value, str):
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018  # raises ValueError for a port out of range
        except ValueError:
            parts = None
        if parts and parts.scheme in ("http", "https") and parts.hostname:
            return value.strip().rstrip("/")
    raise _invalid(f"expected an http(s) URL like http://127.0.0.1:8080, got {_show(value)}")


def _resolved(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("resolved"))


def _existing_path(value: object, info: ValidationInfo) -> Path:
    """A path relative to the scenario file, made absolute; it must exist (unless re-reading a
    run directory, whose scenario may have moved machines since)."""
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"expected a file path, got {_show(value)}")
    base = Path(info.context["base_dir"]) if info.context and "base_dir" in info.context else None
    # abspath, not resolve(): absolute and normalised is all the run directory needs, and
    # resolve() follows symlinks and can raise on a loop.
    path = Path(os.path.abspath((base or Path.cwd()) / value.strip()))
    if _resolved(info):
        return path
    try:
        found = path.exists()
    except (OSError, ValueError):  # a name too long, or a NUL byte in it
        found = False
    if not found:
        raise _invalid(f"file not found: {_show(value)} (looked for {path})")
    return path


Duration = Annotated[float, PlainValidator(_duration(positive=False))]
PositiveDuration = Annotated[float, PlainValidator(_duration(positive=True))]
WholeNumber = Annotated[int, PlainValidator(_whole_number(0))]
Name = Annotated[str, PlainValidator(_name)]
Text = Annotated[str, PlainValidator(_text)]
ExistingPath = Annotated[Path, PlainValidator(_existing_path)]
Url = Annotated[str, PlainValidator(_url)]
Hostname = Annotated[str, PlainValidator(_hostname)]


# --- models -----------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: object) -> object:
        # extra="forbid" would refuse these too; checking first lets the message name the key
        # and suggest the one that was meant.
        if isinstance(data, Mapping):
            known = [field.alias or name for name, field in cls.model_fields.items()]
            for key in data:
                if key not in known:
                    hint = _did_you_mean(key, known) or f"expected one of: {', '.join(known)}"
                    if isinstance(key, str):
                        raise _invalid(f"unknown key {_show(key)} ({hint})", key)
                    raise _invalid(f"unknown key {_show(key)} ({hint})")
        return data


class Window(NamedTuple):
    """A named stretch of the run, in seconds from its start: ``start <= t < end``."""

    name: str
    start: float
    end: float


def _port(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise _invalid(f"expected a port number from 1 to 65535, got {_show(value)}")


def _url_path(value: object) -> str:
    if isinstance(value, str) and value.startswith("/") and not any(c.isspace() for c in value):
        return value
    raise _invalid(f"expected a URL path like /healthz, got {_show(value)}")


_ADDRESS = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]*):(?P<port>[0-9]{1,5})")


def _address(value: object) -> str:
    match = _ADDRESS.fullmatch(value) if isinstance(value, str) else None
    if match and 1 <= int(match["port"]) <= 65535:
        return str(value)
    raise _invalid(f"expected host:port like 0.0.0.0:15432 or db:5432, got {_show(value)}")


_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def _project(value: object) -> str:
    if isinstance(value, str) and _PROJECT.fullmatch(value):
        return value
    raise _invalid(
        "expected a compose project name (lowercase letters, digits, '-' and '_'), "
        f"got {_show(value)}"
    )


Port = Annotated[int, PlainValidator(_port)]
UrlPath = Annotated[str, PlainValidator(_url_path)]
Address = Annotated[str, PlainValidator(_address)]


class ComposeEntry(_Model):
    """The compose service load is sent to, the port it listens on in its container (published
    on the host), and the path that answers 200 once the system is ready to serve."""

    service: Name = "caddy"
    port: Port = 80
    ready_path: UrlPath = "/readyz"


class ComposeBackends(_Model):
    """The services whose containers are the instances kill, pause and restart act on."""

    services: tuple[Name, ...] = ("app-1", "app-2", "app-3")
    port: Port = 8000
    health_path: UrlPath = "/healthz"

    @model_validator(mode="after")
    def _some_once_each(self) -> Self:
        if not self.services:
            raise _invalid("expected at least one service", "services")
        for index, service in enumerate(self.services):
            if service in self.services[:index]:
                raise _invalid(f"{_show(service)} is listed twice", "services", index)
        return self


class ComposeToxiproxy(_Model):
    """The compose service that runs Toxiproxy, and its API port in the container."""

    service: Name = "toxiproxy"
    port: Port = 8474


class ProxyLink(_Model):
    """A Toxiproxy proxy (the ``POST /populate`` format): a link faults can slow or cut.
    ``listen`` is inside the Toxiproxy container; ``upstream`` as that container reaches it."""

    name: Name
    listen: Address
    upstream: Address


_COMPOSE_ONLY = ("compose_file", "project", "entry", "backends", "toxiproxy", "proxies")


class Stack(_Model):
    """Where the system under test comes from."""

    kind: Annotated[StackKind, PlainValidator(_one_of(get_args(StackKind)))] = "local"
    entry_url: Url | None = None
    toxiproxy_url: Url | None = None
    compose_file: ExistingPath | None = None
    # Kind compose: the project and its topology; None means the sample stack's (compose/).
    project: Annotated[str, PlainValidator(_project)] | None = None
    entry: ComposeEntry | None = None
    backends: ComposeBackends | None = None
    toxiproxy: ComposeToxiproxy | None = None
    proxies: tuple[ProxyLink, ...] = ()
    # Pairs, not a dict, so the frozen model is frozen all the way down; the same shape as
    # LocalStackConfig.app_env.
    env: tuple[tuple[str, str], ...] = ()

    @field_validator("env", mode="before")
    @classmethod
    def _env_pairs(cls, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, Mapping):
            raise _invalid(f"expected a mapping of NAME: value, got {_show(value)}")
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
                raise _invalid(f"expected an environment variable name, got {_show(key)}")
            # An int is unambiguous ("32"); a float or a YAML flag (yes -> True) is not.
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise _invalid(f'expected a string (quote it: "..."), got {_show(item)}', key)
            pairs.append((key, item))
        return tuple(sorted(pairs))

    @field_serializer("env")
    def _env_as_mapping(self, env: tuple[tuple[str, str], ...]) -> dict[str, str]:
        return dict(env)

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if self.kind == "external" and self.entry_url is None:
            raise _invalid("required for kind external (the URL load is sent to)", "entry_url")
        if self.kind != "compose":
            for key in _COMPOSE_ONLY:
                if getattr(self, key) not in (None, ()):
                    raise _invalid(f"only for kind compose, not {self.kind}", key)
        _unique([p.name for p in self.proxies], "proxies", "name", "proxy")
        if self.env and self.kind == "external":
            raise _invalid("only for stacks the harness runs, not external", "env")
        return self


def _arrival_rate(value: object) -> float:
    """Requests per second: ``50``, ``50/s``, ``1.5/s`` or ``300/m``; 0 is a pause."""
    number = _as_number(value)
    if number is None and isinstance(value, str):
        match = _RATE.fullmatch(value.strip())
        if match:
            number = float(match[1]) / (60.0 if match[2] == "m" else 1.0)
    if number is not None and math.isfinite(number) and number >= 0:
        return number
    raise _invalid(f"expected an arrival rate like 50/s (requests per second), got {_show(value)}")


ArrivalRate = Annotated[float, PlainValidator(_arrival_rate)]
LoadModel = Literal["closed", "open"]


class Phase(_Model):
    """One stretch of the load shape. Closed model: ramp to ``users`` at ``spawn_rate`` users/s
    and hold. Open model: requests start at ``rate`` per second, whatever the answers do."""

    name: Name
    duration: PositiveDuration
    users: WholeNumber | None = None
    spawn_rate: Annotated[float, PlainValidator(_number(0, above=True))] | None = None
    rate: ArrivalRate | None = None


class Load(_Model):
    """The Locust side: which users, how many processes, the model, and the phases they run
    through. ``model: open`` paces arrivals (:mod:`harness.load.open_model`): each phase has a
    ``rate``, and at most ``max_in_flight`` requests wait for answers at once (past it an
    arrival is dropped and counted, never sent late)."""

    locustfile: ExistingPath
    user_classes: tuple[Annotated[str, PlainValidator(_identifier)], ...] = ()
    workers: WholeNumber = 0
    model: Annotated[LoadModel, PlainValidator(_one_of(get_args(LoadModel)))] = "closed"
    max_in_flight: Annotated[int, PlainValidator(_whole_number(1))] = 1000
    phases: tuple[Phase, ...]

    @model_validator(mode="after")
    def _phases_named_once(self) -> Self:
        if not self.phases:
            raise _invalid("expected at least one phase", "phases")
        _unique([p.name for p in self.phases], "phases", "name", "phase")
        for index, phase in enumerate(self.phases):
            if self.model == "open":
                for field in ("users", "spawn_rate"):
                    if getattr(phase, field) is not None:
                        raise _invalid(
                            "not used by the open model (it paces arrivals: give rate)",
                            "phases",
                            index,
                            field,
                        )
                if phase.rate is None:
                    raise _invalid(
                        "required by load.model open (requests per second, like 50/s)",
                        "phases",
                        index,
                        "rate",
                    )
            else:
                if phase.rate is not None:
                    raise _invalid(
                        "only with load.model: open (the closed model runs users)",
                        "phases",
                        index,
                        "rate",
                    )
                for field in ("users", "spawn_rate"):
                    if getattr(phase, field) is None:
                        raise _invalid("required, but missing", "phases", index, field)
        return self

    @field_serializer("phases")
    def _phases_of_the_model(self, phases: tuple[Phase, ...]) -> list[dict[str, Any]]:
        # Only the fields the model uses: a closed dump without "rate: null" reads back as it
        # was, and so does an open one without users.
        return [
            {
                key: value
                for key, value in phase.model_dump(mode="json").items()
                if value is not None
            }
            for phase in phases
        ]


class Capacity(_Model):
    """``harness capacity``: offered load (arrival rate) from ``start`` up by ``step`` every
    ``hold`` to at most ``max``; ``faults`` names faults of the scenario to hold for the whole
    of a second, degraded search; ``always`` faults held in every search (the conditions the
    rehearsal assumes, such as a database link as slow as production's). ``stop_at_break``: the
    run ends after the first phase whose whole-run SLOs fail (set in the staircase that
    ``harness capacity`` generates)."""

    start: Annotated[float, PlainValidator(_arrival_rate)] = 10.0
    step: Annotated[float, PlainValidator(_arrival_rate)] = 10.0
    hold: PositiveDuration = 5.0
    max: Annotated[float, PlainValidator(_arrival_rate)] = 200.0
    faults: tuple[Name, ...] = ()
    always: tuple[Name, ...] = ()
    stop_at_break: bool = False

    @model_validator(mode="after")
    def _climbs(self) -> Self:
        if self.start <= 0:
            raise _invalid(f"expected a rate above 0/s, got {self.start:g}/s", "start")
        if self.step <= 0:
            raise _invalid(f"expected a rate above 0/s, got {self.step:g}/s", "step")
        if self.max < self.start:
            raise _invalid(f"expected at least start ({self.start:g}/s), got {self.max:g}/s", "max")
        return self


class _ToxicAttribute(NamedTuple):
    unit: str
    required: bool
    minimum: int


# Toxiproxy treats a missing attribute as 0. Where 0 makes the toxic pointless (or the embedded
# server refuses it), the attribute is required, so a forgotten value is an error, not a no-op.
TOXIC_ATTRIBUTES: dict[ToxicType, dict[str, _ToxicAttribute]] = {
    "latency": {
        "latency": _ToxicAttribute("ms", True, 0),
        "jitter": _ToxicAttribute("ms", False, 0),
    },
    "bandwidth": {"rate": _ToxicAttribute("KB/s", True, 1)},
    "timeout": {"timeout": _ToxicAttribute("ms, 0 = never closed", False, 0)},
    "reset_peer": {"timeout": _ToxicAttribute("ms", False, 0)},
    "slow_close": {"delay": _ToxicAttribute("ms", True, 0)},
    "limit_data": {"bytes": _ToxicAttribute("bytes", True, 0)},
    "slicer": {
        "average_size": _ToxicAttribute("bytes", True, 1),
        "size_variation": _ToxicAttribute("bytes", False, 0),
        "delay": _ToxicAttribute("µs", False, 0),
    },
}


class ToxicParams(_Model):
    """A Toxiproxy toxic. The attributes sit flat beside ``type`` as in the scenario file; only
    the type's own may be given (:data:`TOXIC_ATTRIBUTES`). :attr:`attributes` is the API body."""

    type: Annotated[ToxicType, PlainValidator(_one_of(TOXIC_TYPES))]
    stream: Annotated[Stream, PlainValidator(_one_of(get_args(Stream)))] = "downstream"
    toxicity: Annotated[float, PlainValidator(_number(0, 1))] = 1.0
    latency: WholeNumber | None = None
    jitter: WholeNumber | None = None
    rate: WholeNumber | None = None
    timeout: WholeNumber | None = None
    delay: WholeNumber | None = None
    bytes: WholeNumber | None = None
    average_size: WholeNumber | None = None
    size_variation: WholeNumber | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults_of_the_type(cls, data: object) -> object:
        # Spell out Toxiproxy's 0 for the type's optional attributes, so the model (and the run
        # directory's copy) says exactly what the toxic will do.
        kind = data.get("type") if isinstance(data, Mapping) else None
        if isinstance(data, Mapping) and isinstance(kind, str) and kind in TOXIC_ATTRIBUTES:
            own = TOXIC_ATTRIBUTES[kind]
            return {name: 0 for name, spec in own.items() if not spec.required} | dict(data)
        return data

    @model_validator(mode="after")
    def _attributes_fit_type(self) -> Self:
        own = TOXIC_ATTRIBUTES[self.type]
        for name in _ALL_TOXIC_ATTRIBUTES:
            value = getattr(self, name)
            if value is not None and name not in own:
                raise _invalid(
                    f"a {self.type} toxic takes {_attribute_list(own)}, not {name}", name
                )
        for name, spec in own.items():
            value = getattr(self, name)
            if value is None and spec.required:
                raise _invalid(f"required for a {self.type} toxic ({spec.unit})", name)
            if value is not None and value < spec.minimum:
                raise _invalid(
                    f"expected a whole number >= {spec.minimum} ({spec.unit}), got {value}", name
                )
        return self

    @property
    def attributes(self) -> dict[str, int]:
        """The type's attributes, as the Toxiproxy API takes them."""
        return {name: getattr(self, name) for name in TOXIC_ATTRIBUTES[self.type]}

    @model_serializer(mode="wrap")
    def _only_own_attributes(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        kept = {"type": data["type"], "stream": data["stream"], "toxicity": data["toxicity"]}
        return kept | self.attributes


_ALL_TOXIC_ATTRIBUTES = tuple(dict.fromkeys(a for own in TOXIC_ATTRIBUTES.values() for a in own))


def _attribute_list(own: Mapping[str, _ToxicAttribute]) -> str:
    return ", ".join(f"{name} ({spec.unit})" for name, spec in own.items())


class DbThrottleParams(_Model):
    """A slow database link: ``latency`` (ms, optionally ± ``jitter``) and/or ``rate`` (KB/s)."""

    latency: WholeNumber | None = None
    jitter: WholeNumber | None = None
    rate: Annotated[int, PlainValidator(_whole_number(1))] | None = None

    @model_validator(mode="after")
    def _says_how_slow(self) -> Self:
        if self.latency is None and self.rate is None:
            raise _invalid("db-throttle needs latency (ms) and/or rate (KB/s)")
        if self.jitter is not None and self.latency is None:
            raise _invalid("jitter needs a latency to vary", "jitter")
        return self


class Fault(_Model):
    """What every fault has. The concrete kinds below add a target and params per action."""

    name: Name
    action: FaultAction
    target: str | None = None
    # None: a catalogue entry, never scheduled; `harness gameday` injects it by hand (its ``for``
    # is then the default duration), and `harness run` refuses it (it would never happen).
    at: Duration | None = None
    # ``for`` is a Python keyword, so the attribute is ``for_``; the file and the dump say "for".
    for_: PositiveDuration | None = Field(default=None, alias="for")

    @property
    def scheduled(self) -> bool:
        return self.at is not None

    def window(self, total: float) -> tuple[float, float]:
        """When the fault is in force: from ``at`` to ``at + for``, or to ``total`` without a
        ``for`` (it is reverted when the run ends). A catalogue entry (no ``at``) is planned
        for no time at all: the empty window at the end of the run."""
        if self.at is None:
            return (total, total)
        end = total if self.for_ is None else min(self.at + self.for_, total)
        return (self.at, end)


class InstanceFault(Fault):
    """``kill`` (SIGKILL; the stack may restart it), ``pause`` (SIGSTOP/SIGCONT) or ``restart``
    one shop instance, ``app-<n>``."""

    action: Literal["kill", "pause", "restart"]
    target: Name


class ProxyDownFault(Fault):
    """``down``: disable a Toxiproxy proxy, so the link refuses connections."""

    action: Literal["down"]
    target: Name


class ToxicFault(Fault):
    """``toxic``: add one toxic to a Toxiproxy proxy."""

    action: Literal["toxic"]
    target: Name
    params: ToxicParams


class DbThrottleFault(Fault):
    """``db-throttle``: slow the link between the shop and its database."""

    action: Literal["db-throttle"]
    target: Name = "app-db"
    params: DbThrottleParams


class MaintenanceFault(Fault):
    """``maintenance``: switch the shop's maintenance mode on, and off again when reverted."""

    action: Literal["maintenance"]
    target: None = None

    @model_validator(mode="before")
    @classmethod
    def _no_target(cls, data: object) -> object:
        if isinstance(data, Mapping) and data.get("target") is not None:
            raise _invalid("maintenance takes no target: it applies to the whole shop", "target")
        return data


# Pydantic picks the class by ``action``; its error paths gain that tag as an extra step
# (faults.2.toxic.params), which ``_user_loc`` removes again.
AnyFault = Annotated[
    InstanceFault | ProxyDownFault | ToxicFault | DbThrottleFault | MaintenanceFault,
    Field(discriminator="action"),
]


class _Check(_Model):
    """An expression the verdict code parses: a plain string, or ``{name, expr}``."""

    name: Text
    expr: Text

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: object) -> object:
        if isinstance(data, str):
            if not data.strip():
                raise _invalid(f"expected an expression, got {_show(data)}")
            return {"name": data, "expr": data}
        if not isinstance(data, Mapping):
            raise _invalid(f"expected an expression string or {{name, expr}}, got {_show(data)}")
        return data


class Slo(_Check):
    """An assertion the run is judged by; one JUnit test case each, so names are unique."""


class Guard(_Check):
    """A condition that aborts the run while it goes (exit code 4)."""


_FIELD_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


class PostCheck(_Model):
    """A number read from the system under test before the load and after the run (once every
    fault is reverted), which SLOs compare: ``check(NAME)``, ``check(NAME, delta)``.

    ``sql``: a query answering one number, run against the stack's own database (on a compose
    stack with ``psql`` inside its database container); an external stack needs ``dsn``.
    ``http``: GET this path on the entry URL; ``field`` is a dotted path to a number in the JSON
    answer (``stats.orders``, ``items.0.count``), the whole answer when omitted. ``headers`` and
    ``dsn`` may name environment variables as ``${NAME}``, read when the check runs; nothing of
    a check ever reaches a shell."""

    name: Name
    sql: Text | None = None
    dsn: Text | None = None
    http: UrlPath | None = None
    headers: tuple[tuple[str, str], ...] = ()
    field: Annotated[str, PlainValidator(_text)] | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _header_pairs(cls, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, Mapping):
            raise _invalid(f"expected a mapping of Header: value, got {_show(value)}")
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9-]+", key):
                raise _invalid(f"expected an HTTP header name, got {_show(key)}")
            if not isinstance(item, str) or "\n" in item or "\r" in item:
                raise _invalid(f"expected a one-line string, got {_show(item)}", key)
            pairs.append((key, item))
        return tuple(pairs)

    @field_serializer("headers")
    def _headers_as_mapping(self, headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
        return dict(headers)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.sql is None) == (self.http is None):
            raise _invalid("expected exactly one of sql (a query) or http (a path to GET)")
        if self.sql is not None:
            for key in ("headers", "field"):
                if getattr(self, key):
                    raise _invalid("only for an http check", key)
        elif self.dsn is not None:
            raise _invalid("only for an sql check", "dsn")
        if self.field is not None and not _FIELD_PATH.fullmatch(self.field):
            raise _invalid(f"expected a dotted path like stats.orders, got {_show(self.field)}")
        return self


class Scenario(_Model):
    """A whole scenario file, validated. Times are seconds from the start of the run."""

    name: Name
    description: str | None = None
    stack: Stack = Field(default_factory=Stack)
    allow_targets: tuple[Hostname, ...] = ()
    load: Load
    faults: tuple[AnyFault, ...] = ()
    slos: tuple[Slo, ...] = ()
    guards: tuple[Guard, ...] = ()
    capacity: Capacity | None = None
    checks: tuple[PostCheck, ...] = ()

    # --- the timeline -------------------------------------------------------------------------

    @property
    def total_duration(self) -> float:
        """Seconds from the start of the first phase to the end of the last."""
        return sum(phase.duration for phase in self.load.phases)

    def phase_windows(self) -> list[Window]:
        """Each phase with its start and end, back to back from 0."""
        windows = []
        start = 0.0
        for phase in self.load.phases:
            windows.append(Window(phase.name, start, start + phase.duration))
            start += phase.duration
        return windows

    def phase_at(self, t: float) -> Phase | None:
        """The phase running at ``t`` seconds; a boundary belongs to the phase it starts. None
        before 0 and from :attr:`total_duration` on (the run is over)."""
        for phase, window in zip(self.load.phases, self.phase_windows(), strict=True):
            if window.start <= t < window.end:
                return phase
        return None

    def fault_windows(self) -> list[Window]:
        """Each fault with the stretch it is in force."""
        total = self.total_duration
        return [Window(fault.name, *fault.window(total)) for fault in self.faults]

    # --- the resolved form --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: durations in seconds, paths absolute, every default spelled out."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Read back :meth:`to_dict` (a run directory's scenario). Raises :class:`BadInputError`."""
        return _validate(data, source="resolved scenario", context={"resolved": True})

    # --- checks that need more than one field ---------------------------------------------------

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique([f.name for f in self.faults], "faults", "name", "fault")
        _unique([s.name for s in self.slos], "slos", "name", "SLO")
        _unique([g.name for g in self.guards], "guards", "name", "guard")
        _unique([c.name for c in self.checks], "checks", "name", "check")
        for index, check in enumerate(self.checks):
            if check.sql is not None and check.dsn is None and self.stack.kind == "external":
                raise _invalid(
                    "required for an sql check on an external stack", "checks", index, "dsn"
                )
        self._faults_fit_the_run()
        self._faults_fit_the_stack()
        self._hosts_allowed()
        self._capacity_faults_known()
        return self

    def _capacity_faults_known(self) -> None:
        if self.capacity is None:
            return
        known = [fault.name for fault in self.faults]
        for field in ("faults", "always"):
            for index, name in enumerate(getattr(self.capacity, field)):
                if name not in known:
                    hint = _did_you_mean(name, known) or f"known: {', '.join(known) or 'none'}"
                    raise _invalid(
                        f"unknown fault {_show(name)} ({hint})", "capacity", field, index
                    )

    def _faults_fit_the_run(self) -> None:
        total = self.total_duration
        end_of_run = format_duration(total)
        for index, fault in enumerate(self.faults):
            if fault.at is None:
                continue  # a catalogue entry: injected by hand, whenever and for as long
            if fault.at >= total - _SLACK:
                raise _invalid(
                    f'fault "{fault.name}" starts at {format_duration(fault.at)}, '
                    f"but the phases end at {end_of_run}",
                    "faults",
                    index,
                    "at",
                )
            if fault.for_ is not None and fault.at + fault.for_ > total + _SLACK:
                raise _invalid(
                    f'fault "{fault.name}" runs from {format_duration(fault.at)} for '
                    f"{format_duration(fault.for_)}, to {format_duration(fault.at + fault.for_)}, "
                    f"past the end of the phases at {end_of_run}",
                    "faults",
                    index,
                    "for",
                )

    def _faults_fit_the_stack(self) -> None:
        kind = self.stack.kind
        for index, fault in enumerate(self.faults):
            if kind == "external" and (
                fault.action in INSTANCE_ACTIONS or fault.action == "maintenance"
            ):
                raise _invalid(
                    f"{fault.action} needs a stack the harness runs (local or compose), "
                    "not external",
                    "faults",
                    index,
                    "action",
                )
            needs_toxiproxy = fault.action in TOXIPROXY_ACTIONS
            if kind == "external" and needs_toxiproxy and self.stack.toxiproxy_url is None:
                raise _invalid(
                    f'required for kind external: fault "{fault.name}" ({fault.action}) '
                    "goes through Toxiproxy",
                    "stack",
                    "toxiproxy_url",
                )
            if kind == "local" and fault.target is not None:
                problem = _local_target_problem(fault.action, fault.target)
                if problem:
                    raise _invalid(problem, "faults", index, "target")

    def _hosts_allowed(self) -> None:
        allowed = set(self.allow_targets)
        for field in ("entry_url", "toxiproxy_url"):
            url = getattr(self.stack, field)
            host = (urlsplit(url).hostname or "") if url else ""
            if host and not _is_loopback(host) and host not in allowed:
                raise _invalid(
                    f'host "{host}" is not loopback; add it to allow_targets (or --allow-target '
                    f"{host}) if the harness may send load and faults there",
                    "stack",
                    field,
                )
        from harness.safety import dsn_hosts

        for index, check in enumerate(self.checks):
            # A ${VAR} is known only when the check runs; a literal host is checked now.
            if check.dsn is None or "${" in check.dsn:
                continue
            for host in dsn_hosts(check.dsn):
                if not _is_loopback(host) and host.lower() not in allowed:
                    raise _invalid(
                        f'host "{host}" is not loopback; add it to allow_targets (or '
                        f"--allow-target {host}) if the harness may query it",
                        "checks",
                        index,
                        "dsn",
                    )


def _unique(names: list[str], where: str, field: str, what: str) -> None:
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            raise _invalid(
                f"duplicate {what} name {_show(name)} (also {where}[{first[name]}])",
                where,
                index,
                field,
            )
        first[name] = index


def _local_target_problem(action: str, target: str) -> str | None:
    if action in INSTANCE_ACTIONS and not _LOCAL_INSTANCE.fullmatch(target):
        why = (
            f" ({target} is a Toxiproxy proxy: use toxic or down)"
            if _LOCAL_PROXY.fullmatch(target)
            else ""
        )
        return f"{action} needs a shop instance like app-1, got {_show(target)}{why}"
    if action in TOXIPROXY_ACTIONS and not _LOCAL_PROXY.fullmatch(target):
        why = (
            f" (the proxy in front of {target} is lb-{target})"
            if _LOCAL_INSTANCE.fullmatch(target)
            else ""
        )
        return f"{action} needs a Toxiproxy proxy like lb-app-1 or app-db, got {_show(target)}{why}"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- loading ----------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, but a key written twice in one mapping is an error: PyYAML would keep
    the last one silently, and a duplicated ``for:`` is as easy to miss as a typo."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *defaults" may be overridden by keys written beside it
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # an unhashable key: construct_mapping reports that itself
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"duplicate key {_show(key)}",
                key_node.start_mark,
            )
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_scenario(path: str | os.PathLike[str], *, allow_targets: Iterable[str] = ()) -> Scenario:
    """Read and validate a scenario file. Every problem is a one-line :class:`BadInputError`.
    ``allow_targets``: hosts allowed besides the file's own (``--allow-target``), merged into
    the scenario's ``allow_targets`` so the run directory records them too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_scenario(text, path, allow_targets=allow_targets)


def parse_scenario(
    text: str, path: str | os.PathLike[str], *, allow_targets: Iterable[str] = ()
) -> Scenario:
    """Validate scenario ``text`` as if read from ``path``: messages name it, relative paths in
    it resolve against its directory, and its name defaults to the file's stem."""
    path = Path(path)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise BadInputError(f"{path}: {_yaml_problem(exc)}") from None
    if data is None:
        raise BadInputError(f"{path}: the file is empty; a scenario needs at least load.phases")
    if not isinstance(data, dict):
        raise BadInputError(
            f"{path}: expected a mapping of keys (name, load, ...), got {_show(data)}"
        )
    data = {"name": path.stem, **data}
    extra = list(allow_targets)
    listed = data.get("allow_targets")
    if extra and (listed is None or isinstance(listed, list)):  # else: its own error, below
        data["allow_targets"] = [*(listed or []), *(h for h in extra if h not in (listed or []))]
    return _validate(data, source=str(path), context={"base_dir": os.path.abspath(path.parent)})


def _validate(data: Mapping[str, Any], *, source: str, context: dict[str, Any]) -> Scenario:
    try:
        return Scenario.model_validate(data, context=context)
    except ValidationError as exc:
        # One line even if a value held a line separator json.dumps leaves alone (U+2028).
        line = " ".join(f"{source}: {_one_line(exc.errors()[0])}".splitlines())
        raise BadInputError(line) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "could not be read"
        return f"line {mark.line + 1}, column {mark.column + 1}: bad YAML: {problem}"
    # ReaderError (a control character) has a position but no line; its first line says it all.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"bad YAML: {first}"


def _one_line(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = _user_loc(error["loc"])
    value = error.get("input")
    if kind == "harness":
        loc += tuple(ctx.get("loc", ()))
        message = str(ctx["message"])
    elif kind == "missing":
        message = "required, but missing"
    elif kind == "union_tag_invalid":
        loc += ("action",)
        action = value.get("action") if isinstance(value, Mapping) else value
        message = _not_one_of(action, FAULT_ACTIONS)
    elif kind == "union_tag_not_found":
        loc += ("action",)
        message = f"required, but missing (one of: {', '.join(FAULT_ACTIONS)})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping, got {_show(value)}"
    elif kind in ("tuple_type", "list_type"):
        message = f"expected a list, got {_show(value)}"
    elif kind == "string_type":
        message = f"expected a string, got {_show(value)}"
    elif kind == "extra_forbidden":
        message = f"unknown key {_show(loc[-1]) if loc else ''}"
    else:  # not expected: every field has a validator of ours; still one line, still the value
        message = f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {_show(value)}"
    where = _render_loc(loc)
    return f"{where}: {message}" if where else message


def _user_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The path as the file spells it: drop the union tag pydantic puts after ``faults[i]``."""
    if len(loc) >= 3 and loc[0] == "faults" and isinstance(loc[1], int):
        return loc[:2] + loc[3:]
    return loc


def _render_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PATH_WORD.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out
