"""``GET /metrics``: Toxiproxy 2.12.0's ``-proxy-metrics`` and ``-runtime-metrics``, both servers.

Facts from the v2.12.0 sources (``metrics.go``, ``collectors/``, ``link.go``) and its binary:

* Without either flag the path does not exist: a plain ``404 page not found``.
* ``-proxy-metrics``: counters ``toxiproxy_proxy_received_bytes_total`` and
  ``toxiproxy_proxy_sent_bytes_total``, empty help, labels ``direction``, ``listener`` (the bound
  address), ``proxy``, ``upstream`` (as configured). No sample before a connection has used a
  label set; samples stay after the proxy is deleted.
* ``-runtime-metrics``: Go's runtime and process collectors (``go_*``, ``process_*``).
* Either flag: ``promhttp_metric_handler_errors_total{cause}``; the text format 0.0.4 whatever
  ``Accept`` says; browsers refused (403) as on every route.

Divergences, each asserted below rather than skipped:

1. Runtime metrics: the embedded server is Python, so it has no ``go_*`` names (not faked); it
   exports ``python_info`` and ``python_gc_*`` instead, and every ``process_*`` name the real
   server has, with the same type. The e2e script's ``^go_info`` and ``^go_goroutines`` checks are
   replayed against it as ``^python_info`` and ``^process_``.
2. The real server adds a link's bytes once its copy ends; the embedded one counts per chunk, so
   its counters also move while a connection is open. Once a connection has ended both hold the
   same totals, which is what these tests compare.
3. Values print as Python floats (``1000.0`` where Go prints ``1000``): the same number to any
   Prometheus parser.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, closing
from typing import NoReturn

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from harness.proxy.launcher import (
    Kind,
    Metrics,
    RunningToxiproxy,
    running_toxiproxy,
)

from .conftest import SERVER_KINDS, skip_unless_found
from .http_api import Api
from .http_upstream import HttpUpstream
from .upstreams import Upstreams
from .wire import End, read_to_end, recv_exactly, split_address

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(120)]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
BYTE_COUNTERS = ("toxiproxy_proxy_received_bytes", "toxiproxy_proxy_sent_bytes")
PROXY_LABELS = {"direction", "listener", "proxy", "upstream"}
HANDLER_ERRORS = "promhttp_metric_handler_errors"
# Every process_* family Toxiproxy 2.12.0 exports on Linux (read off its binary), by type.
PROCESS_FAMILIES = {
    "process_cpu_seconds": "counter",
    "process_max_fds": "gauge",
    "process_network_receive_bytes": "counter",
    "process_network_transmit_bytes": "counter",
    "process_open_fds": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_virtual_memory_max_bytes": "gauge",
}
# The runtime lines of scripts/test-e2e, and what the embedded server answers for them.
E2E_RUNTIME_CHECKS = {
    "real": ["^go_info", "^go_goroutines"],
    "embedded": ["^python_info", "^process_"],
}
# How long a finished connection may take to show in the real server's counters (it adds them
# when its copy goroutines end): a wait with a deadline, not a timing assertion.
SETTLE_S = 10.0


def _start(
    kind: Kind,
    metrics: tuple[Metrics, ...],
    tmp_path_factory: pytest.TempPathFactory,
    require_or_skip: Callable[[str, str], NoReturn],
    stack: ExitStack,
) -> RunningToxiproxy:
    skip_unless_found(kind, require_or_skip)
    log_file = tmp_path_factory.mktemp(f"toxiproxy-{kind}-metrics") / "server.log"
    running = stack.enter_context(running_toxiproxy(kind=kind, log_file=log_file, metrics=metrics))
    assert running.kind == kind
    return running


@pytest.fixture(scope="module", params=SERVER_KINDS, ids=SERVER_KINDS)
def toxiproxy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    require_or_skip: Callable[[str, str], NoReturn],
) -> Iterator[RunningToxiproxy]:
    """Overrides the suite's server for this module: one started with both metrics flags."""
    with ExitStack() as stack:
        yield _start(request.param, ("proxy", "runtime"), tmp_path_factory, require_or_skip, stack)


@pytest.fixture(scope="module")  # the suite's client, for this module's server
def _api_client(toxiproxy: RunningToxiproxy) -> Iterator[Api]:
    with closing(Api(toxiproxy.api_url)) as client:
        yield client


def scrape(api: Api) -> dict[str, Metric]:
    response = api.request("GET", "/metrics")
    assert response.status_code == 200, response.text
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def byte_counts(api: Api, proxy: str) -> dict[tuple[str, str], float]:
    """``(metric, direction)`` -> value, for one proxy's samples."""
    families = scrape(api)
    return {
        (name, sample.labels["direction"]): sample.value
        for name in BYTE_COUNTERS
        if name in families
        for sample in families[name].samples
        if sample.labels.get("proxy") == proxy
    }


