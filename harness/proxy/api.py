"""Toxiproxy's HTTP API on aiohttp: the same routes, status codes and error bodies as v2.12.0.

Request bodies are read the way the real server's Go decoder reads them: the first JSON value
counts and anything after it is ignored; ``null`` leaves a field as it was; a value of the wrong
type is a ``bad request body``. Error bodies are ``{"error": ..., "status": ...}`` plus a newline,
sent as text/plain like Go's ``http.Error``.

Extensions only add (README, "The embedded Toxiproxy server"): the ``http`` toxic type,
``GET /harness/capabilities``, and leases (:mod:`harness.proxy.lease`): ``/harness/leases`` to
open, renew, show and release them, and an optional ``"lease"`` field on toxic creation and on a
proxy update that disables it. A toxic or proxy without one answers exactly the real server's
JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from harness.proxy.lease import Lease, LeaseError
from harness.proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from harness.proxy.proxy import ApiError, Proxy, ProxyCollection, toxic_exists, toxic_not_found
from harness.proxy.toxics import TOXIC_TYPES, ToxicConfig, ToxicInputError
from harness.safety import json_depth_problem

# The Toxiproxy API version this server implements; clients gate features on it.
COMPATIBLE_VERSION = "2.12.0"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COLLECTION: web.AppKey[ProxyCollection] = web.AppKey("collection", ProxyCollection)


class BadBody(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"bad request body: {detail}", 400)


def _go_json(value: Any) -> bytes:
    # Go's encoding/json: compact, and <, > and & escaped.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode()


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_go_json(value), status=status, content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    body = _go_json({"error": error.message, "status": error.status}) + b"\n"
    response = web.Response(body=body, status=error.status)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def plain_error(text: str, status: int) -> web.Response:
    response = web.Response(body=text.encode() + b"\n" if text else b"", status=status)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise BadBody("invalid UTF-8") from exc
    text = text.lstrip()
    if not text:
        raise BadBody("EOF")
    # Depth first, before any object is built: json recurses once per level and a deep body
    # would be a RecursionError (a 500) where the real server answers 400.
    too_deep = json_depth_problem(text, MAX_BODY_NESTING)
    if too_deep:
        raise BadBody(f"invalid JSON: {too_deep}")
    try:
        value, _ = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise BadBody(f"invalid JSON: {exc.msg} at offset {exc.pos}") from exc
    except ValueError as exc:  # NaN, Infinity, 1e400: Go's decoder refuses them too
        raise BadBody(f"invalid JSON: {exc}") from exc
    return value


def _not_json(name: str) -> object:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)
# Toxiproxy's bodies nest three levels at most; Go's decoder stops at 10000.
MAX_BODY_NESTING = 64
# A name must fit the request line that deletes it (aiohttp reads lines of up to 8190 bytes,
# and a byte may be sent as %XX): the real server takes any length, and a 15 MB name there
# can never be deleted either.
MAX_NAME_BYTES = 1024
# How often expired leases are looked for: a lease lifts its toxics at most this late.
LEASE_SWEEP_S = 0.1
_FLOAT32_MAX = 3.4028234663852886e38  # toxicity is a float32 in Go
_INT64 = range(-(2**63), 2**63)


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadBody(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _field(data: dict[str, Any], key: str, kind: type, current: Any) -> Any:
    """A field of the wanted type, or ``current`` when absent or null (Go leaves it unchanged)."""
    value = data.get(key)
    if value is None:
        return current
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise BadBody(f"field {key!r} must be a {kind.__name__}, got {json.dumps(value)[:60]}")
    if kind is float and not abs(value) <= _FLOAT32_MAX:
        raise BadBody(f"field {key!r}: number {value:g} out of range")
    if kind is int and value not in _INT64:
        raise BadBody(f"field {key!r}: number {str(value)[:40]} out of range")
    if key == "name" and len(value.encode()) > MAX_NAME_BYTES:
        raise BadBody(f"field 'name': longer than {MAX_NAME_BYTES} bytes")
    return float(value) if kind is float else value


def _attributes(kind_name: str, data: Any, current: dict[str, Any]) -> dict[str, Any]:
    kind = TOXIC_TYPES[kind_name]
    try:
        attributes = kind.merge_attributes(_object(data, "attributes"), current)
        kind.validate(attributes)
    except ToxicInputError as exc:
        raise BadBody(str(exc)) from exc
    return attributes


# -- handlers ---------------------------------------------------------------------------------


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


async def proxy_index(request: web.Request) -> web.Response:
    proxies = _collection(request).proxies
    return json_response({name: proxy.to_json() for name, proxy in proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    collection = _collection(request)
    data = _object(await read_json(request), "proxy")
    name = _field(data, "name", str, "")
    listen = _field(data, "listen", str, "")
    upstream = _field(data, "upstream", str, "")
    enabled = _field(data, "enabled", bool, True)
    if not name:
        raise ApiError("missing required field: name", 400)
    if not upstream:
        raise ApiError("missing required field: upstream", 400)
    async with collection.lock:
        proxy = collection.new_proxy(name, listen, upstream)
        await collection.add(proxy, start=enabled)
    return json_response(proxy.to_json(), status=201)


async def populate(request: web.Request) -> web.Response:
    collection = _collection(request)
    body = await read_json(request)
    if not isinstance(body, list):
        raise BadBody(f"expected a JSON array of proxies, got {type(body).__name__}")
    entries = []
    for index, item in enumerate(body, start=1):
        data = _object(item, f"proxy {index}")
        name = _field(data, "name", str, "")
        listen = _field(data, "listen", str, "")
        upstream = _field(data, "upstream", str, "")
        enabled = _field(data, "enabled", bool, True)
        if not name:
            raise ApiError(f"missing required field: name at proxy {index}", 400)
        if not upstream:
            raise ApiError(f"missing required field: upstream at proxy {index}", 400)
        entries.append((name, listen, upstream, enabled))
    done: list[Proxy] = []
    async with collection.lock:
        for name, listen, upstream, enabled in entries:
            try:
                proxy = await collection.add_or_replace(
                    collection.new_proxy(name, listen, upstream), start=enabled
                )
            except ApiError as error:
                body_out: dict[str, Any] = {"error": error.message, "status": error.status}
                body_out["proxies"] = [p.to_json() for p in done] or None
                return json_response(body_out, status=error.status)
            done.append(proxy)
    # Like the real server, an empty list comes back as null.
    return json_response({"proxies": [p.to_json() for p in done] or None}, status=201)


async def proxy_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return json_response(proxy.to_json())


async def proxy_update(request: web.Request) -> web.Response:
    collection = _collection(request)
    # The body first, then look the proxy up and act on it under the one lock: a proxy looked up
    # before an await may be deleted meanwhile, and starting it then would leave a listener that
    # no API call can reach.
    data = _object(await read_json(request), "proxy")
    async with collection.lock:
        proxy = collection.get(request.match_info["proxy"])
        listen = _field(data, "listen", str, proxy.listen)
        upstream = _field(data, "upstream", str, proxy.upstream)
        enabled = _field(data, "enabled", bool, proxy.enabled)
        # An extension: a proxy disabled under a lease is enabled again when the lease ends.
        lease = _field(data, "lease", str, "")
        if lease and lease not in collection.leases:
            raise BadBody(f"lease {json.dumps(lease[:40])} not found (expired or released)")
        if proxy.differs(listen, upstream):
            # A new address or upstream restarts the proxy and drops its connections.
            proxy.stop()
            proxy.listen = listen
            proxy.upstream = upstream
        if enabled != proxy.enabled:
            if enabled:
                await proxy.start()
            else:
                proxy.stop()
        if data.get("enabled") is not None or lease:
            # Enabled, or disabled anew: the lease of this update (or none) holds it now.
            proxy.lease = "" if proxy.enabled else lease
    return json_response(proxy.to_json())


async def proxy_delete(request: web.Request) -> web.Response:
    collection = _collection(request)
    async with collection.lock:
        collection.remove(request.match_info["proxy"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    collection = _collection(request)
    async with collection.lock:
        for proxy in list(collection.proxies.values()):
            await proxy.start()
            proxy.lease = ""
            proxy.remove_all_toxics()
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return json_response([toxic.to_json() for toxic in proxy.toxic_list()])


async def toxic_create(request: web.Request) -> web.Response:
    data = _object(await read_json(request), "toxic")
    # Looked up after the last await, so the toxic lands on the proxy the name holds now.
    proxy = _collection(request).get(request.match_info["proxy"])
    kind = _field(data, "type", str, "")
    stream = _field(data, "stream", str, "downstream")
    name = _field(data, "name", str, "")
    toxicity = _field(data, "toxicity", float, 1.0)
    attributes_data = data.get("attributes")
    if attributes_data is not None and not isinstance(attributes_data, dict):
        raise BadBody("attributes must be a JSON object")
    if stream.lower() not in ("upstream", "downstream"):
        raise ApiError("stream was invalid, can be either upstream or downstream", 400)
    if not name:
        name = f"{kind}_{stream}"
    if kind not in TOXIC_TYPES:
        raise ApiError("invalid toxic type", 400)
    if name in proxy.toxics:
        raise toxic_exists()
    try:
        TOXIC_TYPES[kind].check_stream(stream.lower())
    except ToxicInputError as exc:
        raise BadBody(str(exc)) from exc
    attributes = _attributes(kind, attributes_data, {})
    # An extension: the real server ignores the field (so a client asks /harness/capabilities
    # before relying on it). Checked last, after the last await, so the lease is live now.
    lease = _field(data, "lease", str, "")
    if lease and lease not in _collection(request).leases:
        raise BadBody(f"lease {json.dumps(lease[:40])} not found (expired or released)")
    config = ToxicConfig(name, kind, stream, toxicity, attributes, lease=lease)
    proxy.add_toxic(config)
    return json_response(config.to_json())


async def toxic_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    toxic = proxy.toxics.get(request.match_info["toxic"])
    if toxic is None:
        raise toxic_not_found()
    return json_response(toxic.to_json())


async def toxic_update(request: web.Request) -> web.Response:
    data = _object(await read_json(request), "toxic")
    # Looked up after the last await (see toxic_create).
    proxy = _collection(request).get(request.match_info["proxy"])
    current = proxy.toxics.get(request.match_info["toxic"])
    if current is None:
        raise toxic_not_found()
    toxicity = _field(data, "toxicity", float, current.toxicity)
    attributes = _attributes(current.type, data.get("attributes"), current.attributes)
    config = ToxicConfig(
        current.name,
        current.type,
        current.stream,
        toxicity,
        attributes,
        shared=current.shared,
        lease=current.lease,
    )
    proxy.update_toxic(config)
    return json_response(config.to_json())


async def toxic_delete(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    proxy.remove_toxic(request.match_info["toxic"])
    return web.Response(status=204)


async def version(request: web.Request) -> web.Response:
    body = f'{{"version": "{COMPATIBLE_VERSION}"}}\n'.encode()
    response = web.Response(body=body)
    response.headers["Content-Type"] = "application/json;charset=utf-8"
    return response


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text format 0.0.4, for any method and whatever ``Accept`` asks (the real
    server's promhttp handler does not negotiate OpenMetrics). Routed only when the server was
    started with ``--proxy-metrics`` or ``--runtime-metrics``."""
    response = web.Response(body=_collection(request).metrics.exposition())
    response.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return response


