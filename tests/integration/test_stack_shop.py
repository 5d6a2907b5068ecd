"""The shop behind the whole local stack: a slow database, maintenance mode, idempotent
checkout and the admin API's token, each seen through Caddy and on every instance."""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from stack_support import DB_TIMEOUT_MS, RunningStack, maintenance, wait_until

from harness.stack.base import StackInfo

pytestmark = pytest.mark.integration

# Far slower than the shop's deadline, so an answer bounded by the deadline and one that waited for
# the database are seconds apart, and scheduling noise on a busy machine cannot blur the two.
SLOW_DB_MS = 10 * DB_TIMEOUT_MS
# What a 503 may take beyond the deadline: the event loop's and the client's own scheduling.
DEADLINE_SLACK_MS = 500
MAINTENANCE_NOTICE_S = 1.0


def _client(base_url: str = "") -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=10, trust_env=False)


def _targets(info: StackInfo) -> dict[str, str]:
    """Where to send a request: each instance directly, and the entry point."""
    return {"caddy": info.entry_url} | {i.name: i.endpoint.url() for i in info.instances}


def _timed_gets(url: str, count: int) -> list[tuple[int, str | None, float]]:
    """``count`` GETs, four at a time: (status, Retry-After, seconds) of each."""
    # One client for all: a client per request would time its own set-up (an SSL context each).
    with _client() as client:

        def one(_: int) -> tuple[int, str | None, float]:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            return response.status_code, response.headers.get("Retry-After"), elapsed

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, range(count)))


