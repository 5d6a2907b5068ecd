"""Property-based fuzzing of every operation in the shop's OpenAPI schema: whatever the input,
valid or not, a healthy shop never answers 5xx (bad input gets a 4xx, never a crash).

Schemathesis generates the requests from the live ``/openapi.json``; Hypothesis runs them, 50
examples per operation. (Schemathesis' own lazy pytest loader, ``from_fixture``, does not work
with this pytest version, so the operations are parametrized here and driven with ``@given``.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from shop_support import ShopProcess
from shopapp.app import create_app
from shopapp.config import load_settings

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 50

# The operations as the app declares them; the test fetches the schema itself from the server.
_OFFLINE = create_app(load_settings({"SHOP_DATABASE_URL": "postgresql://x@127.0.0.1:9/x"}))
OPERATIONS = [
    (method.upper(), path)
    for path, methods in _OFFLINE.openapi()["paths"].items()
    for method in methods
]


@pytest.fixture(scope="module")
def shop_schema(shop: ShopProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{shop.url}/openapi.json")


def test_the_schema_lists_every_operation(shop_schema: schemathesis.BaseSchema) -> None:
    served = {(method.upper(), path) for path, ops in shop_schema.items() for method in ops}
    assert served == set(OPERATIONS)
    assert len(OPERATIONS) >= 11


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_makes_the_shop_answer_5xx(
    shop: ShopProcess, shop_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    operation = shop_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,  # nothing written into the work tree
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=shop.url, checks=[not_a_server_error], timeout=10)

    no_server_error()
