"""Where the embedded server is deliberately stricter than the real one.

Every other test in this suite holds both servers to the same behaviour. The tests here run
against the embedded server only and are skipped for the real one, each with its reason, because
the real Toxiproxy 2.12.0 accepts these toxic values with a 200 and then breaks when data flows
(checked against the v2.12.0 binary):

1. ``bandwidth`` with ``rate`` 0 (also when ``rate`` is left out, since missing attributes are
   0): the real server accepts it, then never delivers a byte (it loops forever sending empty
   chunks every 100 ms). The embedded server answers 400.
2. ``bandwidth`` with a negative ``rate``: the real server accepts it, then panics on the first
   chunk (a negative slice bound) and the whole server process exits. The embedded server
   answers 400.
3. ``slicer`` with ``average_size`` 0 (also when left out) and no ``size_variation``: the real
   server accepts it, then recurses without end on the first chunk (the data never arrives and
   the process eventually dies of a stack overflow). The embedded server answers 400.

The same values are rejected when they arrive through an update (``PATCH``) of an existing toxic,
and the toxic is left as it was.

``GET /metrics`` (Python runtime metrics instead of ``go_*``, counters that move while a
connection is open) has its divergences listed and asserted in :mod:`.test_metrics`.

Not a divergence, but asserted per server: ``GET /version`` must be ``"2.12.0"`` on the real
server; the embedded server only has to answer a non-empty version string
(``test_version_answers_200_with_a_version_string``).
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.proxy.launcher import RunningToxiproxy

from .http_api import Api, assert_error

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(60)]

PROXY = "strict"

# (type, attributes, what the real server does with them once data flows)
BREAKING_VALUES = [
    pytest.param("bandwidth", {"rate": 0}, "stalls every connection", id="bandwidth-rate-0"),
    pytest.param("bandwidth", {"rate": -1}, "panics and exits", id="bandwidth-rate-negative"),
    pytest.param("slicer", {"average_size": 0}, "recurses without end", id="slicer-average-size-0"),
]
# Missing attributes are 0, so leaving them out breaks the real server in the same way.
BREAKING_DEFAULTS = [
    pytest.param("bandwidth", {}, "stalls every connection", id="bandwidth-rate-missing"),
    pytest.param("slicer", {}, "recurses without end", id="slicer-average-size-missing"),
]
CASE_NAMES = ("type_", "attributes", "real_behaviour")


def embedded_only(toxiproxy: RunningToxiproxy, real_behaviour: str) -> None:
    if toxiproxy.kind == "real":
        pytest.skip(
            f"divergence: real Toxiproxy 2.12.0 accepts this toxic with 200, then "
            f"{real_behaviour} when data flows; only the embedded server rejects it"
        )


@pytest.mark.parametrize(CASE_NAMES, BREAKING_VALUES + BREAKING_DEFAULTS)
def test_toxic_values_known_to_break_toxiproxy_are_rejected_with_400(
    api: Api,
    toxiproxy: RunningToxiproxy,
    type_: str,
    attributes: dict[str, Any],
    real_behaviour: str,
) -> None:
    embedded_only(toxiproxy, real_behaviour)
    api.create_proxy(PROXY, "127.0.0.1:9")
    payload = {"type": type_, "stream": "upstream", "attributes": attributes}
    response = api.request("POST", f"/proxies/{PROXY}/toxics", json=payload)
    assert_error(response, 400)
    assert api.toxics(PROXY) == []


@pytest.mark.parametrize(CASE_NAMES, BREAKING_VALUES)
def test_updates_to_values_known_to_break_toxiproxy_are_rejected_with_400(
    api: Api,
    toxiproxy: RunningToxiproxy,
    type_: str,
    attributes: dict[str, Any],
    real_behaviour: str,
) -> None:
    embedded_only(toxiproxy, real_behaviour)
    api.create_proxy(PROXY, "127.0.0.1:9")
    valid = {"rate": 100} if type_ == "bandwidth" else {"average_size": 64, "size_variation": 8}
    created = api.add_toxic(PROXY, type_, attributes=valid)
    response = api.request(
        "PATCH", f"/proxies/{PROXY}/toxics/{created['name']}", json={"attributes": attributes}
    )
    assert_error(response, 400)
    assert api.toxic(PROXY, created["name"])["attributes"] == created["attributes"]