def _p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile."""
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def test_a_slow_database_gives_fast_503s_and_the_shop_heals_by_itself(
    stack: RunningStack,
) -> None:
    info = stack.info
    toxics_url = f"{info.toxiproxy_url}/proxies/app-db/toxics"
    with _client() as client:
        added = client.post(
            toxics_url,
            json={
                "name": "slow_db",
                "type": "latency",
                "stream": "downstream",
                "attributes": {"latency": SLOW_DB_MS, "jitter": 0},
            },
        )
        assert added.status_code == 200, added.text
    try:
        for target, base in _targets(info).items():
            # 100 answers, so the p99 is a percentile and not simply the slowest one.
            results = _timed_gets(f"{base}/products", count=100)
            statuses = {status for status, _, _ in results}
            assert statuses == {503}, f"{target}: {statuses}"
            assert all(retry_after for _, retry_after, _ in results), target
            p99_ms = 1000 * _p99([seconds for _, _, seconds in results])
            print(f"slow database, {target}: p99 of the 503s {p99_ms:.0f} ms")
            slowest = sorted(round(1000 * seconds) for _, _, seconds in results)[-5:]
            assert p99_ms < DB_TIMEOUT_MS + DEADLINE_SLACK_MS, f"{target}: slowest {slowest} ms"
    finally:
        with _client() as client:
            client.delete(f"{toxics_url}/slow_db").raise_for_status()

    def all_serve() -> bool:
        with _client() as client:
            return all(
                client.get(f"{base}/products").status_code == 200
                for base in _targets(info).values()
            )

    healed = wait_until(all_serve, 15, "every instance and Caddy to serve again")
    print(f"slow database removed: everything served again after {healed:.2f}s")


def test_maintenance_reaches_every_instance_within_a_second_and_lifts(
    stack: RunningStack,
) -> None:
    info = stack.info
    instances = {i.name: i.endpoint.url("/products") for i in info.instances}

    def every_instance(status: int) -> bool:
        with _client() as client:
            responses = [client.get(url) for url in instances.values()]
        return all(
            r.status_code == status and (status != 503 or r.headers.get("Retry-After") == "5")
            for r in responses
        )

    try:
        maintenance(info, enabled=True)
        took = wait_until(lambda: every_instance(503), MAINTENANCE_NOTICE_S, "maintenance on")
        print(f"maintenance on everywhere after {took:.2f}s")
        with _client() as client:
            through_caddy = client.get(f"{info.entry_url}/products")
        assert through_caddy.status_code == 503
        assert through_caddy.headers.get("Retry-After")
    finally:
        maintenance(info, enabled=False)
    took = wait_until(lambda: every_instance(200), MAINTENANCE_NOTICE_S, "maintenance off")
    print(f"maintenance off everywhere after {took:.2f}s")
    with _client() as client:
        wait_until(
            lambda: client.get(f"{info.entry_url}/products").status_code == 200,
            2,
            "Caddy to route again",
        )


def checkout_again(key: str, cart_id: str, entry_url: str) -> httpx.Response:
    with _client(entry_url) as client:
        return client.post("/checkout", json={"cart_id": cart_id}, headers={"Idempotency-Key": key})


def test_concurrent_checkout_retries_with_one_key_make_one_order(stack: RunningStack) -> None:
    info = stack.info
    with _client(info.entry_url) as client:
        cart = client.post("/carts")
        assert cart.status_code == 201, cart.text
        cart_id = cart.json()["cart_id"]
        item = client.post(f"/carts/{cart_id}/items", json={"product_id": 1, "quantity": 2})
        assert item.status_code == 200, item.text

    key = f"it-{uuid.uuid4()}"
    attempts = 12
    barrier = threading.Barrier(attempts)

    def checkout(_: int) -> httpx.Response:
        with _client(info.entry_url) as client:
            barrier.wait()
            return client.post(
                "/checkout", json={"cart_id": cart_id}, headers={"Idempotency-Key": key}
            )

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        responses = list(pool.map(checkout, range(attempts)))
    # Twelve transactions racing for one key's row on a busy machine: one may miss the shop's
    # database deadline and be told 503 + Retry-After, as a resilient shop should. A client
    # retries that with the same key, and what must hold is about the key: one order, once.
    for i, response in enumerate(responses):
        for _ in range(5):
            if response.status_code != 503:
                break
            assert response.headers.get("Retry-After"), response.text
            time.sleep(0.2)
            response = checkout_again(key, cart_id, info.entry_url)
        responses[i] = response

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (attempts - 1) + [201], [r.text for r in responses]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert len({r.headers["X-Shop-Instance"] for r in responses}) > 1  # really spread out

    async def orders_in_db() -> int:
        conn = await asyncpg.connect(info.database_url)
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE idempotency_key = $1 OR cart_id = $2",
                key,
                uuid.UUID(cart_id),
            )
            return count
        finally:
            await conn.close()

    assert asyncio.run(orders_in_db()) == 1


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]
)
def test_admin_api_refuses_requests_without_the_token(
    stack: RunningStack, headers: dict[str, str]
) -> None:
    info = stack.info
    with _client() as client:
        for target, base in _targets(info).items():
            switched = client.post(
                f"{base}/admin/maintenance", json={"enabled": True}, headers=headers
            )
            assert switched.status_code == 401, target
            assert client.get(f"{base}/admin/stats", headers=headers).status_code == 401, target
        # Nothing was switched: every instance is still ready.
        for instance in info.instances:
            assert client.get(instance.endpoint.url("/readyz")).status_code == 200


def test_admin_api_accepts_the_token_of_the_stack(stack: RunningStack) -> None:
    info = stack.info
    with _client() as client:
        for instance in info.instances:
            stats = client.get(
                instance.endpoint.url("/admin/stats"),
                headers={"Authorization": f"Bearer {info.admin_token}"},
            )
            assert stats.status_code == 200
            assert stats.json()["instance"] == instance.name


def test_the_stacks_toxiproxy_counts_the_bytes_of_a_link_on_metrics(stack: RunningStack) -> None:
    """A game day's Prometheus scrapes the stack's Toxiproxy. The real server adds a connection's
    bytes when the connection ends (the embedded one as they flow), and Caddy keeps its upstream
    connections open: so the request goes straight through one instance's proxy on a connection
    that closes after the answer, and its bytes must then appear, per proxy and direction."""
    info = stack.info
    instance = info.instances[0]
    (proxy,) = [p for p in info.proxies if p.name == instance.proxy]
    through_proxy = f"http://{proxy.listen.host}:{proxy.listen.port}/products"
    with _client() as client:
        answer = client.get(through_proxy, headers={"Connection": "close"})
        assert answer.status_code == 200, answer.text
        answered = len(answer.content)

        def families() -> dict[str, Metric]:
            scraped = client.get(f"{info.toxiproxy_url}/metrics")
            assert scraped.status_code == 200, scraped.text
            return {f.name: f for f in text_string_to_metric_families(scraped.text)}

        def sent_downstream() -> float:
            sent = families().get("toxiproxy_proxy_sent_bytes")
            return sum(
                s.value
                for s in (sent.samples if sent is not None else ())
                if s.labels["proxy"] == proxy.name and s.labels["direction"] == "downstream"
            )

        # At least the answer's body went back to the client through the proxy.
        wait_until(lambda: sent_downstream() >= answered, 10, f"{proxy.name}'s bytes on /metrics")
        scraped = families()
    assert scraped["toxiproxy_proxy_sent_bytes"].type == "counter"
    assert "process_cpu_seconds" in scraped  # -runtime-metrics (the parser drops _total)
    (sample, *_) = [
        s
        for s in scraped["toxiproxy_proxy_received_bytes"].samples
        if s.labels["proxy"] == proxy.name
    ]
    assert sample.labels["upstream"] == f"{proxy.upstream.host}:{proxy.upstream.port}"