async def capabilities(request: web.Request) -> web.Response:
    """What this server adds to Toxiproxy 2.12.0, for clients that adapt to it; the real server
    answers 404 here. ``leases``: toxics attached to a lease are removed when it is not renewed
    (``/harness/leases``)."""
    return json_response({"toxics": list(TOXIC_TYPES), "leases": True})


# -- leases: an extension (harness.proxy.lease) ------------------------------------------------


def _lease_json(collection: ProxyCollection, lease: Lease) -> dict[str, Any]:
    toxics = [{"proxy": p.name, "toxic": t.name} for p, t in collection.leased_toxics(lease.id)]
    return {
        "id": lease.id,
        "owner": lease.owner,
        "ttl_ms": round(lease.ttl_s * 1000),
        "expires_in_ms": math.ceil(collection.leases.remaining_s(lease) * 1000),
        "toxics": toxics,
    }


def _lease_call(action: Callable[[], Lease]) -> Lease:
    try:
        return action()
    except LeaseError as exc:
        raise ApiError(str(exc), exc.status) from exc


async def lease_index(request: web.Request) -> web.Response:
    collection = _collection(request)
    return json_response([_lease_json(collection, lease) for lease in collection.leases.all()])


async def lease_create(request: web.Request) -> web.Response:
    """``{"ttl_ms": 10000, "owner": "..."}``: a new lease, to renew within ``ttl_ms``."""
    collection = _collection(request)
    data = _object(await read_json(request), "lease")
    ttl_ms = _field(data, "ttl_ms", int, 0)
    owner = _field(data, "owner", str, "")
    if not ttl_ms:
        raise ApiError("missing required field: ttl_ms", 400)
    lease = _lease_call(lambda: collection.leases.create(ttl_ms, owner))
    return json_response(_lease_json(collection, lease), status=201)


