"""The live metrics of a run, as Prometheus / OpenMetrics families: what the master's endpoint
serves during ``harness run --metrics-port``, ``harness gameday`` and ``harness capacity``.

Pure Python (no Locust, no gevent): :class:`LiveTotals` sums the very buckets the run store took
(the master hands it each shipment after the store accepted it), so the counters here and the
store's totals are one truth, not two counts that could drift. :class:`RunMetrics` is a
``prometheus_client`` custom collector: it reads those totals, and the latest :class:`LiveState`
(phase, faults, guards, SLOs: built by the run layer, :mod:`harness.run.live_metrics`), at
scrape time; ``prometheus_client`` writes the exposition (text 0.0.4 or OpenMetrics, as the
scraper asks).

The latency histogram is classic (``le`` buckets): its bounds are edges of the recorder's own
log buckets (:mod:`harness.record.histogram`), one in every :data:`LATENCY_EDGE_STEP` (a factor
1.02^12 = 1.27 between bounds, 0.13 ms to 60 s), so each cumulative count is exact: no recorder
bucket straddles a bound. Its ``_sum`` is the recorder's estimate (each bucket's midpoint times
its count, within 1%): the recorder keeps no exact sum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from harness.record.buckets import BUCKETS_PER_SECOND, Bucket
from harness.record.histogram import GAMMA, MIN_VALUE, bucket_value

__all__ = [
    "GUARD_STATES",
    "LATENCY_BOUNDS",
    "SLO_STATES",
    "CheckGauge",
    "FaultGauge",
    "LiveState",
    "LiveTotals",
    "RunMetrics",
    "exported_names",
]

# Every 12th edge of the recorder's buckets: bucket index k ends at MIN_VALUE * GAMMA**k.
LATENCY_EDGE_STEP: Final = 12
_EDGES: Final = tuple(range(LATENCY_EDGE_STEP, 673, LATENCY_EDGE_STEP))  # up to 60.2 s
LATENCY_BOUNDS: Final = tuple(MIN_VALUE * GAMMA**k for k in _EDGES)

# The window of the share gauges, and how old a bucket must be to count (workers ship once a
# second: the newest second is still filling). The verdict's guards settle as long.
RATIO_WINDOW_S: Final = 10.0
SETTLE_S: Final = 1.0
# How much of the recent past the totals keep as buckets, for the windows (the SLOs' is 30 s).
KEEP_S: Final = 60.0

GUARD_STATES: Final = ("ok", "holding", "breached", "no_data")
SLO_STATES: Final = ("pass", "fail", "no_data", "n_a", "not_now", "at_end")


def status_class(code: int) -> str:
    """``2xx`` .. ``5xx``; ``none`` for no response (a connection error or a timeout)."""
    return "none" if code == 0 else f"{code // 100}xx"


class LiveTotals:
    """The sums of every bucket the run store took, and the recent buckets for the windows.
    Fed from one greenlet (the master's shipment handler), read by the scrapes."""

    def __init__(self, *, keep_s: float = KEEP_S) -> None:
        # Every count a bucket has, summed over the whole run (its idx means nothing here).
        self.total = Bucket(0)
        self._keep = round(keep_s * BUCKETS_PER_SECOND)
        self._recent: dict[int, Bucket] = {}

    def add(self, buckets: Iterable[Mapping[str, object]]) -> None:
        """Serialized buckets, as shipped, after the store accepted them (so well formed)."""
        for data in buckets:
            bucket = Bucket.from_dict(data)
            self.total.add_counts(bucket)
            held = self._recent.get(bucket.idx)
            if held is None:
                self._recent[bucket.idx] = bucket
            else:
                held.merge(bucket)  # a late part of a bucket already here
        if len(self._recent) > 2 * self._keep:
            floor = max(self._recent) - self._keep
            for idx in [i for i in self._recent if i < floor]:
                del self._recent[idx]

    def recent(self, now: float, seconds: float, *, settle_s: float = SETTLE_S) -> list[Bucket]:
        """The buckets of the ``seconds`` before ``now - settle_s``, oldest first."""
        hi = math.floor((now - settle_s) * BUCKETS_PER_SECOND)
        lo = hi - round(seconds * BUCKETS_PER_SECOND)
        return [self._recent[i] for i in range(lo, hi) if i in self._recent]


@dataclass(frozen=True)
class FaultGauge:
    name: str
    action: str
    source: str  # "scheduled" (the scenario's timeline) or "manual" (injected by hand)
    active: bool


@dataclass(frozen=True)
class CheckGauge:
    """A guard's or an SLO's live value (None: nothing to measure now) and state."""

    name: str
    metric: str  # the metric's kind (ratio, percentile, ...), for a dashboard to pick
    expression: str
    value: float | None
    threshold: float
    state: str


@dataclass(frozen=True)
class LiveState:
    """What the run layer knows besides the buckets, as of its last refresh."""

    phases: tuple[str, ...] = ()
    phase: str | None = None
    elapsed_s: float | None = None
    users: int = 0
    users_target: int | None = None
    planned_rate: float | None = None  # arrivals/s of the open model's phase; None if closed
    finished: bool = False  # the load is over and every final shipment is in
    faults: tuple[FaultGauge, ...] = ()
    guards: tuple[CheckGauge, ...] = ()
    slos: tuple[CheckGauge, ...] = ()
    at: float = field(default_factory=time.time)


class RunMetrics(Collector):
    """The run's families, read at scrape time from ``totals`` and ``state()``."""

    def __init__(
        self,
        totals: LiveTotals,
        state: Callable[[], LiveState],
        *,
        clock: Callable[[], float] = time.time,
        ratio_window_s: float = RATIO_WINDOW_S,
    ) -> None:
        self._totals = totals
        self._state = state
        self._clock = clock
        self._window_s = ratio_window_s

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield self._latency()
        yield from self._window()
        yield from self._live(self._state())

    def _counters(self) -> Iterator[Metric]:
        t = self._totals.total
        responses = CounterMetricFamily(
            "harness_responses",
            "Attempts by outcome: HTTP status code, 0 (class none) for no response.",
            labels=["class", "code"],
        )
        for code in sorted(t.statuses):
            responses.add_metric([status_class(code), str(code)], t.statuses[code])
        yield responses
        for name, doc, value in (
            ("harness_attempts", "HTTP attempts started (every retry is one).", t.attempts),
            ("harness_retries", "Attempts that were a retry (attempt number > 1).", t.retries),
            ("harness_requests", "Logical requests done (their last attempt).", t.done),
            ("harness_requests_failed", "Logical requests that ended without success.", t.failed),
            (
                "harness_responses_503_retry_after",
                "503 responses that carried Retry-After.",
                t.retry_after_503,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)

    def _latency(self) -> Metric:
        counts = self._totals.total.latency.counts
        cumulative = []
        seen = 0
        indexes = sorted(counts)
        i = 0
        for edge, bound in zip(_EDGES, LATENCY_BOUNDS, strict=True):
            # Recorder bucket k holds [MIN * GAMMA**(k-1), MIN * GAMMA**k): those up to the
            # edge's index are below the bound (bucket 0: below MIN_VALUE).
            while i < len(indexes) and indexes[i] <= edge:
                seen += counts[indexes[i]]
                i += 1
            cumulative.append((_bound_text(bound), seen))
        cumulative.append(("+Inf", self._totals.total.latency.count))
        estimate = math.fsum(bucket_value(k) * n for k, n in counts.items())
        return HistogramMetricFamily(
            "harness_latency_seconds",
            "Attempt latency, errors included; bounds are edges of the recorder's log buckets, "
            "the sum its midpoint estimate.",
            buckets=cumulative,
            sum_value=estimate,
        )

    def _window(self) -> Iterator[Metric]:
        now = self._clock()
        window = self._totals.recent(now, self._window_s)
        last = self._totals.recent(now, 1.0)
        attempts = sum(b.attempts for b in window)
        shed = sum(b.statuses.get(503, 0) for b in window)
        marked = sum(b.retry_after_503 for b in window)
        done = sum(b.done for b in window)
        span = f"over the last {self._window_s:g} s of settled buckets"
        yield _gauge(
            "harness_503_ratio", f"Share of attempts answered 503, {span}.", attempts, shed
        )
        yield _gauge(
            "harness_retry_after_ratio",
            f"Share of 503 responses that carried Retry-After, {span}.",
            shed,
            marked,
        )
        yield _gauge(
            "harness_retry_amplification_ratio",
            f"Attempts per logical request done, {span}.",
            done,
            attempts,
        )
        yield GaugeMetricFamily(
            "harness_offered_requests_per_second",
            "Attempts started per second (the load offered), over the last settled second.",
            value=sum(b.attempts for b in last),
        )

    def _live(self, state: LiveState) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "harness_users",
            "Locust users running now (in the closed model each has at most one request in "
            "flight: the bound of the requests in flight).",
            value=state.users,
        )
        target = GaugeMetricFamily(
            "harness_users_target", "Users the current phase asks for.", labels=[]
        )
        if state.users_target is not None:
            target.add_metric([], state.users_target)
        yield target
        planned = GaugeMetricFamily(
            "harness_planned_requests_per_second",
            "Arrivals per second the open model's current phase offers.",
            labels=[],
        )
        if state.planned_rate is not None:
            planned.add_metric([], state.planned_rate)
        yield planned
        phase = GaugeMetricFamily(
            "harness_phase", "1 for the phase playing now, 0 for the others.", labels=["phase"]
        )
        for name in state.phases:
            phase.add_metric([name], 1.0 if name == state.phase else 0.0)
        yield phase
        elapsed = GaugeMetricFamily(
            "harness_load_elapsed_seconds", "Seconds since the load's clock started.", labels=[]
        )
        if state.elapsed_s is not None:
            elapsed.add_metric([], state.elapsed_s)
        yield elapsed
        yield GaugeMetricFamily(
            "harness_load_finished",
            "1 once the load is over and every worker's final shipment is in: the counters are "
            "final.",
            value=1.0 if state.finished else 0.0,
        )
        faults = GaugeMetricFamily(
            "harness_fault_active",
            "1 while the fault may be in force, else 0; source scheduled or manual.",
            labels=["name", "action", "source"],
        )
        for fault in state.faults:
            faults.add_metric([fault.name, fault.action, fault.source], float(fault.active))
        yield faults
        yield from _checks("guard", "the guard", state.guards, GUARD_STATES)
        yield from _checks("slo", "the live SLO", state.slos, SLO_STATES)


def _checks(
    kind: str, what: str, checks: Iterable[CheckGauge], states: tuple[str, ...]
) -> Iterator[Metric]:
    # The expression too: a dashboard picks the thresholds of one measure by it (the 503 share
    # is a "ratio" like any other share).
    labels = [kind, "metric", "expr"]
    value = GaugeMetricFamily(
        f"harness_{kind}_value", f"What {what} measures now (its threshold's units).", labels=labels
    )
    threshold = GaugeMetricFamily(
        f"harness_{kind}_threshold", f"The threshold of {what}.", labels=labels
    )
    state = GaugeMetricFamily(
        f"harness_{kind}_state",
        f"1 for the state {what} is in now ({', '.join(states)}), 0 for the others.",
        labels=[kind, "state"],
    )
    for check in checks:
        if check.value is not None:
            value.add_metric([check.name, check.metric, check.expression], check.value)
        threshold.add_metric([check.name, check.metric, check.expression], check.threshold)
        for name in states:
            state.add_metric([check.name, name], 1.0 if name == check.state else 0.0)
    yield value
    yield threshold
    yield state


def _gauge(name: str, doc: str, whole: int, part: int) -> GaugeMetricFamily:
    """A share, without a sample when there is nothing to share (no made-up 0)."""
    family = GaugeMetricFamily(name, doc, labels=[])
    if whole:
        family.add_metric([], part / whole)
    return family


def _bound_text(bound: float) -> str:
    # Six significant digits name the bound (the edge itself is irrational): the cumulative
    # count is the recorder's below its true edge, which differs from this text by < 1e-6.
    return f"{bound:.6g}"


def exported_names() -> frozenset[str]:
    """Every sample name the endpoint can serve (``harness_responses_total``,
    ``harness_latency_seconds_bucket``, ...), from the collector itself."""
    names: set[str] = set()
    for family in RunMetrics(LiveTotals(), LiveState).collect():
        if family.type == "counter":
            names.update({f"{family.name}_total"})
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return frozenset(names)
