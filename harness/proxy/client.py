"""The one client the harness uses to talk to a Toxiproxy server, the real one or ours.

Built on ``toxiproxy-python`` (``toxiproxy.api.APIConsumer``). What is taken from the package:

* its HTTP path: ``APIConsumer.get`` / ``post`` / ``delete`` (``requests`` underneath), so every
  request the harness sends to Toxiproxy goes out the same way;
* its status check, ``validate_response``, and the exceptions it raises for 400, 404 and 409
  (``InvalidToxic``, ``NotFound``, ``ProxyExists``, each carrying the raw body).

Why it is wrapped:

* **Several servers, several threads.** The package keeps the server address in *class*
  attributes (``APIConsumer.host`` / ``.port``), i.e. one process-wide global. Each
  :class:`ToxiproxyClient` instead calls through its own subclass of ``APIConsumer`` that carries
  its own ``host`` and ``port``; the package's class methods read ``cls.host``, so they use the
  subclass's values. Nothing shared is ever mutated (and ``requests.get`` opens a fresh session
  per call), so clients for different servers never cross-talk, calls need no lock and run in
  parallel, and other code that sets the package's global address neither affects us nor is
  affected by us. (Setting the global under a lock around each call would also work, but would
  serialise every call in the process and still race with code that sets it without our lock.)
* **Errors.** Every failure becomes a :class:`~harness.errors.ToxiproxyError`: ``status`` is the
  HTTP status (0 when no HTTP answer came back) and the message is the server's ``"error"`` field.
  404 is :class:`~harness.errors.ProxyNotFound`, 409 :class:`~harness.errors.ProxyConflict`. The
  package silently passes other statuses (a 500 on a bind failure, a 403, ...); we raise on them
  too. No ``requests`` or ``urllib3`` exception leaves this module.
* **Typed results.** The package's ``Proxy`` drops the toxics, ``Proxy.add_toxic`` returns
  nothing and ``Toxiproxy.populate`` reimplements ``/populate`` client-side with different
  semantics. Its ``Toxiproxy`` and ``Proxy`` objects also read the global address and send
  requests without a timeout (a server that hangs would hang the harness). So the calls below go
  straight to ``APIConsumer`` with a timeout and return frozen dataclasses
  (:class:`ProxyInfo`, :class:`ToxicInfo`) that ignore fields they do not know (the real server
  adds ``"Logger": {}``).
* **Missing calls.** Updating a toxic and the server-side ``/populate`` are sent through the same
  ``APIConsumer``. Updates use POST, which Toxiproxy treats exactly like PATCH on these routes.
* **Extensions of the embedded server** (``/harness/capabilities``, leases under
  ``/harness/leases``) go the same way; ask :meth:`ToxiproxyClient.supports_leases` first: the
  real server answers 404 to the lease calls and silently ignores a toxic's ``lease`` field.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.errors import BadInputError, ProxyConflict, ProxyNotFound, ToxiproxyError

__all__ = ["DEFAULT_TIMEOUT_S", "LeaseInfo", "ProxyInfo", "ToxicInfo", "ToxiproxyClient"]

DEFAULT_TIMEOUT_S: Final = 10.0

_Method = Literal["GET", "POST", "DELETE"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ToxicInfo:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data["stream"]),
            toxicity=float(data["toxicity"]),
            attributes=MappingProxyType(dict(data.get("attributes") or {})),
        )


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy as the server reports it. ``listen`` is the bound address (``host:port``)."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data["enabled"]),
            toxics=tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()),
        )

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class LeaseInfo:
    """A lease of the embedded server: its toxics are removed unless it is renewed within
    ``ttl_ms``. ``toxics`` holds ``(proxy, toxic)`` names."""

    id: str
    owner: str
    ttl_ms: int
    expires_in_ms: int
    toxics: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeaseInfo:
        return cls(
            id=str(data["id"]),
            owner=str(data.get("owner") or ""),
            ttl_ms=int(data["ttl_ms"]),
            expires_in_ms=int(data["expires_in_ms"]),
            toxics=tuple((str(t["proxy"]), str(t["toxic"])) for t in data.get("toxics") or ()),
        )


def _split_api_url(api_url: str) -> tuple[str, int, str]:
    """``http://host:port`` (or ``host:port``) -> host as the package formats it, port, URL."""
    parts = urlsplit(api_url if "://" in api_url else f"http://{api_url}")
    try:
        port = parts.port or 8474
    except ValueError as exc:
        raise BadInputError(f"toxiproxy API URL {api_url!r}: {exc}") from exc
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise BadInputError(f"toxiproxy API URL {api_url!r}: expected http://HOST:PORT")
    # The package builds "http://%s:%s" % (host, port), so an IPv6 literal needs its brackets.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host, port, f"http://{host}:{port}"