async def lease_show(request: web.Request) -> web.Response:
    collection = _collection(request)
    lease = _lease_call(lambda: collection.leases.get(request.match_info["lease"]))
    return json_response(_lease_json(collection, lease))


async def lease_renew(request: web.Request) -> web.Response:
    """Renew: the lease runs for its ``ttl_ms`` again from now. The body is ignored."""
    collection = _collection(request)
    lease = _lease_call(lambda: collection.leases.renew(request.match_info["lease"]))
    return json_response(_lease_json(collection, lease))


async def lease_release(request: web.Request) -> web.Response:
    """End the lease now: its toxics are removed, as on expiry."""
    collection = _collection(request)
    lease = _lease_call(lambda: collection.leases.release(request.match_info["lease"]))
    await collection.lift(lease.id)
    return web.Response(status=204)


async def _lease_sweeper(app: web.Application) -> AsyncIterator[None]:
    """Lift the toxics of expired leases, every LEASE_SWEEP_S, for as long as the app runs."""
    collection = app[COLLECTION]

    async def sweep() -> None:
        while True:
            await asyncio.sleep(LEASE_SWEEP_S)
            for lease, lifted in await collection.expire_leases():
                owner = f" ({lease.owner})" if lease.owner else ""
                print(
                    f"embedded toxiproxy: lease {lease.id}{owner} not renewed for "
                    f"{lease.ttl_s:g}s: lifted {', '.join(lifted) or 'nothing'}",
                    file=sys.stderr,
                    flush=True,
                )

    task = asyncio.create_task(sweep())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- middleware and app -----------------------------------------------------------------------


