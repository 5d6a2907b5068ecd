"""Fault leases: the server's table and expiry on a fake clock, the harness's renewer and the
injectors against a real embedded server, and the scenario's ``fault_lease`` setting."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import BadInputError
from harness.faults.http_toxic import AddHttpToxic
from harness.faults.lease import LeaseRenewer, current_lease, fault_lease
from harness.faults.toxic import AddToxics, DisableProxy, ToxicSpec
from harness.proxy.client import ToxiproxyClient
from harness.proxy.launcher import RunningToxiproxy, running_toxiproxy
from harness.proxy.lease import Lease, LeaseError, LeaseTable
from harness.proxy.proxy import ProxyCollection
from harness.proxy.toxics import ToxicConfig
from harness.scenario import load_scenario

# The unit tier, but for the tests marked integration below (they start processes):
# tests/unit/conftest.py marks every other test here unit.


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the server's table, on a fake clock -----------------------------------------------------


def test_a_lease_expires_once_its_ttl_passes_without_a_renewal() -> None:
    clock = FakeClock()
    table = LeaseTable(clock)
    lease = table.create(10_000, "run")
    clock.now += 9.999
    assert table.expired() == []
    clock.now += 0.001
    assert table.expired() == [lease]
    assert lease.id not in table


def test_each_renewal_gives_the_lease_its_whole_ttl_again() -> None:
    clock = FakeClock()
    table = LeaseTable(clock)
    lease = table.create(3_000)
    for _ in range(10):  # 20 s in all, never 3 s without a renewal
        clock.now += 2.0
        table.renew(lease.id)
        assert table.expired() == []
    assert table.remaining_s(lease) == pytest.approx(3.0)
    clock.now += 3.0
    assert table.expired() == [lease]


def test_a_lease_past_its_deadline_cannot_be_renewed_before_the_sweep_takes_it() -> None:
    clock = FakeClock()
    table = LeaseTable(clock)
    lease = table.create(1_000)
    clock.now += 1.0
    with pytest.raises(LeaseError, match="lease not found") as caught:
        table.renew(lease.id)
    assert caught.value.status == 404
    assert table.all() == []
    assert lease.id not in table  # so no new toxic is attached to it either


@pytest.mark.parametrize(
    ("ttl_ms", "owner", "message"),
    [
        (99, "", "ttl_ms must be from 100 to 86400000, got 99"),
        (86_400_001, "", "got 86400001"),
        (1_000, "x" * 257, "owner longer than 256 characters"),
    ],
)
def test_lease_bounds_are_refused_with_400(ttl_ms: int, owner: str, message: str) -> None:
    with pytest.raises(LeaseError, match=message) as caught:
        LeaseTable().create(ttl_ms, owner)
    assert caught.value.status == 400


def test_the_number_of_live_leases_is_bounded() -> None:
    table = LeaseTable()
    for _ in range(1024):
        table.create(60_000)
    with pytest.raises(LeaseError, match="too many leases"):
        table.create(60_000)


def test_expiry_lifts_only_the_toxics_attached_to_the_expired_lease() -> None:
    clock = FakeClock()
    collection = ProxyCollection("127.0.0.1", LeaseTable(clock))
    short = collection.leases.create(1_000, "short")
    long = collection.leases.create(60_000, "long")
    for name in ("db", "web"):
        collection.proxies[name] = collection.new_proxy(name, "127.0.0.1:0", "127.0.0.1:9")
    db, web = collection.proxies["db"], collection.proxies["web"]
    db.add_toxic(ToxicConfig("a", "latency", "downstream", 1.0, {"latency": 1}, lease=short.id))
    web.add_toxic(ToxicConfig("b", "noop", "upstream", 1.0, {}, lease=short.id))
    web.add_toxic(ToxicConfig("c", "noop", "downstream", 1.0, {}, lease=long.id))
    db.add_toxic(ToxicConfig("d", "noop", "upstream", 1.0, {}))  # nobody's lease
    clock.now += 0.5
    assert asyncio.run(collection.expire_leases()) == []
    clock.now += 0.5
    assert asyncio.run(collection.expire_leases()) == [(short, ["db/a", "web/b"])]
    assert (list(db.toxics), list(web.toxics)) == (["d"], ["c"])
    clock.now += 60
    assert asyncio.run(collection.expire_leases()) == [(long, ["web/c"])]
    assert (list(db.toxics), list(web.toxics)) == (["d"], [])


def test_expiry_enables_again_only_the_proxy_disabled_under_that_lease() -> None:
    clock = FakeClock()
    collection = ProxyCollection("127.0.0.1", LeaseTable(clock))
    lease = collection.leases.create(1_000)

    async def scenario() -> tuple[list[tuple[Lease, list[str]]], dict[str, bool]]:
        for name in ("down", "other"):
            proxy = collection.new_proxy(name, "127.0.0.1:0", "127.0.0.1:9")
            await collection.add(proxy, start=False)  # disabled, as a `down` leaves it
        collection.proxies["down"].lease = lease.id
        clock.now += 1.0
        try:
            lifted = await collection.expire_leases()
            return lifted, {name: p.enabled for name, p in collection.proxies.items()}
        finally:
            collection.clear()  # close the listener the lift opened

    lifted, enabled = asyncio.run(scenario())
    assert lifted == [(lease, ["enabled down"])]
    assert enabled == {"down": True, "other": False}


def test_a_leased_toxics_json_adds_only_the_lease() -> None:
    plain = ToxicConfig("t", "latency", "downstream", 1.0, {"latency": 1, "jitter": 0})
    leased = ToxicConfig("t", "latency", "downstream", 1.0, {"latency": 1, "jitter": 0}, lease="L")
    assert "lease" not in plain.to_json()
    assert leased.to_json() == {**plain.to_json(), "lease": "L"}


# --- the renewer and the injectors, against a real embedded server -------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningToxiproxy]:
    with running_toxiproxy(kind="embedded", log_file=tmp_path / "server.log") as running:
        client = ToxiproxyClient(running.api_url)
        client.create_proxy("db", "127.0.0.1:0", "127.0.0.1:9")
        client.create_proxy("web", "127.0.0.1:0", "127.0.0.1:9")
        yield running


def _toxics(server: RunningToxiproxy) -> dict[str, str | None]:
    raw = ToxiproxyClient(server.api_url)._send("GET", "/proxies/db/toxics").json()
    return {toxic["name"]: toxic.get("lease") for toxic in raw}


def _add_toxic_fault(server: RunningToxiproxy, name: str = "slow") -> AddToxics:
    spec = ToxicSpec(f"harness-{name}", "latency", attributes=(("latency", 100),))
    return AddToxics(name, "db", (spec,), server.api_url)


@pytest.mark.integration  # a real proxy server, and waits
def test_the_renewer_keeps_its_lease_alive_past_the_ttl(server: RunningToxiproxy) -> None:
    renewer = LeaseRenewer(server.api_url, 2.0, owner="test", interval_s=0.2)
    assert renewer.start()
    try:
        _add_toxic_fault(server).inject()
        time.sleep(3.0)  # longer than the lease: only the renewals keep the toxic
        assert _toxics(server) == {"harness-slow": renewer.lease_id}
        assert renewer.renewals >= 5
    finally:
        renewer.stop()
    assert _toxics(server) == {}  # released: what was still attached is lifted


GEVENT_RENEWER = """\
    from gevent import monkey

    monkey.patch_all()  # as importing locust does in the run's master

    import sys
    import time

    from harness.faults.lease import LeaseRenewer
    from harness.faults.toxic import AddToxics, ToxicSpec

    url = sys.argv[1]
    renewer = LeaseRenewer(url, 2.0, owner="gevent", interval_s=0.5)
    assert renewer.start()
    spec = ToxicSpec("harness-slow", "latency", attributes=(("latency", 100),))
    AddToxics("slow", "db", (spec,), url).inject()
    time.sleep(3.5)  # patched: the renewer's greenlet runs meanwhile
    print(renewer.renewals, renewer.lease_id)
    """


@pytest.mark.integration  # a real proxy server, and waits
def test_the_renewer_renews_in_a_gevent_patched_process_like_the_master(
    server: RunningToxiproxy,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GEVENT_RENEWER), server.api_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    renewals, lease = done.stdout.split()
    assert int(renewals) >= 3
    # The process ended without stopping the renewer (as a kill would): the toxic outlived
    # the lease's 2 s only through the renewals, and is still attached to the lease.
    assert _toxics(server) == {"harness-slow": lease}


@pytest.mark.integration  # a real proxy server
def test_injectors_attach_the_lease_of_this_process_and_only_while_it_runs(
    server: RunningToxiproxy,
) -> None:
    http = AddHttpToxic(
        "abort",
        "http-abort",
        "db",
        "harness-abort",
        (("action", "abort"), ("status", 503)),
        server.api_url,
    )
    client = ToxiproxyClient(server.api_url)
    with fault_lease(server.api_url, 10.0, owner="test") as renewer:
        assert renewer is not None
        assert current_lease(server.api_url) == renewer.lease_id
        _add_toxic_fault(server).inject()
        http.inject()
        DisableProxy("down", "web", server.api_url).inject()
        shown = client._send("GET", "/proxies/web").json()
        assert (shown["enabled"], shown["lease"]) == (False, renewer.lease_id)
        assert _toxics(server) == {
            "harness-abort": renewer.lease_id,
            "harness-slow": renewer.lease_id,
        }
        http.revert()
    assert current_lease(server.api_url) is None
    assert _toxics(server) == {}
    assert client.proxy("web").enabled  # released: the proxy it held down is enabled again
    _add_toxic_fault(server, "later").inject()  # no lease running: a plain toxic
    assert _toxics(server) == {"harness-later": None}


@pytest.mark.integration  # a real proxy server
def test_a_lease_that_ran_out_is_said_and_a_new_one_covers_later_faults(
    server: RunningToxiproxy,
) -> None:
    said: list[str] = []
    renewer = LeaseRenewer(server.api_url, 10.0, owner="test", interval_s=3600, warn=said.append)
    assert renewer.start()
    try:
        first = renewer.lease_id
        assert first is not None
        ToxiproxyClient(server.api_url).release_lease(first)  # as if it had run out
        renewer.renew_once()
        assert "ran out" in said[0]
        assert renewer.lease_id not in (None, first)
        assert current_lease(server.api_url) == renewer.lease_id
    finally:
        renewer.stop()


class _NoLeases(BaseHTTPRequestHandler):
    """A server without the extension: 404 everywhere, as the real Toxiproxy on /harness/."""

    def do_GET(self) -> None:
        body = b"404 page not found\n"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_a_server_without_leases_gets_none_and_the_run_is_told_only_rollback_applies() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NoLeases)
    # polled every 10 ms, not 0.5 s: shutdown() waits for the next poll
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    said: list[str] = []
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with fault_lease(url, 10.0, owner="test", warn=said.append) as renewer:
            assert renewer is None
            assert current_lease(url) is None
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert said == [
        f"Toxiproxy at {url} has no fault leases (a real Toxiproxy): if this run is killed, "
        "only harness rollback lifts its toxics"
    ]


def test_no_toxiproxy_url_means_no_lease() -> None:
    with fault_lease(None, 10.0, owner="test") as renewer:
        assert renewer is None


# --- the scenario's fault_lease ----------------------------------------------------------------

SCENARIO: dict[str, Any] = {
    "name": "leased",
    "load": {
        "locustfile": "locust.py",
        "phases": [{"name": "steady", "duration": "10s", "users": 1, "spawn_rate": 1}],
    },
}


def _load(tmp_path: Path, **extra: Any) -> Any:
    (tmp_path / "locust.py").write_text("# users\n")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({**copy.deepcopy(SCENARIO), **extra}, sort_keys=False))
    return load_scenario(path)


def test_fault_lease_defaults_to_ten_seconds_and_takes_a_duration(tmp_path: Path) -> None:
    assert _load(tmp_path).fault_lease == 10.0
    assert _load(tmp_path, fault_lease="1m").fault_lease == 60.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2s", 'fault_lease: expected a duration from 3s to 1h, got "2s"'),
        ("2h", 'fault_lease: expected a duration from 3s to 1h, got "2h"'),
        ("soon", "fault_lease: "),
    ],
)
def test_a_fault_lease_out_of_bounds_is_one_line(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(BadInputError) as caught:
        _load(tmp_path, fault_lease=value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
