"""A ramp-down stops a RetryingHttpUser that sleeps out a Retry-After at once, and lets one with a
request in flight finish that request (and send no other): a real Locust (local runner,
stop_timeout 10 s, as the shop's locustfile sets it) against a real HTTP server, in a child
process (Locust monkey-patches the process it runs in).

Before the fix a user sleeping out ``Retry-After: 30`` counted as busy: the ramp-down waited the
whole stop timeout (10 s) for it, then killed it, which is how the flash sale's cool-down stalled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from gevent import monkey
    monkey.patch_all()
    import gevent
    from gevent.pywsgi import WSGIServer
    from locust import constant, events, task
    from locust.env import Environment
    from harness.load.users import RetryingHttpUser
    from harness.load.retry import RetryPolicy

    mode = sys.argv[1]  # "retry-after": 503 + Retry-After 30; "slow": a 200 after 1.5 s

    def app(environ, start_response):
        if mode == "slow":
            gevent.sleep(1.5)
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]
        start_response("503 Service Unavailable", [("Retry-After", "30"), ("Content-Length", "0")])
        return [b""]

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()

    class Shopper(RetryingHttpUser):
        host = f"http://127.0.0.1:{server.server_port}"
        wait_time = constant(0.1)
        retry_policy = RetryPolicy(max_attempts=4, base_s=0.2, cap_s=4.0)

        @task
        def browse(self):
            self.logical_request("GET", "/products")
            self.logical_request("GET", "/products/1")  # never sent once a stop was asked

    seen = []
    started = []

    @events.request.add_listener
    def _seen(response=None, **_):
        seen.append(response.status_code if response is not None else 0)

    env = Environment(user_classes=[Shopper], events=events, stop_timeout=10)
    runner = env.create_local_runner()
    runner.spawn_users({"Shopper": 1})
    deadline = time.time() + 5
    while time.time() < deadline:
        gevent.sleep(0.05)
        if mode == "retry-after" and seen:
            break  # the first 503 is in: the user now sleeps out its Retry-After
        if mode == "slow":
            gevent.sleep(0.5)  # the first request is in flight (1.5 s on the server)
            break
    t = time.monotonic()
    runner.stop_users({"Shopper": 1})
    print(json.dumps({"stop_s": time.monotonic() - t, "users": runner.user_count,
                      "statuses": seen}))
    server.stop()
    """
)


def _stop(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.timeout(90)
def test_a_user_sleeping_out_a_retry_after_stops_at_once() -> None:
    result = _stop("retry-after")
    assert result["statuses"] == [503]  # asked to stop during its wait: no retry was sent
    assert result["users"] == 0
    assert isinstance(result["stop_s"], float)
    assert result["stop_s"] < 1.0, result


@pytest.mark.timeout(90)
def test_a_user_with_a_request_in_flight_finishes_it_before_stopping() -> None:
    result = _stop("slow")
    # The answer arrived and was recorded (not cut off); the user stopped when it came (about
    # 1 s after the stop was asked for), not at the 10 s stop timeout, and sent nothing more.
    assert result["statuses"] == [200]
    assert result["users"] == 0
    assert isinstance(result["stop_s"], float)
    assert 0.5 < result["stop_s"] < 3.0, result
