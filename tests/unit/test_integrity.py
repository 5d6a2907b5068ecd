"""Post-run checks: per-name totals from the recorder, the SLO forms that compare them with a
check's readings, and the readings' round trip through events. Known answers throughout."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import BadInputError
from harness.integrity.probe import CheckError, CheckTarget, expand_env, number_at, read_check
from harness.integrity.readings import check_values, record_checks
from harness.load.recording import MAX_NAMES, OTHER_NAME, AttemptContext, RequestRecorder
from harness.record import Event, EventKind
from harness.safety import run_policy
from harness.scenario import PostCheck
from harness.verdict.evaluate import evaluate
from harness.verdict.language import parse_slo
from harness.verdict.rundata import RunData, name_counts

pytestmark = pytest.mark.unit


def _response(status: int) -> Any:
    return SimpleNamespace(status_code=status, headers={})


def _attempt(
    rec: RequestRecorder, name: str, status: int, logical: int, n: int, final: bool
) -> None:
    info = AttemptContext(logical, n)
    info.final = final
    rec.on_request(10.0, _response(status), {"harness_attempt": info}, None, 100.0, name)


def test_per_name_totals_count_every_attempt_and_each_logical_request_once_by_its_end() -> None:
    rec = RequestRecorder(clock=lambda: 200.0)
    _attempt(rec, "/checkout", 503, 1, 1, final=False)
    _attempt(rec, "/checkout", 200, 1, 2, final=True)  # a lost answer, replayed
    _attempt(rec, "/checkout", 201, 2, 1, final=True)
    rec.on_request(5.0, _response(200), None, None, 100.0, "/products")
    shipment = rec.shipment(final=True)
    assert shipment is not None
    assert shipment["names"]["/checkout"] == {
        "all": {"200": 1, "201": 1, "503": 1},
        "final": {"200": 1, "201": 1},
    }
    assert shipment["names"]["/products"] == {"all": {"200": 1}, "final": {"200": 1}}


def test_names_past_the_cap_are_counted_together_under_other() -> None:
    rec = RequestRecorder(clock=lambda: 200.0)
    for i in range(MAX_NAMES + 5):
        rec.on_request(1.0, _response(200), None, None, 100.0, f"/item/{i}")
    shipment = rec.shipment(final=True)
    assert shipment is not None
    assert len(shipment["names"]) == MAX_NAMES + 1
    assert shipment["names"][OTHER_NAME]["all"] == {"200": 5}


def _data(names: dict[str, Any], events: list[Event]) -> RunData:
    return RunData(
        start=0.0,
        end=10.0,
        buckets=(),
        names=name_counts({"w1": names, "w2": names}),
        checks=check_values(events, ["orders"]),
    )


def _check_event(stage: str, value: float | None, error: str = "") -> Event:
    detail: dict[str, Any] = {"stage": stage, "value": value}
    if error:
        detail["error"] = error
    return Event(0, 0.0, EventKind.CHECK, "orders", detail)


# Two workers, each: 10 checkouts created (201), 2 replayed after a lost answer (200 after a 503),
# 1 refused (409), 1 that never got an answer: 24 logical checkouts answered 2xx in all.
CHECKOUTS = {
    "/checkout": {
        "all": {"201": 10, "200": 2, "503": 3, "409": 1, "0": 4},
        "final": {"201": 10, "200": 2, "409": 1, "0": 1},
    }
}


@pytest.mark.parametrize(
    ("orders_after", "passes"),
    [(124, True), (123, False), (125, False)],
)
def test_orders_equal_to_the_checkouts_answered_2xx_passes_and_any_other_count_fails(
    orders_after: float, passes: bool
) -> None:
    data = _data(CHECKOUTS, [_check_event("before", 100), _check_event("after", orders_after)])
    slo = parse_slo('check(orders, delta) == requests(status == 2xx, where name == "/checkout")')
    verdict = evaluate(slo, data)
    assert verdict.threshold == 24
    assert verdict.observed == orders_after - 100
    assert verdict.passed is passes


def test_an_order_behind_a_refusal_fails_the_upper_bound() -> None:
    # 24 answered 2xx + 2 never answered: at most 26 orders; 27 means one behind a 409.
    text = (
        "check(orders, delta) <= requests(status == 2xx or status == 0 or status >= 500, "
        'where name == "/checkout")'
    )
    for after, passes in ((126, True), (127, False)):
        data = _data(CHECKOUTS, [_check_event("before", 100), _check_event("after", after)])
        assert evaluate(parse_slo(text), data).passed is passes


def test_count_by_name_counts_every_attempt() -> None:
    data = _data(CHECKOUTS, [])
    verdict = evaluate(parse_slo('count(status == 5xx, where name == "/checkout") == 6'), data)
    assert verdict.observed == 6
    assert verdict.passed


def test_a_check_that_was_not_read_fails_its_slo_saying_why() -> None:
    data = _data(CHECKOUTS, [_check_event("before", 100), _check_event("after", None, "refused")])
    verdict = evaluate(parse_slo("check(orders, delta) == 0"), data)
    assert verdict.observed is None
    assert not verdict.passed
    assert "after: refused" in verdict.detail


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("check(orders) == 0 during phase spike", "takes no window"),
        ('count(name == "/x") == 1', "in a where clause only"),
        ('count(status == 200, where name != "/x") == 1', "matched with =="),
        ("check(orders) == ratio(status == 503)", "not comparable"),
        ("check(orders, later) == 1", 'unknown stage "later"'),
    ],
)
def test_misused_integrity_forms_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        parse_slo(text)


def test_readings_are_recorded_as_events_and_a_failing_check_is_retried_until_settled() -> None:
    written: list[tuple[str, dict[str, Any]]] = []

    class Writer:
        def event(self, kind: Any, name: str = "", detail: Any = None, *, t: Any = None) -> int:
            written.append((name, dict(detail)))
            return len(written)

    answers = iter([CheckError("connection refused"), 7.0])

    def read(check: PostCheck, target: Any) -> float:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    now = [0.0]
    check = PostCheck(name="orders", sql="SELECT 1")
    values = record_checks(
        [check],
        None,  # type: ignore[arg-type]
        "after",
        Writer(),
        settle_s=5.0,
        read=read,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert values == {"orders": 7.0}
    assert written == [("orders", {"stage": "after", "value": 7.0})]


def test_json_field_paths_and_environment_references() -> None:
    assert number_at({"stats": {"orders": [3, 4]}}, "stats.orders.1") == 4
    with pytest.raises(CheckError, match=r"no field stats\.missing"):
        number_at({"stats": {}}, "stats.missing")
    with pytest.raises(CheckError, match="not a number"):
        number_at({"ok": True}, "ok")
    assert expand_env("Bearer ${TOKEN}", {"TOKEN": "abc"}) == "Bearer abc"
    with pytest.raises(CheckError, match="TOKEN is not set"):
        expand_env("Bearer ${TOKEN}", {})


def test_a_dsn_whose_host_comes_from_the_environment_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The host is only known once ${DB_HOST} is expanded, after the scenario was validated; a
    # refused host must never be dialled (the address below is TEST-NET-1: it cannot answer).
    monkeypatch.setenv("DB_HOST", "192.0.2.7")
    check = PostCheck(name="orders", sql="SELECT 1", dsn="postgresql://shop@${DB_HOST}/shop")
    target = CheckTarget(entry_url="http://127.0.0.1:1", policy=run_policy(()))
    with pytest.raises(CheckError, match=r'checks: orders: dsn: .*"192\.0\.2\.7"'):
        read_check(check, target)
