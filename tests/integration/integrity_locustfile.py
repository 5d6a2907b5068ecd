"""Buyers for the integrity test: every task is a purchase, and every checkout retries with the
same Idempotency-Key until it gets a definite answer, so under chaos a lost answer is followed by
a retry (which a correct shop answers with the order already placed).

The stop is graceful (``stop_timeout``): a user asked to stop finishes its purchase first, so no
checkout is cut off mid-flight with an order placed and no answer recorded.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, ClassVar

from locust import between, events, task

from harness.load.retry import RetryPolicy
from harness.load.users import RetryingHttpUser


@events.init.add_listener
def _finish_purchases_on_stop(environment: Any, **_: Any) -> None:
    environment.stop_timeout = 10


class Buyer(RetryingHttpUser):
    wait_time = between(0.05, 0.2)
    # Enough attempts (each at least the 503's Retry-After apart) to outlast every fault.
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=15, base_s=0.2, cap_s=2.0)

    @task
    def buy(self) -> None:
        cart = self.logical_request("POST", "/carts", ok_statuses=(201,))
        body = cart.json()
        if not cart.ok or not isinstance(body, dict) or "cart_id" not in body:
            return
        cart_id = body["cart_id"]
        added = self.logical_request(
            "POST",
            f"/carts/{cart_id}/items",
            name="/carts/[id]/items",
            json={"product_id": random.randrange(1, 20), "quantity": 1},
            ok_statuses=(200,),
        )
        if not added.ok:
            return
        self.logical_request(
            "POST",
            "/checkout",
            json={"cart_id": cart_id},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            ok_statuses=(200, 201, 409),
        )
