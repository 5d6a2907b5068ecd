"""HTTP faults at a proxy: ``http-abort`` (answer matching requests with an error, without
forwarding them) and ``http-delay`` (hold them, or their answers).

Both are one ``http`` toxic on the upstream stream (the client's requests) of a Toxiproxy proxy,
added and removed through the Toxiproxy API like any other toxic. Only the harness's own
Toxiproxy-compatible server has that toxic (``GET /harness/capabilities`` lists it); the real
Toxiproxy is a TCP proxy and has none, so :func:`check_http_support` refuses such faults before
any load. The toxic is named ``harness-<fault name>`` as every toxic the harness adds, so a
revert in another process finds it; a revert that finds no toxic, no proxy or (as the stack
says) no Toxiproxy any more has nothing to do. Like every toxic the harness adds, it is attached
to this process's fault lease where there is one (:mod:`harness.faults.lease`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import (
    Annotated,
    Any,
    ClassVar,
    Final,
    Literal,
    Protocol,
    Self,
    TypeAlias,
    get_args,
    runtime_checkable,
)

from pydantic import BeforeValidator, Field, PlainValidator, model_validator

from harness.errors import BadInputError, ProxyConflict, ProxyNotFound, ToxiproxyError
from harness.faults.base import RECORD_VERSION, Fault, record_str
from harness.faults.lease import current_lease
from harness.faults.model import FaultModel, TargetKind
from harness.faults.stackref import stack_ref, toxiproxy_is_gone
from harness.faults.toxic import TOXIPROXY_TIMEOUT_S, proxy_of, toxic_name, toxiproxy_of
from harness.fields import (
    Duration,
    FieldModel,
    Name,
    PositiveDuration,
    WholeNumber,
    invalid,
    number,
    one_of,
    show,
)
from harness.proxy.client import ToxiproxyClient
from harness.stack import Stack, StackInfo

__all__ = [
    "DEFAULT_EXCLUDED_PATHS",
    "HTTP_METHODS",
    "HTTP_TOXIC",
    "AddHttpToxic",
    "HttpAbortFault",
    "HttpAbortParams",
    "HttpBody",
    "HttpDelayFault",
    "HttpDelayParams",
    "HttpMatchParams",
    "UsesHttpToxic",
    "build_http_abort_fault",
    "build_http_delay_fault",
    "check_http_support",
    "http_toxic",
]

HTTP_TOXIC: Final = "http"
# Requests from the client to the server: what the toxic reads and answers.
HTTP_STREAM: Final = "upstream"
HTTP_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# The load balancer's health checks: failing them would take every backend out of rotation.
DEFAULT_EXCLUDED_PATHS: Final = ("/healthz", "/readyz")
MAX_BODY_BYTES: Final = 64 * 1024
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110)

# An attribute's value as JSON has it; lists are tuples here, so the fault is frozen throughout.
AttributeValue: TypeAlias = str | int | float | bool | tuple[str, ...] | None


# --- the injector ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddHttpToxic:
    """One ``http`` toxic on one proxy; revert removes it. ``kind`` is the scenario action that
    built it: ``http-abort``, ``http-delay``, or ``maintenance`` on a stack that is not the
    sample shop."""

    name: str
    kind: str
    proxy: str
    toxic: str  # its name in Toxiproxy
    attributes: tuple[tuple[str, AttributeValue], ...]
    toxiproxy_url: str
    # Only asked whether Toxiproxy is gone, when it does not answer a revert.
    stack: Stack | None = field(default=None, compare=False)

    self_healing: ClassVar[bool] = False

    @property
    def target(self) -> str:
        return self.proxy

    def describe(self) -> str:
        attrs = dict(self.attributes)
        if attrs.get("action") == "delay":
            what = f"HTTP delay {attrs.get('delay_ms')}ms"
            if attrs.get("jitter_ms"):
                what += f" ± {attrs.get('jitter_ms')}ms"
            what += f" before the {attrs.get('delay_on', 'request')}"
        else:
            what = f"HTTP {attrs.get('status', 503)}"
            if attrs.get("retry_after") is not None:
                what += f" with Retry-After {_seconds(attrs['retry_after'])}"
        return f"{what} for {_scope(attrs)} at {self.proxy} (http toxic {self.toxic})"

    def inject(self) -> None:
        client = self._client()
        try:
            self._add(client)
        except ProxyConflict:
            # A toxic by our name is ours, left by an earlier try that never reverted (a
            # crash): replace it, so what is in force is what this fault asks for.
            self._remove(client)
            self._add(client)

    def revert(self) -> None:
        try:
            self._remove(self._client())
        except ToxiproxyError as exc:
            if exc.status == 0 and toxiproxy_is_gone(self.stack):
                return  # its toxics died with it: Toxiproxy keeps them in memory only
            raise ToxiproxyError(
                f"could not remove http toxic {self.toxic} from {self.proxy}: {exc}",
                status=exc.status,
            ) from exc

    def to_record(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "kind": self.kind,
            "name": self.name,
            "target": self.proxy,
            "toxiproxy_url": self.toxiproxy_url,
            "toxic": {
                "name": self.toxic,
                "type": HTTP_TOXIC,
                "stream": HTTP_STREAM,
                "attributes": _attributes_json(self.attributes),
            },
            "stack": stack_ref(self.stack),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stack: Stack | None = None) -> Self:
        name = record_str(record, "name")
        where = f"fault record {name!r} ({record.get('kind')})"
        toxic = record.get("toxic")
        if not isinstance(toxic, Mapping) or toxic.get("type") != HTTP_TOXIC:
            raise BadInputError(f"{where}: toxic: expected an http toxic, got {toxic!r}")
        return cls(
            name=name,
            kind=record_str(record, "kind"),
            proxy=record_str(record, "target"),
            toxic=record_str(toxic, "name"),
            attributes=_attributes_from_json(toxic.get("attributes"), where),
            toxiproxy_url=record_str(record, "toxiproxy_url"),
            stack=stack,  # found by fault_from_record (harness.faults.factory)
        )

    def _client(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.toxiproxy_url, timeout_s=TOXIPROXY_TIMEOUT_S)

    def _add(self, client: ToxiproxyClient) -> None:
        client.add_toxic(
            self.proxy,
            HTTP_TOXIC,
            name=self.toxic,
            stream=HTTP_STREAM,
            toxicity=1.0,
            attributes=_attributes_json(self.attributes),
            lease=current_lease(self.toxiproxy_url),
        )

    def _remove(self, client: ToxiproxyClient) -> None:
        # Not found: the toxic, or its whole proxy, is gone already.
        with contextlib.suppress(ProxyNotFound):
            client.remove_toxic(self.proxy, self.toxic)


def _attributes_json(attributes: tuple[tuple[str, AttributeValue], ...]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attributes}


def _attributes_from_json(data: object, where: str) -> tuple[tuple[str, AttributeValue], ...]:
    if not isinstance(data, Mapping) or data.get("action") not in ("abort", "delay"):
        raise BadInputError(f"{where}: toxic.attributes: not an http toxic's: {data!r}")
    pairs: list[tuple[str, AttributeValue]] = []
    for key, value in data.items():
        if key not in _ATTRIBUTES:
            raise BadInputError(f"{where}: toxic.attributes: unknown attribute {key!r}")
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            pairs.append((key, tuple(value)))
        elif value is None or isinstance(value, str | int | float | bool):
            pairs.append((key, value))
        else:
            raise BadInputError(f"{where}: toxic.attributes.{key}: unexpected value {value!r}")
    return tuple(pairs)


def _seconds(value: object) -> str:
    return f"{value:g}s" if isinstance(value, int | float) else str(value)


def _scope(attrs: Mapping[str, Any]) -> str:
    """Which requests, in words: ``GET /api/* with X-Test, 20% of them, not /healthz``."""
    parts = [str(attrs.get("method") or "") or "every request"]
    if attrs.get("path_prefix"):
        parts.append(f"under {attrs['path_prefix']}")
    if attrs.get("path_glob"):
        parts.append(f"matching {attrs['path_glob']}")
    if attrs.get("header_name"):
        value = attrs.get("header_value")
        parts.append(f"with {attrs['header_name']}" + (f": {value}" if value else ""))
    text = " ".join(parts)
    if attrs.get("first"):
        key = attrs.get("client_key") or "connection"
        text += f", the first {attrs['first']} per {key}"
    if attrs.get("percent", 100) != 100:
        text += f", {attrs['percent']:g}% of them"
    excluded = attrs.get("exclude_paths") or ()
    if excluded:
        text += f", not {', '.join(excluded)}"
    return text


# --- the scenario's side: the models of http-abort and http-delay entries ----------------------


def _header_name(value: object) -> str:
    if isinstance(value, str) and (value == "" or _TOKEN.fullmatch(value)):
        return value
    raise invalid(f"expected a header name like Idempotency-Key, got {show(value)}")


def _method(value: object) -> str:
    if isinstance(value, str) and (value == "" or value.upper() in HTTP_METHODS):
        return value.upper()
    raise invalid(f"expected one of: {', '.join(HTTP_METHODS)}, got {show(value)}")


def _path_prefix(value: object) -> str:
    if isinstance(value, str) and (
        value == "" or (value.startswith("/") and not any(c.isspace() for c in value))
    ):
        return value
    raise invalid(f"expected a URL path like /api/, got {show(value)}")


def _path_glob(value: object) -> str:
    if isinstance(value, str) and (
        value == "" or (value[:1] in ("/", "*") and not any(c.isspace() for c in value))
    ):
        return value
    raise invalid(f"expected a path pattern like /api/*/checkout, got {show(value)}")