def _server_message(body: bytes, status: int) -> str:
    """The ``"error"`` field of a Toxiproxy error body, else the body's text, else the reason."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    message = data.get("error") if isinstance(data, dict) else None
    if isinstance(message, str):
        return message
    return text[:500] or http.client.responses.get(status, f"HTTP {status}")


def _os_reason(exc: BaseException) -> str:
    """The innermost OS error behind a requests/urllib3 exception ("Connection refused")."""
    seen: set[int] = set()
    reason = str(exc)
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += list(current.args)
        todo.extend(n for n in nested if isinstance(n, BaseException))
    return reason


def _path(*segments: str) -> str:
    return "/" + "/".join(quote(s, safe="") for s in segments)


class ToxiproxyClient:
    """A typed, thread-safe client for one Toxiproxy server's HTTP API.

    ``ToxiproxyClient("http://127.0.0.1:8474")``. Every method either returns what the server
    answered or raises a :class:`~harness.errors.ToxiproxyError` (see the module docstring).
    Instances hold no connection and may be shared between threads.
    """

    def __init__(self, api_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        host, port, self.api_url = _split_api_url(api_url)
        self.timeout_s = timeout_s
        # Our own subclass, so the package's class methods read this server's address (see the
        # module docstring). Typed Any because the package has no type information.
        self._api: Any = type("BoundAPIConsumer", (APIConsumer,), {"host": host, "port": port})

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self.api_url!r})"

    # -- server ---------------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version string, e.g. ``"2.12.0"``."""
        response = self._send("GET", "/version")
        try:
            data = json.loads(response.content)
        except ValueError:
            return str(response.text).strip()  # servers before 2.6 answered plain text
        return str(data["version"]) if isinstance(data, dict) else str(data)

    def capabilities(self) -> dict[str, Any] | None:
        """What the server adds to Toxiproxy 2.12.0 (``GET /harness/capabilities`` of the embedded
        server: ``{"toxics": [...], "leases": true}``), or None from a server without the
        endpoint (the real Toxiproxy answers 404)."""
        try:
            response = self._send("GET", "/harness/capabilities")
        except ProxyNotFound:
            return None
        try:
            data = json.loads(response.content)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def supports_http_toxics(self) -> bool:
        """Whether toxics of type ``http`` may be added: only a server that lists them in its
        capabilities (the embedded one). Unreachable servers raise :class:`ToxiproxyError`."""
        toxics = (self.capabilities() or {}).get("toxics")
        return isinstance(toxics, list) and "http" in toxics

    def supports_leases(self) -> bool:
        """Whether toxics may be attached to leases: only a server whose capabilities say so
        (the embedded one). Unreachable servers raise :class:`ToxiproxyError`."""
        return (self.capabilities() or {}).get("leases") is True

    def create_lease(self, ttl_ms: int, *, owner: str = "") -> LeaseInfo:
        """Open a lease: toxics attached to it are removed unless it is renewed within
        ``ttl_ms``."""
        body = {"ttl_ms": ttl_ms, "owner": owner}
        return self._call("POST", "/harness/leases", LeaseInfo.from_json, body)

    def renew_lease(self, lease_id: str) -> LeaseInfo:
        """Renew: the lease runs for its ``ttl_ms`` again from now. :class:`ProxyNotFound` (a
        404) when it expired or was released."""
        return self._call("POST", _path("harness", "leases", lease_id), LeaseInfo.from_json, {})

    def release_lease(self, lease_id: str) -> None:
        """End the lease now; the server removes the toxics still attached to it."""
        self._send("DELETE", _path("harness", "leases", lease_id))

    def leases(self) -> list[LeaseInfo]:
        """The server's live leases."""
        return self._call("GET", "/harness/leases", lambda d: [LeaseInfo.from_json(x) for x in d])

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (connections stay open)."""
        self._send("POST", "/reset")

    # -- proxies --------------------------------------------------------------------------------

    def proxies(self) -> dict[str, ProxyInfo]:
        """Every proxy, keyed by name."""
        return self._call(
            "GET", "/proxies", lambda d: {n: ProxyInfo.from_json(p) for n, p in d.items()}
        )

    def proxy(self, name: str) -> ProxyInfo:
        """One proxy; :class:`ProxyNotFound` if there is none by that name."""
        return self._call("GET", _path("proxies", name), ProxyInfo.from_json)

    def create_proxy(
        self, name: str, listen: str, upstream: str, *, enabled: bool = True
    ) -> ProxyInfo:
        """Create a proxy; ``listen`` may use port 0, the result holds the bound address."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return self._call("POST", "/proxies", ProxyInfo.from_json, body)

    def populate(self, proxies: Iterable[ProxyInfo | Mapping[str, Any]]) -> list[ProxyInfo]:
        """Create or replace several proxies at once, with the server's ``/populate`` semantics.

        A proxy that exists with the same listen and upstream is left alone (toxics kept); one that
        differs is replaced. The server validates everything first and stops at the first failure.
        """
        body = [_proxy_spec(p) for p in proxies]
        return self._call(
            "POST", "/populate", lambda d: [ProxyInfo.from_json(p) for p in d["proxies"]], body
        )

    def delete_proxy(self, name: str) -> None:
        """Delete a proxy, its toxics and its connections."""
        self._send("DELETE", _path("proxies", name))

    def enable(self, name: str) -> ProxyInfo:
        """Start listening again (toxics are kept while disabled)."""
        return self._call("POST", _path("proxies", name), ProxyInfo.from_json, {"enabled": True})

    def disable(self, name: str, *, lease: str | None = None) -> ProxyInfo:
        """Stop listening and close every open connection of the proxy. ``lease``: enabled
        again when that lease ends (an extension: only where :meth:`supports_leases`)."""
        body: dict[str, Any] = {"enabled": False}
        if lease is not None:
            body["lease"] = lease
        return self._call("POST", _path("proxies", name), ProxyInfo.from_json, body)

    # -- toxics ---------------------------------------------------------------------------------

    def toxics(self, proxy: str) -> list[ToxicInfo]:
        """The proxy's toxics: upstream ones first, each stream in insertion order."""
        return self._call(
            "GET", _path("proxies", proxy, "toxics"), lambda d: [ToxicInfo.from_json(t) for t in d]
        )

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
        lease: str | None = None,
    ) -> ToxicInfo:
        """Add a toxic; without ``name`` the server names it ``<type>_<stream>``. ``lease``
        attaches it to a lease (an extension: only where :meth:`supports_leases`)."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        if lease is not None:
            body["lease"] = lease
        return self._call("POST", _path("proxies", proxy, "toxics"), ToxicInfo.from_json, body)

    def update_toxic(
        self,
        proxy: str,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> ToxicInfo:
        """Change a toxic in place: ``attributes`` are merged, ``toxicity`` replaced."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        return self._call(
            "POST", _path("proxies", proxy, "toxics", name), ToxicInfo.from_json, body
        )

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic; live connections carry on without it."""
        self._send("DELETE", _path("proxies", proxy, "toxics", name))

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, method: _Method, path: str, body: object = None) -> requests.Response:
        """One request through the package; every failure becomes a ToxiproxyError."""
        what = f"{method} {path}"
        response: requests.Response
        try:
            if method == "GET":
                response = self._api.get(path, timeout=self.timeout_s)
            elif method == "POST":
                response = self._api.post(path, json=body, timeout=self.timeout_s)
            else:
                response = self._api.delete(path, timeout=self.timeout_s)
        except NotFound as exc:
            raise ProxyNotFound(_server_message(_body(exc), 404), status=404) from exc
        except ProxyExists as exc:
            raise ProxyConflict(_server_message(_body(exc), 409), status=409) from exc
        except InvalidToxic as exc:
            raise ToxiproxyError(_server_message(_body(exc), 400), status=400) from exc
        except requests.Timeout as exc:
            raise ToxiproxyError(
                f"toxiproxy at {self.api_url} did not answer {what} within {self.timeout_s:g}s",
                status=0,
            ) from exc
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as exc:
            raise ToxiproxyError(
                f"toxiproxy at {self.api_url} is unreachable ({what}): {_os_reason(exc)}",
                status=0,
            ) from exc
        status = int(response.status_code)
        if status >= 400:  # the package lets everything but 400, 404 and 409 through
            raise ToxiproxyError(_server_message(response.content, status), status=status)
        return response

    def _call(
        self, method: _Method, path: str, build: Callable[[Any], _T], body: object = None
    ) -> _T:
        """Send, decode the JSON answer, build the result; a malformed answer is an error too."""
        response = self._send(method, path, body)
        try:
            return build(json.loads(response.content))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ToxiproxyError(
                f"toxiproxy at {self.api_url}: {method} {path} answered {response.status_code} "
                f"with an unexpected body: {response.text[:200]!r}",
                status=int(response.status_code),
            ) from exc


def _body(exc: Exception) -> bytes:
    """The raw body the package put into its exception."""
    raw = exc.args[0] if exc.args else b""
    return raw if isinstance(raw, bytes) else str(raw).encode()


def _proxy_spec(proxy: ProxyInfo | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(proxy, ProxyInfo):
        return {
            "name": proxy.name,
            "listen": proxy.listen,
            "upstream": proxy.upstream,
            "enabled": proxy.enabled,
        }
    return dict(proxy)
