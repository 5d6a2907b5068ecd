"""The embedded Toxiproxy's ``/metrics`` pieces: the byte counters, the runtime extras, the
registry per server, the route, the flags; and the copy loop's counts against known truth, on a
real in-process server (the conformance suite checks the same against the real Toxiproxy)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from harness.cli.app import cli
from harness.proxy.api import build_app
from harness.proxy.launcher import _command
from harness.proxy.metrics import (
    RECEIVED_BYTES,
    SENT_BYTES,
    ProcessExtrasCollector,
    ProxyByteCounters,
    ServerMetrics,
    _ip_octets,
)
from harness.proxy.proxy import ProxyCollection
from harness.proxy.server import running_server
from harness.proxy.toxics import ToxicConfig

LABELS = ("p1", "127.0.0.1:20000", "localhost:20002")  # proxy, listener, upstream


def families(metrics: ServerMetrics) -> dict[str, Metric]:
    text = metrics.exposition().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


# -- byte counters ------------------------------------------------------------------------------


def test_links_with_the_same_labels_share_one_meter() -> None:
    counters = ProxyByteCounters(enabled=True)
    a = counters.meter("upstream", *LABELS)
    assert counters.meter("upstream", *LABELS) is a
    assert counters.meter("downstream", *LABELS) is not a


def test_disabled_counters_hand_out_meters_nobody_reads() -> None:
    counters = ProxyByteCounters(enabled=False)
    meter = counters.meter("upstream", *LABELS)
    meter.sent += 10
    assert counters.meter("upstream", *LABELS) is not meter
    assert list(counters.collect()) == []


def test_no_family_is_printed_before_a_connection_used_a_label_set() -> None:
    metrics = ServerMetrics(proxy_metrics=True)
    assert metrics.exposition().decode().count("toxiproxy_") == 0


def test_exposition_lines_are_those_the_real_servers_e2e_script_greps_for() -> None:
    metrics = ServerMetrics(proxy_metrics=True)
    metrics.bytes.meter("downstream", *LABELS).sent += 1234
    metrics.bytes.meter("upstream", *LABELS).received += 99
    text = metrics.exposition().decode()
    # scripts/test-e2e: ^toxiproxy_proxy_sent_bytes_total{direction="downstream",listener=...
    assert (
        'toxiproxy_proxy_sent_bytes_total{direction="downstream",listener="127.0.0.1:20000",'
        'proxy="p1",upstream="localhost:20002"} 1234.0\n'
    ) in text
    assert (
        "# HELP toxiproxy_proxy_sent_bytes_total \n# TYPE toxiproxy_proxy_sent_bytes_total" in text
    )
    found = families(metrics)
    received = {
        s.labels["direction"]: s.value for s in found["toxiproxy_proxy_received_bytes"].samples
    }
    assert received == {"downstream": 0, "upstream": 99}


def test_samples_and_families_come_sorted_like_gos_exposition() -> None:
    metrics = ServerMetrics(proxy_metrics=True, runtime_metrics=True)
    for proxy in ("zeta", "alpha"):
        for direction in ("upstream", "downstream"):
            metrics.bytes.meter(direction, proxy, "127.0.0.1:1", "u:2").sent += 1
    found = families(metrics)
    names = [f"{n}_total" if f.type == "counter" else n for n, f in found.items()]
    assert names == sorted(names)
    keys = [
        (s.labels["direction"], s.labels["proxy"])
        for s in found["toxiproxy_proxy_sent_bytes"].samples
    ]
    assert keys == sorted(keys)


# -- one registry per server --------------------------------------------------------------------


def test_each_server_has_its_own_registry_and_never_the_global_one() -> None:
    global_names = {f.name for f in REGISTRY.collect()}
    first = ServerMetrics(proxy_metrics=True, runtime_metrics=True)
    second = ServerMetrics(proxy_metrics=True, runtime_metrics=True)
    first.bytes.meter("upstream", *LABELS).sent += 5
    assert first.registry is not REGISTRY
    assert "toxiproxy_proxy_sent_bytes" in families(first)
    assert "toxiproxy_proxy_sent_bytes" not in families(second)
    assert {f.name for f in REGISTRY.collect()} == global_names


@pytest.mark.parametrize(
    ("proxy", "runtime", "expected"),
    [
        (False, False, set()),
        (True, False, {"promhttp_metric_handler_errors"}),
        (False, True, {"promhttp_metric_handler_errors", "process_cpu_seconds", "python_info"}),
    ],
)
def test_each_flag_registers_its_own_families(
    proxy: bool, runtime: bool, expected: set[str]
) -> None:
    metrics = ServerMetrics(proxy_metrics=proxy, runtime_metrics=runtime)
    assert metrics.enabled == (proxy or runtime)
    metrics.bytes.meter("upstream", *LABELS).sent += 1
    found = set(families(metrics))
    assert expected <= found
    assert ("toxiproxy_proxy_sent_bytes" in found) == proxy
    assert not {n for n in found if n.startswith("go_")}


class _Broken(Collector):
    def collect(self) -> Iterable[Metric]:
        raise RuntimeError("collector bug")


def test_a_failing_scrape_counts_as_a_gathering_error() -> None:
    metrics = ServerMetrics(proxy_metrics=True)
    broken = _Broken()
    metrics.registry.register(broken)
    with pytest.raises(RuntimeError):
        metrics.exposition()
    metrics.registry.unregister(broken)
    errors = families(metrics)["promhttp_metric_handler_errors"]
    assert {s.labels["cause"]: s.value for s in errors.samples} == {"encoding": 0, "gathering": 1}


# -- runtime extras -----------------------------------------------------------------------------

NETSTAT = """\
TcpExt: SyncookiesSent SyncookiesRecv
TcpExt: 0 0
IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InOctets OutOctets
IpExt: 0 0 3 4 123456 654321
"""


def test_network_bytes_are_read_from_the_ipext_octets(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "netstat").write_text(NETSTAT)
    assert _ip_octets(tmp_path / "net" / "netstat") == (123456, 654321)
    collected = {m.name: m.samples[0].value for m in ProcessExtrasCollector(tmp_path).collect()}
    assert collected["process_network_receive_bytes"] == 123456
    assert collected["process_network_transmit_bytes"] == 654321
    assert collected["process_virtual_memory_max_bytes"] > 0


def test_unreadable_network_bytes_are_left_out(tmp_path: Path) -> None:
    assert _ip_octets(tmp_path / "missing") is None
    (tmp_path / "netstat").write_text("IpExt: InOctets\nIpExt: lots\n")
    assert _ip_octets(tmp_path / "netstat") is None
    names = {m.name for m in ProcessExtrasCollector(tmp_path).collect()}
    assert names == {"process_virtual_memory_max_bytes"}


# -- wiring: route, launcher, CLI ---------------------------------------------------------------


def _paths(collection: ProxyCollection) -> set[str]:
    return {r.resource.canonical for r in build_app(collection).router.routes() if r.resource}


def test_metrics_route_exists_only_with_a_flag() -> None:
    assert "/metrics" not in _paths(ProxyCollection("127.0.0.1"))
    with_flag = ProxyCollection("127.0.0.1", metrics=ServerMetrics(runtime_metrics=True))
    assert "/metrics" in _paths(with_flag)


def test_launcher_passes_each_servers_own_flag_spelling() -> None:
    real = _command("real", Path("/bin/server"), "127.0.0.1", 1, None, ("proxy", "runtime"))
    assert real[-2:] == ["-proxy-metrics", "-runtime-metrics"]
    embedded = _command("embedded", None, "127.0.0.1", 1, None, ("runtime",))
    assert embedded[-1] == "--runtime-metrics"
    assert "-metrics" not in " ".join(_command("embedded", None, "127.0.0.1", 1, None))


def test_serve_documents_both_flags_with_their_environment_variables() -> None:
    result = CliRunner().invoke(cli, ["proxy", "serve", "--help"])
    assert result.exit_code == 0
    for flag in ("proxy", "runtime"):
        assert f"--{flag}-metrics" in result.output
        assert f"HARNESS_PROXY_SERVE_{flag.upper()}_METRICS" in result.output


# -- the copy loop against known truth ------------------------------------------------------------


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _push(port: int, size: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"m" * size
    writer.write(payload)
    await writer.drain()
    assert await reader.readexactly(size) == payload
    writer.write_eof()
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def _counts_after_pushing(sizes: list[int], *, toxic: bool) -> dict[tuple[str, str], float]:
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    up_port = upstream.sockets[0].getsockname()[1]
    metrics = ServerMetrics(proxy_metrics=True)
    try:
        async with running_server("127.0.0.1", 0, metrics=metrics) as (collection, _):
            proxy = collection.new_proxy("known", "127.0.0.1:0", f"127.0.0.1:{up_port}")
            await collection.add(proxy, start=True)
            if toxic:  # an active stage takes every chunk off the fast path
                for stream in ("upstream", "downstream"):
                    config = ToxicConfig(
                        f"lat_{stream}", "latency", stream, 1.0, {"latency": 1, "jitter": 0}
                    )
                    proxy.add_toxic(config)
            port = int(proxy.listen.rsplit(":", 1)[1])
            for size in sizes:
                await _push(port, size)
            while proxy.connections:  # the last close reaches the proxy a moment later
                await asyncio.sleep(0.01)
            found = families(metrics)
    finally:
        upstream.close()
        await upstream.wait_closed()
    return {
        (name, s.labels["direction"]): s.value
        for name in ("toxiproxy_proxy_received_bytes", "toxiproxy_proxy_sent_bytes")
        for s in found[name].samples
    }


@pytest.mark.parametrize("toxic", [False, True], ids=["fast-path", "through-a-toxic"])
def test_counters_equal_the_bytes_pushed_through_each_way(toxic: bool) -> None:
    sizes = [1, 70_000, 1_000_003]
    counts = asyncio.run(_counts_after_pushing(sizes, toxic=toxic))
    total = sum(sizes)
    assert counts == {
        (name, direction): total
        for name in ("toxiproxy_proxy_received_bytes", "toxiproxy_proxy_sent_bytes")
        for direction in ("upstream", "downstream")
    }
    assert (RECEIVED_BYTES, SENT_BYTES) == (
        "toxiproxy_proxy_received_bytes_total",
        "toxiproxy_proxy_sent_bytes_total",
    )


def test_generate_latest_of_an_empty_server_is_empty() -> None:
    assert generate_latest(ServerMetrics().registry) == b""
