"""The ``http`` toxic's configuration: its attributes, which requests it matches, how it counts
them, and the answer it gives when it aborts one.

An extension of the embedded server that the real Toxiproxy does not have (it is only a TCP
proxy). Everything here is pure: no sockets, no event loop, no parser, so it sits at the bottom of
the package (``toxics`` imports it to register the type; ``http_wire`` runs it on a live connection
with h11). The attributes:

=============================  ===============================================================
``action``                     ``"abort"`` (answer the client, never forward) or ``"delay"``
``status``                     the abort's status, 100..599, default 503
``retry_after``                seconds >= 0 or null: ``Retry-After: <seconds rounded up>``
``body``                       the abort's body (text/plain, at most 64 KiB), default ""
``percent``                    share of matching requests affected, 0..100, default 100
``first``                      affect only the first N matching requests per client key (0: off)
``client_key``                 header whose value is the client key; "" or absent: per connection
``delay_ms``, ``jitter_ms``    the delay: ``delay_ms`` ± ``jitter_ms`` (uniform)
``delay_on``                   ``"request"`` (before it is forwarded) or ``"response"``
``method``                     match this method only (case-insensitive), "" for any
``path_prefix``, ``path_glob``  match paths (query left out) by prefix, or by fnmatch glob
``header_name``, ``header_value``  match requests carrying the header (with that exact value)
``exclude_paths``              paths never matched, default the health checks
=============================  ===============================================================

``null`` gives an attribute its default (on an update too: ``"retry_after": null`` removes the
header). Unknown attributes and wrong types are refused, unlike the TCP toxics, whose unknown keys
the real server ignores: there is no real server to stay compatible with here.
"""

from __future__ import annotations

import fnmatch
import http
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "ATTRIBUTE_NAMES",
    "DEFAULT_EXCLUDE_PATHS",
    "FirstCounts",
    "HttpAttributeError",
    "HttpRules",
    "abort_response",
    "has_token",
    "parse_attributes",
    "request_path",
    "rules_of",
]

DEFAULT_EXCLUDE_PATHS: Final = ("/healthz", "/readyz")
MAX_BODY_BYTES: Final = 64 * 1024
# Client keys remembered per toxic for `first`. Past this the oldest key is forgotten (and would be
# counted afresh): a bound on memory when every request carries a new Idempotency-Key.
MAX_CLIENT_KEYS: Final = 100_000

_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a method or header name (RFC 9110)

DEFAULTS: Final[Mapping[str, Any]] = {
    "action": None,
    "status": 503,
    "retry_after": None,
    "body": "",
    "percent": 100,
    "first": 0,
    "client_key": "",
    "delay_ms": 0,
    "jitter_ms": 0,
    "delay_on": "request",
    "method": "",
    "path_prefix": "",
    "path_glob": "",
    "header_name": "",
    "header_value": "",
    "exclude_paths": list(DEFAULT_EXCLUDE_PATHS),
}
ATTRIBUTE_NAMES: Final = tuple(DEFAULTS)


class HttpAttributeError(ValueError):
    """An attribute value the http toxic refuses (the API answers 400 ``bad request body``)."""


# -- attributes -------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(key: str, value: Any) -> Any:
    """``value`` if it is valid for ``key``; else HttpAttributeError saying what was expected."""
    bad = f"attributes.{key} must be"
    if key in ("action", "delay_on"):
        choices = ("abort", "delay") if key == "action" else ("request", "response")
        if value not in choices:
            raise HttpAttributeError(f'{bad} "{choices[0]}" or "{choices[1]}", got {value!r}')
    elif key == "status":
        if not _is_int(value) or not 100 <= value <= 599:
            raise HttpAttributeError(f"{bad} an integer between 100 and 599, got {value!r}")
    elif key == "retry_after":
        if not _is_number(value) or value < 0:
            raise HttpAttributeError(f"{bad} a number of seconds >= 0 or null, got {value!r}")
    elif key == "percent":
        if not _is_number(value) or not 0 <= value <= 100:
            raise HttpAttributeError(f"{bad} a number between 0 and 100, got {value!r}")
    elif key in ("first", "delay_ms", "jitter_ms"):
        if not _is_int(value) or value < 0:
            raise HttpAttributeError(f"{bad} an integer >= 0, got {value!r}")
    elif key in ("method", "client_key", "header_name"):
        if not isinstance(value, str) or (value and not _TOKEN.fullmatch(value)):
            what = "an HTTP method" if key == "method" else "a header name"
            raise HttpAttributeError(f'{bad} {what} or "", got {value!r}')
    elif key == "exclude_paths":
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise HttpAttributeError(f"{bad} a list of paths, got {value!r}")
        value = list(value)
    elif not isinstance(value, str):  # body, path_prefix, path_glob, header_value
        raise HttpAttributeError(f"{bad} a string, got {value!r}")
    elif key == "body" and len(value.encode()) > MAX_BODY_BYTES:
        raise HttpAttributeError(f"{bad} at most {MAX_BODY_BYTES} bytes, got {len(value)}")
    return value


