"""``GET /metrics`` of the embedded server: Toxiproxy 2.12.0's metrics, by prometheus_client.

The real server serves ``/metrics`` only when started with ``-proxy-metrics`` or
``-runtime-metrics`` (else the path is an unknown one: a plain 404), in the Prometheus text format
0.0.4 whatever the ``Accept`` header asks. The same names, types, labels and (empty) help:

* ``-proxy-metrics``: counters ``toxiproxy_proxy_received_bytes_total`` (bytes a link read from
  its source) and ``toxiproxy_proxy_sent_bytes_total`` (bytes it wrote to its destination), with
  the labels ``direction`` (``upstream``: client to server, ``downstream``: back), ``listener``
  (the proxy's bound address), ``proxy`` and ``upstream``. A label set appears with the first
  connection that has it and stays after its proxy is deleted, like a Go ``CounterVec``.
* ``-runtime-metrics``: the real server exports Go's runtime (``go_*``) and process
  (``process_*``) collectors. This server is Python: it exports prometheus_client's process,
  platform and gc collectors (``process_*``, ``python_info``, ``python_gc_*``) plus the three
  ``process_*`` names Go has and prometheus_client lacks. ``go_*`` names are not faked.
* with either flag: ``promhttp_metric_handler_errors_total{cause}``, as Go's promhttp adds it.

Counting must cost the copy loop nothing worth measuring: each link adds the length of a chunk to a
plain int on a shared :class:`ByteMeter`, and :class:`ProxyByteCounters` reads the meters at
scrape time. The real server adds a link's total once its copy ends; here the counters move while
a connection is open (the totals are the same once it ends).
"""

from __future__ import annotations

import resource
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = [
    "CONTENT_TYPE",
    "PROXY_LABELS",
    "RECEIVED_BYTES",
    "SENT_BYTES",
    "ByteMeter",
    "ProxyByteCounters",
    "ServerMetrics",
]

RECEIVED_BYTES = "toxiproxy_proxy_received_bytes_total"
SENT_BYTES = "toxiproxy_proxy_sent_bytes_total"
# In the order Go's exposition prints them (sorted by name); scrapers that grep rely on it.
PROXY_LABELS = ("direction", "listener", "proxy", "upstream")
# What the real server answers, byte for byte.
CONTENT_TYPE = f"{CONTENT_TYPE_PLAIN_0_0_4}; escaping=underscores"
_HANDLER_ERRORS = "promhttp_metric_handler_errors"
_HANDLER_ERRORS_HELP = "Total number of internal errors encountered by the promhttp metric handler."


class ByteMeter:
    """Bytes read from the source and written to the destination by the links of one label set.

    Plain ints on purpose: the copy loop adds to them per chunk; only a scrape reads them.
    """

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


class ProxyByteCounters(Collector):
    """The ``toxiproxy_proxy_*_bytes_total`` counters, read from the links' meters at scrape time.

    Disabled (no ``--proxy-metrics``), every meter handed out is a fresh one nobody reads, so the
    links count the same way either way and the hot path has no branch.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._meters: dict[tuple[str, str, str, str], ByteMeter] = {}

    def meter(self, direction: str, proxy: str, listener: str, upstream: str) -> ByteMeter:
        if not self.enabled:
            return ByteMeter()
        key = (direction, listener, proxy, upstream)  # the order of PROXY_LABELS
        found = self._meters.get(key)
        if found is None:
            found = self._meters[key] = ByteMeter()
        return found

    def describe(self) -> Iterable[Metric]:
        return ()  # nothing to check at registration; collect() is only for scrapes

    def collect(self) -> Iterable[Metric]:
        if not self._meters:
            return  # like a Go CounterVec with no child: the family is not printed at all
        received = CounterMetricFamily(RECEIVED_BYTES, "", labels=PROXY_LABELS)
        sent = CounterMetricFamily(SENT_BYTES, "", labels=PROXY_LABELS)
        for key in sorted(self._meters):  # Go sorts samples by label values
            meter = self._meters[key]
            received.add_metric(key, meter.received)
            sent.add_metric(key, meter.sent)
        yield received
        yield sent


class ProcessExtrasCollector(Collector):
    """The ``process_*`` names Go's process collector has and prometheus_client's lacks, read
    the same way (Linux ``/proc``, ``RLIMIT_AS``); a value that cannot be read is left out."""

    def __init__(self, proc: Path = Path("/proc/self")) -> None:
        self.proc = proc

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        octets = _ip_octets(self.proc / "net" / "netstat")
        if octets is not None:
            received, sent = octets
            yield CounterMetricFamily(
                "process_network_receive_bytes",
                "Number of bytes received by the process over the network.",
                value=received,
            )
            yield CounterMetricFamily(
                "process_network_transmit_bytes",
                "Number of bytes sent by the process over the network.",
                value=sent,
            )
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        # Go reports an unlimited RLIMIT_AS as the largest uint64, as the kernel stores it.
        limit = 2**64 - 1 if soft == resource.RLIM_INFINITY else soft
        yield GaugeMetricFamily(
            "process_virtual_memory_max_bytes",
            "Maximum amount of virtual memory available in bytes.",
            value=float(limit),
        )


def _ip_octets(netstat: Path) -> tuple[int, int] | None:
    """``IpExt: InOctets, OutOctets`` of the process's network namespace, as Go's procfs reads."""
    try:
        lines = netstat.read_text().splitlines()
    except OSError:
        return None
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if not header.startswith("IpExt:"):
            continue
        fields = dict(zip(header.split()[1:], values.split()[1:], strict=False))
        try:
            return int(fields["InOctets"]), int(fields["OutOctets"])
        except (KeyError, ValueError):
            return None
    return None


class _HandlerErrors(Collector):
    """``promhttp_metric_handler_errors_total{cause}``: scrapes that failed, by cause."""

    def __init__(self) -> None:
        self.counts = {"encoding": 0, "gathering": 0}

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(_HANDLER_ERRORS, _HANDLER_ERRORS_HELP, labels=("cause",))
        for cause, count in sorted(self.counts.items()):
            family.add_metric((cause,), count)
        yield family


class _ByName(Collector):
    """A registry's families sorted by exposed name, the order Go's promhttp prints them in."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        def exposed(family: Metric) -> str:
            return f"{family.name}_total" if family.type == "counter" else family.name

        return sorted(self.registry.collect(), key=exposed)


class ServerMetrics:
    """The metrics of one server: its own registry (never prometheus_client's global one)."""

    def __init__(self, *, proxy_metrics: bool = False, runtime_metrics: bool = False) -> None:
        self.proxy_metrics = proxy_metrics
        self.runtime_metrics = runtime_metrics
        self.bytes = ProxyByteCounters(enabled=proxy_metrics)
        self.registry = CollectorRegistry(auto_describe=False)
        self._errors = _HandlerErrors()
        if runtime_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
            self.registry.register(ProcessExtrasCollector())
        if proxy_metrics:
            self.registry.register(self.bytes)
        if self.enabled:
            self.registry.register(self._errors)

    @property
    def enabled(self) -> bool:
        """Whether ``/metrics`` exists at all (the real server: either flag)."""
        return self.proxy_metrics or self.runtime_metrics

    def exposition(self) -> bytes:
        """The text format 0.0.4 body of a scrape; a failing collector counts as ``gathering``."""
        try:
            return generate_latest(_ByName(self.registry))
        except Exception:
            self._errors.counts["gathering"] += 1
            raise
