"""Shoppers for the open model: each arrival is one browse or one product page, paced by the
scenario's arrival rate (``load.model: open``), timed from when it was due."""

from __future__ import annotations

import random

from locust import task

from harness.load.open_model import OpenModelUser


class OpenShopUser(OpenModelUser):
    @task(2)
    def browse(self) -> None:
        self.client.get("/products")

    @task(1)
    def product(self) -> None:
        self.client.get(f"/products/{random.randint(1, 20)}", name="/products/[id]")
