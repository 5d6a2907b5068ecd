"""Users for the coordinated-omission test: the same request, in the open and the closed model."""

from __future__ import annotations

from locust import FastHttpUser, constant_pacing, task

from harness.load.open_model import OpenModelUser


class OpenUser(OpenModelUser):
    @task
    def fetch(self) -> None:
        self.client.get("/")


class ClosedUser(FastHttpUser):
    # One user, a request every 20 ms when answers are quick: the open user's 50/s.
    wait_time = constant_pacing(0.02)
    network_timeout = 10.0

    @task
    def fetch(self) -> None:
        self.client.get("/")