def _paths(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise invalid(f"expected a list of URL paths like [/healthz], got {show(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.startswith("/") or any(c.isspace() for c in item):
            raise invalid(f"expected a URL path like /healthz, got {show(item)}", index)
    return tuple(value)


def _header_value(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and "\r" not in value and "\n" not in value:
        return value
    raise invalid(f'expected a header value on one line (quote it: "..."), got {show(value)}')


def _status(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    raise invalid(f"expected an HTTP status from 100 to 599, got {show(value)}")


def _body(value: object) -> str:
    if isinstance(value, str) and len(value.encode("utf-8")) <= MAX_BODY_BYTES:
        return value
    if isinstance(value, str):
        raise invalid(f"expected at most {MAX_BODY_BYTES // 1024} KiB of text, got more")
    raise invalid(f'expected some text (quote it: "..."), got {show(value)}')


HeaderName = Annotated[str, PlainValidator(_header_name)]
HttpBody = Annotated[str, PlainValidator(_body)]
Percent = Annotated[float, PlainValidator(number(0, 100))]
DelayOn = Literal["request", "response"]


class HttpMatchParams(FieldModel):
    """Which requests an HTTP fault acts on, and how many of them: what both actions share."""

    method: Annotated[str, PlainValidator(_method)] = ""
    path_prefix: Annotated[str, PlainValidator(_path_prefix)] = ""
    path_glob: Annotated[str, PlainValidator(_path_glob)] = ""
    header_name: HeaderName = ""
    header_value: Annotated[str, PlainValidator(_header_value)] = ""
    exclude_paths: Annotated[tuple[str, ...], BeforeValidator(_paths)] = DEFAULT_EXCLUDED_PATHS
    percent: Percent = 100.0
    # The first N matching requests of each client (the client_key header's value; without
    # one, each connection), then they pass: exact counts, for retry tests. 0: off.
    first: WholeNumber = 0
    client_key: HeaderName = ""

    @model_validator(mode="after")
    def _value_needs_a_name(self) -> Self:
        if self.header_value and not self.header_name:
            raise invalid("needs header_name (the header whose value it is)", "header_value")
        if self.client_key and not self.first:
            raise invalid("only with first (the requests are counted per client key)", "client_key")
        return self

    def match_attributes(self) -> dict[str, AttributeValue]:
        return {
            "method": self.method,
            "path_prefix": self.path_prefix,
            "path_glob": self.path_glob,
            "header_name": self.header_name,
            "header_value": self.header_value,
            "exclude_paths": self.exclude_paths,
            "percent": self.percent,
            "first": self.first,
            "client_key": self.client_key,
        }


# Every attribute the embedded server's http toxic takes (the contract): a record that brings
# another one is refused rather than sent. The matching ones are named as the scenario names them.
_ATTRIBUTES: Final = frozenset(HttpMatchParams.model_fields) | {
    "action",
    "status",
    "retry_after",
    "body",
    "delay_ms",
    "jitter_ms",
    "delay_on",
}


class HttpAbortParams(HttpMatchParams):
    """``http-abort``: answer matching requests with ``status`` instead of forwarding them."""

    status: Annotated[int, PlainValidator(_status)] = 503
    retry_after: Duration | None = None  # whole seconds on the wire, rounded up
    body: HttpBody = ""

    def attributes(self) -> dict[str, AttributeValue]:
        own: dict[str, AttributeValue] = {"action": "abort", "status": self.status}
        if self.retry_after is not None:
            own["retry_after"] = self.retry_after
        own["body"] = self.body
        return own | self.match_attributes()


class HttpDelayParams(HttpMatchParams):
    """``http-delay``: hold matching requests (``on: request``, before they are forwarded) or
    their answers (``on: response``) for ``delay`` ± ``jitter``."""

    delay: PositiveDuration
    jitter: Duration = 0.0
    on: Annotated[DelayOn, PlainValidator(one_of(get_args(DelayOn)))] = "request"

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_is_not_true(cls, data: object) -> object:
        # YAML 1.1 reads a bare ``on:`` key as the boolean true (GitHub Actions' famous trap).
        if isinstance(data, Mapping) and True in data and "on" not in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _whole_milliseconds(self) -> Self:
        if _ms(self.delay) < 1:
            raise invalid(f"expected at least 1ms, got {self.delay * 1000:g}ms", "delay")
        return self

    def attributes(self) -> dict[str, AttributeValue]:
        own: dict[str, AttributeValue] = {
            "action": "delay",
            "delay_ms": _ms(self.delay),
            "jitter_ms": _ms(self.jitter),
            "delay_on": self.on,
        }
        return own | self.match_attributes()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class HttpAbortFault(FaultModel):
    """``http-abort``: matching requests through a proxy are answered with an error (503 with
    ``Retry-After`` by default) and never reach the server."""

    target_kind: ClassVar[TargetKind | None] = "proxy"

    action: Literal["http-abort"]
    target: Name
    params: HttpAbortParams = Field(default_factory=HttpAbortParams)

    def uses_http_toxic(self, info: StackInfo) -> bool:
        return True


class HttpDelayFault(FaultModel):
    """``http-delay``: matching requests (or their answers) through a proxy are held."""

    target_kind: ClassVar[TargetKind | None] = "proxy"

    action: Literal["http-delay"]
    target: Name
    params: HttpDelayParams

    def uses_http_toxic(self, info: StackInfo) -> bool:
        return True


def http_toxic(
    name: str,
    kind: str,
    proxy: str,
    params: HttpAbortParams | HttpDelayParams,
    toxiproxy_url: str,
    stack: Stack | None,
) -> AddHttpToxic:
    """The ``http`` toxic ``params`` describe on ``proxy``, as the fault ``name`` of action
    ``kind`` adds it (``maintenance`` builds an abort too)."""
    attributes = tuple(params.attributes().items())
    return AddHttpToxic(name, kind, proxy, toxic_name(name), attributes, toxiproxy_url, stack)


def build_http_abort_fault(spec: HttpAbortFault, stack: Stack, info: StackInfo) -> Fault:
    """The abort ``spec`` describes, on the proxy of ``stack`` it names."""
    proxy, url = proxy_of(spec, info), toxiproxy_of(spec, info)
    return http_toxic(spec.name, spec.action, proxy, spec.params, url, stack)


def build_http_delay_fault(spec: HttpDelayFault, stack: Stack, info: StackInfo) -> Fault:
    """The delay ``spec`` describes, on the proxy of ``stack`` it names."""
    proxy, url = proxy_of(spec, info), toxiproxy_of(spec, info)
    return http_toxic(spec.name, spec.action, proxy, spec.params, url, stack)


# --- before any load: the stack's Toxiproxy must have the http toxic ---------------------------


@runtime_checkable
class UsesHttpToxic(Protocol):
    """A fault model whose fault may be an ``http`` toxic, depending on the stack."""

    def uses_http_toxic(self, info: StackInfo) -> bool: ...


def check_http_support(faults: Iterable[FaultModel], info: StackInfo) -> None:
    """``BadInputError`` (one line naming the first such fault) when a fault that is an ``http``
    toxic on this stack would go to a Toxiproxy without HTTP toxics (the real Toxiproxy).
    Asks the stack's Toxiproxy once, and only when some fault needs it; ``ToxiproxyError``
    when it does not answer."""
    needing = [
        (index, fault)
        for index, fault in enumerate(faults)
        if isinstance(fault, UsesHttpToxic) and fault.uses_http_toxic(info)
    ]
    if not needing or not info.toxiproxy_url:
        return  # no such fault; or no Toxiproxy at all, which the builders refuse themselves
    client = ToxiproxyClient(info.toxiproxy_url, timeout_s=TOXIPROXY_TIMEOUT_S)
    if client.supports_http_toxics():
        return
    index, fault = needing[0]
    what = fault.action
    if what == "maintenance":
        what = "maintenance at a proxy (an HTTP 503 there)"
    raise BadInputError(
        f'faults[{index}] ("{fault.name}"): {what} needs the harness\'s own '
        f"Toxiproxy (the real Toxiproxy has no HTTP toxics); the one at {info.toxiproxy_url} "
        "has none: point the stack at `harness proxy serve`, or use stack.front_proxy: true "
        "on an external stack"
    )