def parse_attributes(given: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (a request's ``attributes``) merged over ``current`` (``{}`` for a new toxic),
    checked, with every attribute present; HttpAttributeError names the first bad one."""
    for key in given:
        if key not in DEFAULTS:
            known = ", ".join(ATTRIBUTE_NAMES)
            raise HttpAttributeError(f"attributes.{key}: unknown attribute (known: {known})")
    merged: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        if key in given:
            value = given[key]
            merged[key] = _copy(default) if value is None else _check(key, value)
        else:
            merged[key] = _copy(current.get(key, default))
    if merged["action"] is None:
        raise HttpAttributeError('attributes.action is required: "abort" or "delay"')
    if merged["header_value"] and not merged["header_name"]:
        raise HttpAttributeError("attributes.header_value needs attributes.header_name")
    return merged


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# -- matching and counting --------------------------------------------------------------------


def request_path(target: bytes) -> str:
    """The path of a request target, without the query: ``/a/b`` of ``/a/b?x=1`` and of
    ``http://host/a/b?x=1``; ``*`` of ``OPTIONS *``. Percent-encoding is kept as sent."""
    text = target.decode("ascii", "replace")  # h11 only lets visible ASCII through
    if text.startswith("/") or text == "*":
        return text.split("?", 1)[0].split("#", 1)[0]
    return urlsplit(text).path or "/"


def has_token(headers: Iterable[tuple[bytes, bytes]], name: bytes, token: bytes) -> bool:
    """Whether a comma-separated header (lower-case ``name``) lists ``token`` (lower case):
    ``Connection: keep-alive, close`` has ``close``."""
    return any(
        key == name and token in (t.strip() for t in value.lower().split(b","))
        for key, value in headers
    )


class FirstCounts:
    """Matching requests seen per client key, for ``first``: one per toxic, shared by all its
    connections, kept across updates of the toxic and gone with it."""

    __slots__ = ("_counts", "_limit")

    def __init__(self, limit: int = MAX_CLIENT_KEYS) -> None:
        self._counts: dict[bytes, int] = {}
        self._limit = limit

    def take(self, key: bytes, first: int) -> bool:
        """Count one matching request of ``key``: True while it is among the first ``first``."""
        seen = self._counts.get(key, 0)
        if seen >= first:
            return False
        if seen == 0 and len(self._counts) >= self._limit:
            del self._counts[next(iter(self._counts))]  # the oldest key
        self._counts[key] = seen + 1
        return True

    def __len__(self) -> int:
        return len(self._counts)


Headers = Iterable[tuple[bytes, bytes]]
Random = Callable[[], float]


@dataclass(frozen=True, slots=True)
class HttpRules:
    """One http toxic's attributes, ready to apply to a request."""

    abort: bool
    status: int
    retry_after: int | None
    body: bytes
    percent: float
    first: int
    client_key: bytes
    delay_s: float
    jitter_s: float
    on_response: bool
    method: bytes
    path_prefix: str
    path_glob: re.Pattern[str] | None
    header_name: bytes
    header_value: bytes
    exclude_paths: frozenset[str]

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> HttpRules:
        """From attributes :func:`parse_attributes` accepted."""
        a = {**DEFAULTS, **attributes}
        retry_after = a["retry_after"]
        glob = a["path_glob"]
        return cls(
            abort=a["action"] == "abort",
            status=int(a["status"]),
            retry_after=None if retry_after is None else math.ceil(retry_after),
            body=str(a["body"]).encode(),
            percent=float(a["percent"]),
            first=int(a["first"]),
            client_key=str(a["client_key"]).lower().encode(),
            delay_s=int(a["delay_ms"]) / 1000.0,
            jitter_s=int(a["jitter_ms"]) / 1000.0,
            on_response=a["delay_on"] == "response",
            method=str(a["method"]).upper().encode(),
            path_prefix=str(a["path_prefix"]),
            path_glob=re.compile(fnmatch.translate(glob)) if glob else None,
            header_name=str(a["header_name"]).lower().encode(),
            header_value=str(a["header_value"]).encode(),
            exclude_paths=frozenset(a["exclude_paths"]),
        )

    def matches(self, method: bytes, path: str, headers: Headers) -> bool:
        """Whether a request is one this toxic is about (before ``percent`` and ``first``).
        Header names are lower case, as h11 gives them."""
        if path in self.exclude_paths:
            return False
        if self.method and method.upper() != self.method:
            return False
        if self.path_prefix and not path.startswith(self.path_prefix):
            return False
        if self.path_glob is not None and not self.path_glob.match(path):
            return False
        if self.header_name:
            return any(
                name == self.header_name and (not self.header_value or value == self.header_value)
                for name, value in headers
            )
        return True

    def affects(
        self,
        method: bytes,
        path: str,
        headers: Headers,
        *,
        counts: FirstCounts,
        connection: dict[str, Any],
        rand: Random,
    ) -> bool:
        """Whether this request is affected: it matches, is among the first ``first`` matching
        requests of its client key (``counts``; ``connection`` holds the per-connection count
        when the request has no key), and wins the ``percent`` draw."""
        if not self.matches(method, path, headers):
            return False
        if self.first:
            key = self._client_key(headers)
            if key is None:
                seen = connection.get("first", 0)
                if seen >= self.first:
                    return False
                connection["first"] = seen + 1
            elif not counts.take(key, self.first):
                return False
        return self.percent >= 100 or rand() * 100 < self.percent

    def _client_key(self, headers: Headers) -> bytes | None:
        if self.client_key:
            for name, value in headers:
                if name == self.client_key:
                    return value
        return None

    def delay(self, rand: Random) -> float:
        """Seconds of one delay: ``delay_ms`` ± ``jitter_ms``, never below 0."""
        if self.jitter_s <= 0:
            return self.delay_s
        return max(0.0, self.delay_s + (2 * rand() - 1) * self.jitter_s)


def rules_of(
    attributes: Mapping[str, Any], shared: dict[str, Any]
) -> tuple[HttpRules, FirstCounts]:
    """A toxic's rules, built once per version of its ``attributes``, and its ``first`` counts,
    both kept in the toxic's ``shared`` state (``ToxicConfig.shared``), so that every
    connection uses the same and an update keeps the counts."""
    cached = shared.get("rules")
    if cached is None or cached[0] is not attributes:
        cached = shared["rules"] = (attributes, HttpRules.from_attributes(attributes))
    counts = shared.get("first")
    if counts is None:
        counts = shared["first"] = FirstCounts()
    return cached[1], counts


def abort_response(rules: HttpRules, *, head_only: bool = False, close: bool = False) -> bytes:
    """The answer to an aborted request: the status, ``Content-Length`` (so a keep-alive client
    knows where it ends), ``Retry-After`` when set, ``Connection: close`` only when ``close``
    (the request asked for it, or is HTTP/1.0); no body for a HEAD request."""
    try:
        reason = http.HTTPStatus(rules.status).phrase
    except ValueError:
        reason = ""
    lines = [
        f"HTTP/1.1 {rules.status} {reason}",  # the space stays when the reason is empty
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(rules.body)}",
    ]
    if rules.retry_after is not None:
        lines.append(f"Retry-After: {rules.retry_after}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + rules.body
