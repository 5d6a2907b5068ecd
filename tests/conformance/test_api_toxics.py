"""The HTTP API for toxics: defaults, ordering, naming, validation, update semantics.
Modelled on the toxic half of the real server's ``api_test.go``."""

from __future__ import annotations

from typing import Any

import pytest

from .http_api import Api, assert_error, toxic_view

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

PROXY = "db"

# Every toxic type with valid attributes, and the attribute names the server reports for it.
TOXIC_TYPES: dict[str, dict[str, int]] = {
    "latency": {"latency": 10, "jitter": 5},
    "bandwidth": {"rate": 100},
    "slow_close": {"delay": 10},
    "timeout": {"timeout": 10},
    "reset_peer": {"timeout": 10},
    "slicer": {"average_size": 64, "size_variation": 8, "delay": 10},
    "limit_data": {"bytes": 100},
    "noop": {},
}


@pytest.fixture(autouse=True)
def proxy(api: Api) -> dict[str, Any]:
    return api.create_proxy(PROXY, "127.0.0.1:9")


def toxics_path(name: str | None = None) -> str:
    return f"/proxies/{PROXY}/toxics" + (f"/{name}" if name else "")


def test_new_toxic_returns_200_with_the_documented_defaults(api: Api) -> None:
    response = api.request("POST", toxics_path(), json={"type": "latency"})
    assert response.status_code == 200  # not 201, unlike proxies
    assert toxic_view(response.json()) == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 0, "jitter": 0},
    }


def test_default_toxic_name_is_type_underscore_stream(api: Api) -> None:
    assert api.add_toxic(PROXY, "latency", stream="upstream")["name"] == "latency_upstream"
    # A blank name means "use the default", as the Go client sends it.
    assert api.add_toxic(PROXY, "latency", name="")["name"] == "latency_downstream"
    assert [t["name"] for t in api.toxics(PROXY)] == ["latency_upstream", "latency_downstream"]


def test_toxic_fields_are_stored_and_read_back(api: Api) -> None:
    created = api.add_toxic(
        PROXY,
        "latency",
        name="slow",
        stream="upstream",
        toxicity=0.2,
        attributes={"latency": 100, "jitter": 10},
    )
    expected = {
        "name": "slow",
        "type": "latency",
        "stream": "upstream",
        "toxicity": pytest.approx(0.2),
        "attributes": {"latency": 100, "jitter": 10},
    }
    assert toxic_view(created) == expected
    assert toxic_view(api.toxic(PROXY, "slow")) == expected
    assert [toxic_view(t) for t in api.toxics(PROXY)] == [expected]
    assert [toxic_view(t) for t in api.proxy(PROXY)["toxics"]] == [expected]


def test_toxicity_zero_is_kept_not_replaced_by_the_default(api: Api) -> None:
    assert api.add_toxic(PROXY, "latency", toxicity=0.0)["toxicity"] == 0


@pytest.mark.parametrize("type_", list(TOXIC_TYPES))
def test_every_documented_toxic_type_is_accepted_with_its_attributes(api: Api, type_: str) -> None:
    attributes = TOXIC_TYPES[type_]
    created = api.add_toxic(PROXY, type_, attributes=attributes)
    assert (created["type"], created["attributes"]) == (type_, attributes)
    assert api.toxic(PROXY, f"{type_}_downstream")["attributes"] == attributes


def test_missing_attributes_are_zero_and_unknown_ones_ignored(api: Api) -> None:
    created = api.add_toxic(PROXY, "latency", attributes={"latency": 5, "bogus": 1})
    assert created["attributes"] == {"latency": 5, "jitter": 0}


def test_toxics_list_upstream_first_then_in_insertion_order(api: Api) -> None:
    for name, stream in [
        ("d1", "downstream"),
        ("u1", "upstream"),
        ("d2", "downstream"),
        ("u2", "upstream"),
    ]:
        api.add_toxic(PROXY, "noop", name=name, stream=stream)
    assert [t["name"] for t in api.toxics(PROXY)] == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in api.proxy(PROXY)["toxics"]] == ["u1", "u2", "d1", "d2"]


def test_toxic_names_are_unique_across_both_streams(api: Api) -> None:
    api.add_toxic(PROXY, "latency", name="slow", stream="upstream")
    payload = {"name": "slow", "type": "latency", "stream": "downstream"}
    assert_error(api.request("POST", toxics_path(), json=payload), 409, "toxic already exists")
    assert [(t["name"], t["stream"]) for t in api.toxics(PROXY)] == [("slow", "upstream")]


def test_toxic_name_taken_by_another_type_is_409(api: Api) -> None:
    api.add_toxic(PROXY, "latency", name="slow")
    payload = {"name": "slow", "type": "slow_close"}
    assert_error(api.request("POST", toxics_path(), json=payload), 409, "toxic already exists")
    assert [t["type"] for t in api.toxics(PROXY)] == ["latency"]


