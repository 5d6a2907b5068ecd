"""Bodies at and past the limits: nesting, numbers that are not JSON or do not fit Go's types,
names too long to address. The real server refuses them with a 400 ``bad request body``; so
must the embedded one, never with a 500 or by echoing what it cannot represent.

The long-name test runs against the embedded server only: the real one takes a name of any
length (and a 15 MB one there can never be deleted, since no request line can carry it); the
embedded server refuses names it could not address later, as TOXIPROXY.md allows it to be
stricter.
"""

from __future__ import annotations

import json

import pytest

from harness.proxy.launcher import RunningToxiproxy

from .http_api import Api, assert_error

pytestmark = pytest.mark.conformance

UPSTREAM = "127.0.0.1:9"


@pytest.mark.parametrize(
    "body",
    ["[" * 20000, '{"a":' * 11000 + "1" + "}" * 11000],
    ids=["list-20000-deep", "object-11000-deep"],
)
def test_deeply_nested_body_is_a_bad_request(api: Api, body: str) -> None:
    assert_error(api.request("POST", "/proxies", content=body), 400, prefix="bad request body")
    assert api.request("GET", "/version").status_code == 200


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"type": "latency", "toxicity": NaN, "attributes": {"latency": 1}}', "NaN"),
        ('{"type": "latency", "toxicity": 1e400, "attributes": {"latency": 1}}', "float32"),
        ('{"type": "latency", "attributes": {"latency": 9223372036854775808}}', "int64"),
        ('{"type": "latency", "attributes": {"latency": 1e30}}', "not an integer"),
        ('{"type": "latency", "attributes": {"latency": ' + "9" * 5000 + "}}", "huge digits"),
    ],
    ids=lambda value: value if len(value) < 20 else None,
)
def test_toxic_value_go_cannot_decode_is_a_bad_request(api: Api, body: str, why: str) -> None:
    api.create_proxy("bounds", UPSTREAM)
    response = api.request("POST", "/proxies/bounds/toxics", content=body)
    assert_error(response, 400, prefix="bad request body")
    assert api.request("GET", "/proxies/bounds/toxics").json() == [], why


def test_largest_int64_attribute_is_kept(api: Api) -> None:
    api.create_proxy("bounds", UPSTREAM)
    body = {"type": "latency", "attributes": {"latency": 2**63 - 1}}
    response = api.request("POST", "/proxies/bounds/toxics", json=body)
    assert response.status_code == 200, response.text
    assert json.loads(response.text)["attributes"]["latency"] == 2**63 - 1


def test_name_too_long_to_delete_is_refused_by_the_embedded_server(
    api: Api, toxiproxy: RunningToxiproxy
) -> None:
    if toxiproxy.kind == "real":
        pytest.skip("the real server takes names of any length")
    name = "n" * 20000
    body = {"name": name, "listen": "127.0.0.1:0", "upstream": UPSTREAM}
    assert_error(api.request("POST", "/proxies", json=body), 400, prefix="bad request body")
    assert api.proxies() == {}
    longest = "n" * 1024
    created = api.request("POST", "/proxies", json={**body, "name": longest})
    assert created.status_code == 201, created.text
    assert api.request("DELETE", f"/proxies/{longest}").status_code == 204
    assert api.proxies() == {}
