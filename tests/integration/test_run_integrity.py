"""Data integrity under chaos, judged by `harness run` with post-run checks: orders counted in
the database before and after the run are compared with the checkouts the load saw answered.

The chaos: the database link slowed to the edge of the shop's deadline (so some checkouts commit
and still answer 503: the answer is lost, not the order), a backend killed mid-checkout, and the
database link cut. Buyers retry each checkout with the same Idempotency-Key.

A correct shop passes: every new order is a checkout answered 2xx (a lost answer is replayed with
200 on the retry), and no key has two orders. A shop that ignores the key (SHOP_IDEMPOTENCY=off)
answers such a retry 409 "already checked out", so an order exists that no 2xx answered: the
integrity SLOs fail. Known answers both ways, on the real local stack.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_support import Harness, RunningStack, own_stack
from test_run_verdicts import Judged, judged_run

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(__file__).parent / "integrity_locustfile.py"
INTEGRITY_SLOS = {"orders-are-the-2xx-checkouts", "no-order-behind-a-refusal"}

SCENARIO = """\
    name: {name}
    stack:
      env: {env}
    load:
      locustfile: {locustfile}
      phases:
        - {{name: calm, duration: 4s, users: 12, spawn_rate: 20}}
        - {{name: chaos, duration: 14s, users: 12, spawn_rate: 20}}
        - {{name: after, duration: 5s, users: 12, spawn_rate: 20}}
    faults:
      # 24 ms a round trip, give or take 20: a checkout's eleven round trips end near the 300 ms
      # deadline, so some commit and then time out: 503 for an order that was placed. The wide
      # jitter spreads the checkouts' times over the deadline on a fast machine as on a slow one
      # (with 22 +- 10 ms, a quiet machine ran a whole chaos phase with no answer lost).
      - {{name: slow-db, action: toxic, target: app-db, at: 4s, for: 8s,
          params: {{type: latency, latency: 24, jitter: 20}}}}
      - {{name: kill-app-1, action: kill, target: app-1, at: 6s, for: 3s}}
      - {{name: cut-db, action: down, target: app-db, at: 13s, for: 2s}}
    checks:
      - {{name: orders, sql: "SELECT count(*) FROM orders"}}
      - name: duplicate-keys
        sql: "SELECT count(*) - count(DISTINCT idempotency_key) FROM orders"
    slos:
      - {{name: no-500s, expr: "count(status == 500) == 0"}}
      - name: orders-are-the-2xx-checkouts
        expr: 'check(orders, delta) == requests(status == 2xx, where name == "/checkout")'
      - name: no-order-behind-a-refusal
        expr: >-
          check(orders, delta) <= requests(status == 2xx or status == 0 or status >= 500,
          where name == "/checkout")
      - name: no-acknowledged-order-lost
        expr: 'check(orders, delta) >= count(status == 2xx, where name == "/checkout")'
      - {{name: one-order-per-key, expr: "check(duplicate-keys) == 0"}}
    """


def integrity_scenario(tmp_path: Path, name: str, env: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(SCENARIO.format(name=name, env=env, locustfile=LOCUSTFILE)))
    return path


def slo(judged: Judged, name: str) -> dict[str, object]:
    (found,) = [s for s in judged.summary["slos"] if s["name"] == name]
    return found


def test_a_correct_shop_has_one_order_per_checkout_answered_2xx_under_chaos(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario = integrity_scenario(tmp_path, "integrity-ok", '{SHOP_MAINTENANCE_RETRY_AFTER_S: "5"}')
    judged = judged_run(scenario, stack.harness.state_dir, tmp_path / "reports")
    checks = {c["name"]: c for c in judged.summary["checks"]}
    assert (checks["orders"]["delta"] or 0) > 20, checks
    assert checks["duplicate-keys"]["after"] == 0, checks
    assert judged.code == 0, str(judged)
    assert all(s["passed"] for s in judged.summary["slos"]), judged.summary["slos"]
    # The chaos did lose answers: retries were answered with the order already placed (200).
    names = judged.run.meta["request_names"]
    replays = sum(int(n["/checkout"]["all"].get("200", 0)) for n in names.values())
    print(f"checkout answers replayed: {replays}")
    assert replays >= 1, names
    assert "<h2>Checks</h2>" in judged.html
    assert "orders" in judged.out  # the terminal's checks table


@pytest.fixture
def shop_ignoring_keys() -> Iterator[Harness]:
    """A stack of its own whose shop ignores Idempotency-Key (the session's settings otherwise)."""
    with own_stack("harness-it-no-idempotency-", {"SHOP_IDEMPOTENCY": "off"}) as running:
        yield running.harness


def test_a_shop_ignoring_the_idempotency_key_fails_the_integrity_slos(
    shop_ignoring_keys: Harness, tmp_path: Path
) -> None:
    env = '{SHOP_MAINTENANCE_RETRY_AFTER_S: "5", SHOP_IDEMPOTENCY: "off"}'
    scenario = integrity_scenario(tmp_path, "integrity-broken", env)
    judged = judged_run(scenario, shop_ignoring_keys.state_dir, tmp_path / "reports")
    assert judged.code == 1, str(judged)
    failed = {s["name"] for s in judged.summary["slos"] if not s["passed"]}
    assert failed == INTEGRITY_SLOS, judged.summary["slos"]
    # More orders than checkouts answered 2xx: orders no answer acknowledged.
    ok = slo(judged, "orders-are-the-2xx-checkouts")
    observed, threshold = ok["observed"], ok["threshold"]
    assert isinstance(observed, int | float), ok
    assert isinstance(threshold, int | float), ok
    assert observed > threshold, ok
