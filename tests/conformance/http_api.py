"""A deliberately small HTTP client for the Toxiproxy API, written for the conformance tests.

The suite does not use ``harness.proxy.client`` or ``toxiproxy-python``: it tests the servers, so
it must see raw status codes and bodies. The checked helpers (``create_proxy``, ``add_toxic``...)
assert the documented success status so that setup steps cannot fail silently; tests that are
about errors call :meth:`Api.request` and inspect the response themselves.
"""

from __future__ import annotations

from typing import Any

import httpx

PROXY_FIELDS = ("name", "listen", "upstream", "enabled", "toxics")
TOXIC_FIELDS = ("name", "type", "stream", "toxicity", "attributes")
USER_AGENT = "harness-conformance/1"


def proxy_view(proxy: dict[str, Any]) -> dict[str, Any]:
    """Only the documented proxy fields (the real server adds ``"Logger": {}``)."""
    view = {key: proxy[key] for key in PROXY_FIELDS}
    view["toxics"] = [toxic_view(toxic) for toxic in proxy["toxics"]]
    return view


def toxic_view(toxic: dict[str, Any]) -> dict[str, Any]:
    """Only the documented toxic fields."""
    return {key: toxic[key] for key in TOXIC_FIELDS}


def assert_error(
    response: httpx.Response,
    status: int,
    message: str | None = None,
    *,
    prefix: str | None = None,
    contains: str | None = None,
) -> dict[str, Any]:
    """The response is the documented error: ``status`` and ``{"error": ..., "status": N}``.

    ``message`` must match exactly; ``prefix`` when only the start is portable (the rest of
    ``bad request body: ...`` is the JSON decoder's own words); ``contains`` for OS messages.
    """
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path}: expected {status}, "
        f"got {response.status_code} {response.text!r}"
    )
    body = response.json()
    assert isinstance(body, dict), f"error body is not an object: {response.text!r}"
    assert body.get("status") == status, f"error body status: {response.text!r}"
    error = body.get("error")
    assert isinstance(error, str), f"error body has no error message: {response.text!r}"
    if message is not None:
        assert error == message
    if prefix is not None:
        assert error.startswith(prefix), f"{error!r} does not start with {prefix!r}"
    if contains is not None:
        assert contains.lower() in error.lower(), f"{error!r} does not mention {contains!r}"
    return body


class Api:
    """The Toxiproxy HTTP API at ``base_url``."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, timeout=10.0, headers={"User-Agent": USER_AGENT}
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def _expect(self, response: httpx.Response, status: int) -> httpx.Response:
        assert response.status_code == status, (
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code} {response.text!r}"
        )
        return response

    # Proxies

    def proxies(self) -> dict[str, Any]:
        body: dict[str, Any] = self._expect(self.http.get("/proxies"), 200).json()
        return body

    def proxy(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self._expect(self.http.get(f"/proxies/{name}"), 200).json()
        return body

    def create_proxy(
        self,
        name: str,
        upstream: str,
        *,
        listen: str = "127.0.0.1:0",
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": name, "listen": listen, "upstream": upstream}
        if enabled is not None:
            payload["enabled"] = enabled
        body: dict[str, Any] = self._expect(self.http.post("/proxies", json=payload), 201).json()
        return body

    def update_proxy(self, name: str, /, **fields: Any) -> dict[str, Any]:
        response = self.http.patch(f"/proxies/{name}", json=fields)
        body: dict[str, Any] = self._expect(response, 200).json()
        return body

    def delete_proxy(self, name: str) -> None:
        self._expect(self.http.delete(f"/proxies/{name}"), 204)

    def delete_all_proxies(self) -> None:
        for name in self.proxies():
            self.delete_proxy(name)

    def reset(self) -> None:
        self._expect(self.http.post("/reset"), 204)

    # Toxics

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = self._expect(
            self.http.get(f"/proxies/{proxy}/toxics"), 200
        ).json()
        return body

    def toxic(self, proxy: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self._expect(
            self.http.get(f"/proxies/{proxy}/toxics/{name}"), 200
        ).json()
        return body

    def add_toxic(
        self,
        proxy: str,
        type_: str,
        *,
        stream: str | None = None,
        name: str | None = None,
        toxicity: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": type_}
        for key, value in (
            ("stream", stream),
            ("name", name),
            ("toxicity", toxicity),
            ("attributes", attributes),
        ):
            if value is not None:
                payload[key] = value
        response = self.http.post(f"/proxies/{proxy}/toxics", json=payload)
        body: dict[str, Any] = self._expect(response, 200).json()
        return body

    def update_toxic(self, proxy: str, name: str, /, **fields: Any) -> dict[str, Any]:
        response = self.http.patch(f"/proxies/{proxy}/toxics/{name}", json=fields)
        body: dict[str, Any] = self._expect(response, 200).json()
        return body

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._expect(self.http.delete(f"/proxies/{proxy}/toxics/{name}"), 204)