@pytest.mark.parametrize("stream", ["sideways", "up", "down", ""])
def test_invalid_stream_is_400(api: Api, stream: str) -> None:
    response = api.request("POST", toxics_path(), json={"type": "latency", "stream": stream})
    assert_error(response, 400, "stream was invalid, can be either upstream or downstream")
    assert api.toxics(PROXY) == []


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"type": "bogus"}, id="unknown"),
        pytest.param({"type": ""}, id="blank"),
        pytest.param({}, id="missing"),
    ],
)
def test_invalid_toxic_type_is_400(api: Api, payload: dict[str, Any]) -> None:
    assert_error(api.request("POST", toxics_path(), json=payload), 400, "invalid toxic type")
    assert api.toxics(PROXY) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{", id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1]", id="array"),
        pytest.param(b'{"type": 5}', id="type-not-string"),
        pytest.param(b'{"type": "latency", "toxicity": "high"}', id="toxicity-not-number"),
        pytest.param(
            b'{"type": "latency", "attributes": {"latency": "slow"}}', id="attr-not-number"
        ),
    ],
)
def test_toxic_with_a_malformed_body_is_400(api: Api, body: bytes) -> None:
    assert_error(api.request("POST", toxics_path(), content=body), 400, prefix="bad request body")
    assert api.toxics(PROXY) == []


@pytest.mark.parametrize(
    ("method", "payload"), [("GET", None), ("PATCH", {"toxicity": 0.5}), ("DELETE", None)]
)
def test_unknown_toxic_is_404(api: Api, method: str, payload: dict[str, Any] | None) -> None:
    api.add_toxic(PROXY, "latency")
    path = toxics_path("nope")
    response = api.request(method, path, json=payload) if payload else api.request(method, path)
    assert_error(response, 404, "toxic not found")


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_toxic_update_merges_attributes_and_sets_toxicity(api: Api, method: str) -> None:
    api.add_toxic(PROXY, "latency", attributes={"latency": 100, "jitter": 10})

    response = api.request(
        method,
        toxics_path("latency_downstream"),
        json={"toxicity": 0.5, "attributes": {"latency": 1000}},
    )
    assert response.status_code == 200
    updated = response.json()
    assert (updated["toxicity"], updated["attributes"]) == (0.5, {"latency": 1000, "jitter": 10})

    # Without a toxicity, the toxicity stays as it was.
    updated = api.update_toxic(PROXY, "latency_downstream", attributes={"latency": 500})
    assert (updated["toxicity"], updated["attributes"]) == (0.5, {"latency": 500, "jitter": 10})
    stored = api.toxic(PROXY, "latency_downstream")
    assert (stored["toxicity"], stored["attributes"]) == (0.5, {"latency": 500, "jitter": 10})


def test_toxic_update_ignores_name_type_and_stream(api: Api) -> None:
    created = api.add_toxic(PROXY, "latency", name="slow", attributes={"latency": 100})
    updated = api.update_toxic(
        PROXY,
        "slow",
        name="renamed",
        type="bandwidth",
        stream="upstream",
        attributes={"jitter": 7},
    )
    expected = {**toxic_view(created), "attributes": {"latency": 100, "jitter": 7}}
    assert toxic_view(updated) == expected
    assert [toxic_view(t) for t in api.toxics(PROXY)] == [expected]


def test_toxic_update_with_a_malformed_body_is_400_and_changes_nothing(api: Api) -> None:
    created = api.add_toxic(PROXY, "latency", attributes={"latency": 100})
    for body in (b"{", b'{"attributes": {"latency": "slow"}}', b'{"toxicity": "high"}'):
        response = api.request("PATCH", toxics_path("latency_downstream"), content=body)
        assert_error(response, 400, prefix="bad request body")
    assert toxic_view(api.toxic(PROXY, "latency_downstream")) == toxic_view(created)


def test_deleted_toxic_returns_204_and_is_gone(api: Api) -> None:
    api.add_toxic(PROXY, "latency")
    api.add_toxic(PROXY, "noop", name="keep")
    response = api.request("DELETE", toxics_path("latency_downstream"))
    assert response.status_code == 204
    assert response.content == b""
    assert [t["name"] for t in api.toxics(PROXY)] == ["keep"]
    assert_error(api.request("GET", toxics_path("latency_downstream")), 404, "toxic not found")
    assert_error(api.request("DELETE", toxics_path("latency_downstream")), 404, "toxic not found")


def test_deleted_toxic_name_can_be_reused(api: Api) -> None:
    api.add_toxic(PROXY, "latency", name="t")
    api.remove_toxic(PROXY, "t")
    assert api.add_toxic(PROXY, "slow_close", name="t", stream="upstream")["type"] == "slow_close"