@web.middleware
async def toxiproxy_conventions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request ids, the browser block, Go-style 404/405 and error bodies; never a traceback."""
    request_id = secrets.token_hex(10)
    matched = request.match_info.http_exception is None
    response: web.StreamResponse
    if matched and request.headers.get("User-Agent", "").startswith("Mozilla/"):
        # The real server refuses browsers so a web page cannot drive it (CSRF).
        response = plain_error("User agent not allowed", 403)
    else:
        try:
            response = await handler(request)
        except ApiError as error:
            response = error_response(error)
        except web.HTTPMethodNotAllowed:
            response = plain_error("", 405)
        except web.HTTPNotFound:
            response = plain_error("404 page not found", 404)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug here must answer 500, not kill the listener
            response = error_response(ApiError(f"internal error: {exc}", 500))
    response.headers["X-Toxiproxy-Request-Id"] = request_id
    return response


def build_app(collection: ProxyCollection) -> web.Application:
    app = web.Application(middlewares=[toxiproxy_conventions], client_max_size=16 * 1024 * 1024)
    app[COLLECTION] = collection
    routes = [
        ("POST", "/reset", reset),
        ("GET", "/proxies", proxy_index),
        ("POST", "/proxies", proxy_create),
        ("POST", "/populate", populate),
        ("GET", "/proxies/{proxy}", proxy_show),
        ("POST", "/proxies/{proxy}", proxy_update),
        ("PATCH", "/proxies/{proxy}", proxy_update),
        ("DELETE", "/proxies/{proxy}", proxy_delete),
        ("GET", "/proxies/{proxy}/toxics", toxic_index),
        ("POST", "/proxies/{proxy}/toxics", toxic_create),
        ("GET", "/proxies/{proxy}/toxics/{toxic}", toxic_show),
        ("POST", "/proxies/{proxy}/toxics/{toxic}", toxic_update),
        ("PATCH", "/proxies/{proxy}/toxics/{toxic}", toxic_update),
        ("DELETE", "/proxies/{proxy}/toxics/{toxic}", toxic_delete),
        ("GET", "/version", version),
        ("GET", "/harness/capabilities", capabilities),
        ("GET", "/harness/leases", lease_index),
        ("POST", "/harness/leases", lease_create),
        ("GET", "/harness/leases/{lease}", lease_show),
        ("POST", "/harness/leases/{lease}", lease_renew),
        ("DELETE", "/harness/leases/{lease}", lease_release),
    ]
    if collection.metrics.enabled:
        routes.append(("*", "/metrics", metrics))
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    app.cleanup_ctx.append(_lease_sweeper)
    return app
