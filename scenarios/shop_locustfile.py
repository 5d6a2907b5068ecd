"""Shoppers for the sample shop: browse, look at a product, fill a cart, check out.

``ShopUser`` is a well-behaved client (:class:`~harness.load.users.RetryingHttpUser`: exponential
backoff with full jitter, Retry-After honoured, at most four attempts). ``NaiveShopUser`` does the
same shopping but retries at once and ignores Retry-After, the retry storm a shop must survive;
pick one per scenario with ``load.user_classes``.

Every checkout sends an ``Idempotency-Key`` that stays the same across the retries of that
checkout, so a retry after a lost answer returns the order already placed (200) instead of a
second one.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, ClassVar

from locust import between, events, task

from harness.load.retry import NAIVE, RetryPolicy
from harness.load.users import RetryingHttpUser


@events.init.add_listener
def _finish_purchases_on_stop(environment: Any, **_: Any) -> None:
    # A user asked to stop (the ramp-down, the end of the run) finishes the request it has in
    # flight first: a checkout cut off mid-flight could place an order no answer was ever
    # recorded for, and the scenarios' integrity SLOs compare orders with the answers the load
    # saw. Then it stops (harness.load.users): no retry and no next request of the task; a user
    # waiting between attempts (a Retry-After) stops at once.
    environment.stop_timeout = 10


PRODUCT_IDS = range(1, 21)
# The limited drop (product 20) sells out in a flash sale; a sold-out checkout is a correct answer.
LIMITED_DROP = 20


class ShopUser(RetryingHttpUser):
    """Mostly browsing, now and then a purchase."""

    wait_time = between(0.2, 0.8)
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=4, base_s=0.2, cap_s=4.0)

    @task(6)
    def browse(self) -> None:
        self.logical_request("GET", "/products")

    @task(3)
    def product(self) -> None:
        product_id = random.choice(PRODUCT_IDS)
        self.logical_request(
            "GET", f"/products/{product_id}", name="/products/[id]", ok_statuses=(200,)
        )

    @task(1)
    def buy(self) -> None:
        cart = self.logical_request("POST", "/carts", ok_statuses=(201,))
        body = cart.json()
        if not cart.ok or not isinstance(body, dict) or "cart_id" not in body:
            return
        cart_id = body["cart_id"]
        for _ in range(random.randint(1, 3)):
            product_id = LIMITED_DROP if random.random() < 0.1 else random.randrange(1, 20)
            added = self.logical_request(
                "POST",
                f"/carts/{cart_id}/items",
                name="/carts/[id]/items",
                json={"product_id": product_id, "quantity": random.randint(1, 2)},
                ok_statuses=(200,),
            )
            if not added.ok:
                return
        # One key for the checkout, whatever number of attempts it takes.
        self.logical_request(
            "POST",
            "/checkout",
            json={"cart_id": cart_id},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            ok_statuses=(200, 201, 409),  # 409: sold out, an honest answer
        )


class NaiveShopUser(ShopUser):
    """The same shopper with a naive client: immediate retries, Retry-After ignored."""

    retry_policy: ClassVar[RetryPolicy] = NAIVE
