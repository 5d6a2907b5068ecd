"""``http``: a fault the user defines as two HTTP calls, one that hurts and one that heals (a
feature flag of their own, an admin API: ``POST /flags/checkout-v2 {"enabled": false}``).

Each call is ``{method, url, headers, body}``. ``${NAME}`` in a header value, the body or the
URL's query is replaced by the environment variable when the call is made, so a token stays in
the environment: the journal record keeps the calls as written, and an error message never
shows an expanded value. The URL's scheme, host and path are literal, so the host the target
policy (:mod:`harness.safety`) checks is the host the call goes to: before every inject and
every revert, and (:mod:`harness.faults.targets`) before a journal record is rebuilt at all.
Redirects are not followed (one could lead elsewhere), and no ``HTTP(S)_PROXY`` is used (it
would see the token). A call that does not answer 2xx in time is an ``InfrastructureError``
with the status and the start of the answer on one line.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PlainValidator,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from harness.errors import BadInputError, InfrastructureError
from harness.faults.base import RECORD_VERSION, Fault, record_str
from harness.faults.envref import check_references, expand, mask, references
from harness.faults.model import FaultModel
from harness.fields import FieldModel, PositiveDuration, invalid, show
from harness.safety import TargetPolicy, run_policy, url_problem
from harness.stack import Stack, StackInfo

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "CallEndpoints",
    "HttpCallFault",
    "HttpRequest",
    "build_http_call_fault",
    "with_target_policy",
]

DEFAULT_TIMEOUT_S: Final = 10.0
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header name (RFC 9110)
_ANSWER_CHARS: Final = 200
# Read further than shown: a secret the answer echoes is masked whole before the cut.
_ANSWER_READ: Final = _ANSWER_CHARS + 2048


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx stays the answer (an error): following it could lead to a host nobody allowed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


# --- one call, as the scenario writes it (and the journal keeps it) ----------------------------


def _method(value: object) -> str:
    if isinstance(value, str) and value.upper() in METHODS:
        return value.upper()
    raise invalid(f"expected one of: {', '.join(METHODS)}, got {show(value)}")


def _url(value: object) -> str:
    if isinstance(value, str) and value.strip() == value and value:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  # raises ValueError for a port out of range
        except ValueError:
            parts = None
        if parts and parts.scheme in ("http", "https") and parts.hostname:
            literal = value[: value.index("?")] if "?" in value else value
            if "${" in literal or "${" in parts.fragment:
                raise invalid(
                    "${NAME} may only be used in the URL's query: the host and path are "
                    f"checked against the allowed targets as written, got {show(value)}"
                )
            if any(c.isspace() for c in value):
                raise invalid(f"expected a URL without spaces, got {show(value)}")
            # The host as the HTTP clients will read it (harness.safety.url_problem).
            problem = url_problem(value)
            if problem:
                raise invalid(f"{problem}: got {show(value)}")
            check_references(parts.query)
            return value
    raise invalid(f"expected an http(s) URL like https://flags.example.com/x, got {show(value)}")


def _text(value: object) -> str:
    if isinstance(value, str):
        return check_references(value)
    raise invalid(f'expected some text (quote it: "..."), got {show(value)}')


class HttpRequest(FieldModel):
    """One call: ``method`` (POST by default), ``url``, ``headers``, ``body``."""

    method: Annotated[str, PlainValidator(_method)] = "POST"
    url: Annotated[str, PlainValidator(_url)]
    # Pairs, not a dict, so the frozen model is frozen all the way down.
    headers: tuple[tuple[str, str], ...] = ()
    body: Annotated[str, PlainValidator(_text)] | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _header_pairs(cls, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, Mapping):
            raise invalid(f"expected a mapping of Header-Name: value, got {show(value)}")
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str) or not _TOKEN.fullmatch(key):
                raise invalid(f"expected a header name like Authorization, got {show(key)}")
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or "\r" in item or "\n" in item:
                raise invalid(
                    f'expected a value on one line (quote it: "..."), got {show(item)}', key
                )
            pairs.append((key, check_references(item, key)))
        return tuple(pairs)

    @field_serializer("headers")
    def _headers_as_mapping(self, headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
        return dict(headers)

    def env_names(self) -> tuple[tuple[str, str], ...]:
        """(where, NAME) of each ``${NAME}``; ``where`` is below the call (``headers.X``)."""
        found = [("url", name) for name in references(urlsplit(self.url).query)]
        found += [(f"headers.{k}", name) for k, v in self.headers for name in references(v)]
        found += [("body", name) for name in references(self.body or "")]
        return tuple(found)

    def describe(self) -> str:
        return f"{self.method} {self.url}"


# --- the injector ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CallEndpoints:
    """Call ``inject_call`` to inject and ``revert_call`` to revert, each within ``timeout_s``.

    ``policy``: the hosts the calls may go to (the run's target policy); None: loopback and
    ``$HARNESS_ALLOW_TARGETS`` only (:func:`harness.safety.run_policy` of nothing), as for a
    fault read back from a journal."""

    name: str
    inject_call: HttpRequest
    revert_call: HttpRequest
    timeout_s: float = DEFAULT_TIMEOUT_S
    policy: TargetPolicy | None = field(default=None, compare=False, repr=False)

    kind: ClassVar[str] = "http"
    self_healing: ClassVar[bool] = False

    @property
    def target(self) -> None:
        return None

    def describe(self) -> str:
        return f"call {self.inject_call.describe()} (revert: {self.revert_call.describe()})"

    def inject(self) -> None:
        self._call("inject", self.inject_call)

    def revert(self) -> None:
        self._call("revert", self.revert_call)

    def to_record(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "kind": self.kind,
            "name": self.name,
            "target": None,
            # As the scenario wrote them: a ${NAME} is expanded only when the call is made.
            "inject": self.inject_call.model_dump(mode="json"),
            "revert": self.revert_call.model_dump(mode="json"),
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], stack: Stack | None = None) -> Self:
        name = record_str(record, "name")
        timeout = record.get("timeout_s")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
            raise BadInputError(
                f"fault record {name!r} (http): timeout_s: expected seconds > 0, got {timeout!r}"
            )
        return cls(
            name=name,
            inject_call=_record_call(record, "inject"),
            revert_call=_record_call(record, "revert"),
            timeout_s=min(float(timeout), 3600.0),
        )

    def _call(self, step: str, call: HttpRequest) -> None:
        what = f'fault "{self.name}": {step}'
        url = expand(call.url, f"{what}.url")
        (self.policy or run_policy(())).check_url(url, f"{what}.url")
        headers = {k: expand(v, f"{what}.headers.{k}") for k, v in call.headers}
        body = None if call.body is None else expand(call.body, f"{what}.body").encode()
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = _content_type(body)
        request = urllib.request.Request(  # noqa: S310 - http(s) only, the host checked above
            url, data=body, headers=headers, method=call.method
        )
        secrets = [name for _, name in call.env_names()]
        shown = call.describe()  # as written: the expanded query may hold a secret
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                status = int(response.status)
                answer = response.read(_ANSWER_READ)
        except urllib.error.HTTPError as exc:
            with exc:
                status, answer = int(exc.code), exc.read(_ANSWER_READ)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise InfrastructureError(
                    f"{what}: {shown} did not answer within {self.timeout_s:g}s"
                ) from None
            raise InfrastructureError(
                f"{what}: {shown} did not answer: {mask(str(reason), secrets)}"
            ) from None
        if not 200 <= status < 300:
            text = " ".join(mask(answer.decode("utf-8", "replace"), secrets).split())
            text = text if len(text) <= _ANSWER_CHARS else text[: _ANSWER_CHARS - 3] + "..."
            raise InfrastructureError(
                f"{what}: {shown} answered {status}" + (f": {text}" if text else "")
            )


def _content_type(body: bytes) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


def _record_call(record: Mapping[str, Any], key: str) -> HttpRequest:
    """A call of a journal record, held to the scenario's rules (a literal host above all)."""
    try:
        return HttpRequest.model_validate(record.get(key))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"])
        raise BadInputError(
            f"fault record {record.get('name')!r} (http): {key}"
            + (f".{loc}" if loc else "")
            + f": {error['msg']}"
        ) from None


def with_target_policy(fault: Fault, policy: TargetPolicy) -> Fault:
    """``fault`` held to ``policy`` (the run's, with the scenario's ``allow_targets``) when it
    makes HTTP calls of the user's; any other fault as it is."""
    if isinstance(fault, CallEndpoints):
        return dataclasses.replace(fault, policy=policy)
    return fault


# --- the scenario's side: the model of an http entry, and the fault it builds ------------------


class HttpCallFault(FaultModel):
    """``http``: make the ``inject`` call to inject, the ``revert`` call to revert."""

    action: Literal["http"]
    target: None = None
    inject: HttpRequest
    revert: HttpRequest
    timeout: PositiveDuration = Field(default=DEFAULT_TIMEOUT_S)

    @model_validator(mode="before")
    @classmethod
    def _no_target(cls, data: object) -> object:
        if isinstance(data, Mapping) and data.get("target") is not None:
            raise invalid("http takes no target: its URLs say what it acts on", "target")
        return data

    def urls(self) -> tuple[str, ...]:
        """The URLs it calls, as written (their hosts are literal)."""
        return (self.inject.url, self.revert.url)

    def env_references(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (f"{step}.{where}", name)
            for step, call in (("inject", self.inject), ("revert", self.revert))
            for where, name in call.env_names()
        )


def build_http_call_fault(spec: HttpCallFault, stack: Stack, info: StackInfo) -> Fault:
    """The calls ``spec`` describes. Held to loopback, ``$HARNESS_ALLOW_TARGETS`` and the
    stack's own entry and Toxiproxy hosts until the run binds its own policy
    (:func:`with_target_policy`)."""
    policy = run_policy((), info.entry_url, info.toxiproxy_url)
    return CallEndpoints(spec.name, spec.inject, spec.revert, spec.timeout, policy)