def wait_for_counts(api: Api, proxy: str, expected: Mapping[tuple[str, str], float]) -> None:
    deadline = time.monotonic() + SETTLE_S
    while (counts := byte_counts(api, proxy)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts == expected


def echo_through(listen: str, payload: bytes) -> None:
    """Send ``payload`` to an echo upstream through the proxy, read it back, close, see EOF."""
    with socket.create_connection(split_address(listen), timeout=5.0) as sock:
        for start in range(0, len(payload), 16384):
            sock.sendall(payload[start : start + 16384])
            # Read as we go so that neither side's buffers fill up.
            got = recv_exactly(sock, len(payload[start : start + 16384]))
            assert got == payload[start : start + 16384]
        sock.shutdown(socket.SHUT_WR)
        assert read_to_end(sock, 5.0) == (b"", End.EOF)


# -- the exposition ---------------------------------------------------------------------------


def test_metrics_are_text_format_0_0_4_even_when_openmetrics_is_asked_for(api: Api) -> None:
    for accept in (None, "application/openmetrics-text; version=1.0.0"):
        headers = {"Accept": accept} if accept else {}
        response = api.request("GET", "/metrics", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == CONTENT_TYPE
        assert "X-Toxiproxy-Request-Id" in response.headers


def test_metrics_answer_any_method(api: Api) -> None:
    response = api.request("POST", "/metrics")
    assert response.status_code == 200
    assert HANDLER_ERRORS in {f.name for f in text_string_to_metric_families(response.text)}


def test_browsers_are_refused_on_metrics_as_on_every_route(api: Api) -> None:
    response = api.request("GET", "/metrics", headers={"User-Agent": "Mozilla/5.0"})
    assert (response.status_code, response.text) == (403, "User agent not allowed\n")


def test_handler_error_counter_has_both_causes_at_zero(api: Api) -> None:
    family = scrape(api)[HANDLER_ERRORS]
    assert family.type == "counter"
    assert {s.labels["cause"]: s.value for s in family.samples} == {
        "encoding": 0,
        "gathering": 0,
    }


# -- proxy metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 65536 * 3 + 7])
def test_byte_counters_equal_the_bytes_pushed_each_way(
    api: Api, upstreams: Upstreams, size: int
) -> None:
    echo = upstreams.echo()
    upstream = f"localhost:{split_address(echo.address)[1]}"  # kept verbatim in the label
    name = f"bytes_{size}"
    listen = api.create_proxy(name, upstream)["listen"]
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    echo_through(listen, payload)
    expected = {(metric, d): size for metric in BYTE_COUNTERS for d in ("upstream", "downstream")}
    wait_for_counts(api, name, expected)

    families = scrape(api)
    for metric in BYTE_COUNTERS:
        family = families[metric]
        assert (family.type, family.documentation) == ("counter", "")
        for sample in family.samples:
            assert sample.name == f"{metric}_total"
            assert set(sample.labels) == PROXY_LABELS
        mine = [s.labels for s in family.samples if s.labels["proxy"] == name]
        assert sorted(mine, key=lambda labels: labels["direction"]) == [
            {"direction": d, "listener": listen, "proxy": name, "upstream": upstream}
            for d in ("downstream", "upstream")
        ]


def test_byte_counters_add_up_over_connections_and_outlive_the_proxy(
    api: Api, upstreams: Upstreams
) -> None:
    echo = upstreams.echo()
    listen = api.create_proxy("outlive", echo.address)["listen"]
    for size in (100, 2000, 30000):
        echo_through(listen, b"a" * size)
    expected = {(m, d): 32100 for m in BYTE_COUNTERS for d in ("upstream", "downstream")}
    wait_for_counts(api, "outlive", expected)
    api.delete_proxy("outlive")
    assert byte_counts(api, "outlive") == expected


def test_bytes_a_toxic_holds_back_are_received_but_not_sent(api: Api, upstreams: Upstreams) -> None:
    """limit_data at 100 bytes, 150 sent upstream: the upstream link received 150 and sent 100,
    then closed the upstream; nothing came back downstream."""
    sink = upstreams.sink()
    listen = api.create_proxy("limited", sink.address)["listen"]
    api.add_toxic("limited", "limit_data", stream="upstream", attributes={"bytes": 100})
    with socket.create_connection(split_address(listen), timeout=5.0) as sock:
        sock.sendall(b"b" * 150)
        peer = sink.next_peer()
        assert peer.wait_for_end(5.0) is not None
        assert peer.data == b"b" * 100
        assert read_to_end(sock, 5.0)[1] in (End.EOF, End.RESET)
    expected = {(m, "downstream"): 0 for m in BYTE_COUNTERS}
    expected |= {("toxiproxy_proxy_received_bytes", "upstream"): 150}
    expected |= {("toxiproxy_proxy_sent_bytes", "upstream"): 100}
    wait_for_counts(api, "limited", expected)


# -- runtime metrics ----------------------------------------------------------------------------


def test_runtime_metrics_have_every_process_family_of_the_real_server(
    api: Api, toxiproxy: RunningToxiproxy
) -> None:
    families = scrape(api)
    assert {n: families[n].type for n in PROCESS_FAMILIES if n in families} == PROCESS_FAMILIES
    assert families["process_start_time_seconds"].samples[0].value > 1e9
    go_names = {n for n in families if n.startswith("go_")}
    if toxiproxy.kind == "real":
        assert {"go_info", "go_goroutines", "go_build_info"} <= go_names
    else:
        # Divergence 1: Python runtime metrics, and no Go name faked.
        assert go_names == set()
        assert families["python_info"].type == "gauge"
        assert families["python_gc_collections"].type == "counter"


# -- flags off and one at a time ----------------------------------------------------------------


@pytest.mark.parametrize(
    "metrics", [(), ("proxy",), ("runtime",)], ids=["no-flags", "proxy-only", "runtime-only"]
)
def test_each_flag_turns_on_its_own_families(
    toxiproxy: RunningToxiproxy,
    upstreams: Upstreams,
    tmp_path_factory: pytest.TempPathFactory,
    require_or_skip: Callable[[str, str], NoReturn],
    metrics: tuple[Metrics, ...],
) -> None:
    with ExitStack() as stack:
        server = _start(toxiproxy.kind, metrics, tmp_path_factory, require_or_skip, stack)
        api = stack.enter_context(_closing(Api(server.api_url)))
        response = api.request("GET", "/metrics")
        if not metrics:
            assert (response.status_code, response.text) == (404, "404 page not found\n")
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            return
        before = set(scrape(api))
        # A fresh server: no byte counter before a connection.
        assert not before & set(BYTE_COUNTERS)
        assert HANDLER_ERRORS in before
        if metrics == ("proxy",):
            assert before == {HANDLER_ERRORS}
        else:
            assert set(PROCESS_FAMILIES) <= before

        listen = api.create_proxy("one_flag", upstreams.echo().address)["listen"]
        echo_through(listen, b"c" * 500)
        if metrics == ("proxy",):
            wait_for_counts(
                api,
                "one_flag",
                {(m, d): 500 for m in BYTE_COUNTERS for d in ("upstream", "downstream")},
            )
        else:
            time.sleep(0.5)  # the real server would count by now; it must not count at all
            assert not set(scrape(api)) & set(BYTE_COUNTERS)


class _closing:
    def __init__(self, api: Api) -> None:
        self.api = api

    def __enter__(self) -> Api:
        return self.api

    def __exit__(self, *exc: object) -> None:
        self.api.close()


# -- scripts/test-e2e, the "Metrics test" section ------------------------------------------------


def test_replay_of_the_e2e_scripts_metrics_checks(api: Api, toxiproxy: RunningToxiproxy) -> None:
    """The proxy steps of Toxiproxy's scripts/test-e2e through the API (create with ``localhost``
    addresses, toggle twice, each toxic added, updated and deleted), one HTTP request through the
    proxy, then its three ``grep -E`` lines on ``GET /metrics``."""
    with HttpUpstream() as web:
        upstream = f"localhost:{split_address(web.address)[1]}"
        listen = api.create_proxy("shopify_http", upstream, listen="localhost:0")["listen"]
        assert listen.startswith("127.0.0.1:")
        for enabled in (False, True):
            api.update_proxy("shopify_http", enabled=enabled)
        steps = [
            ("latency_downstream", "latency", "downstream", {"latency": 1000, "jitter": 50}, 0.99),
            ("latency_upstream", "latency", "upstream", {"latency": 1000, "jitter": 50}, 1.0),
            ("bandwidth_kb_per_second", "bandwidth", "downstream", {"rate": 1}, 0.5),
            ("timeout_ms", "timeout", "downstream", {"timeout": 10}, 0.1),
            ("slicer_us", "slicer", "downstream", {"average_size": 64, "size_variation": 32}, 1.0),
            ("reset_peer", "reset_peer", "downstream", {"timeout": 2000}, 1.0),
        ]
        for name, type_, stream, attributes, toxicity in steps:
            api.add_toxic(
                "shopify_http",
                type_,
                name=name,
                stream=stream,
                attributes=attributes,
                toxicity=toxicity,
            )
            api.update_toxic("shopify_http", name, toxicity=1.0)
            api.remove_toxic("shopify_http", name)

        # wait_for_url http://localhost:20000/test1
        with socket.create_connection(split_address(listen), timeout=5.0) as sock:
            sock.sendall(b"GET /test1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer, end = read_to_end(sock, 5.0)
        assert answer.startswith(b"HTTP/1.1 200")
        assert end == End.EOF

    sent = re.compile(
        r'^toxiproxy_proxy_sent_bytes_total\{direction="downstream",'
        rf'listener="{re.escape(listen)}",proxy="shopify_http",'
        rf'upstream="{re.escape(upstream)}"\}} [0-9]+',
        re.MULTILINE,
    )
    deadline = time.monotonic() + SETTLE_S
    while not sent.search(text := api.request("GET", "/metrics").text):
        assert time.monotonic() < deadline, f"no line matches {sent.pattern!r} in:\n{text}"
        time.sleep(0.05)
    for pattern in E2E_RUNTIME_CHECKS[toxiproxy.kind]:
        assert re.search(pattern, text, re.MULTILINE), pattern
