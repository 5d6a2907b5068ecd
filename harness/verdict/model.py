"""What an SLO or a guard says, once parsed: frozen dataclasses, nothing else.

:mod:`harness.verdict.language` builds these from text; the evaluators read them. Every node
prints back as canonical text (``str(node)``), which is what messages and reports show.

Values are held in base units: shares as fractions (``5%`` is ``0.05``), durations in seconds,
counts and plain numbers as written. :class:`Quantity` remembers the unit the user wrote, so a
verdict can be shown in it again.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, TypeAlias

from harness.verdict.units import written

__all__ = [
    "COMPARATORS",
    "WHOLE_RUN",
    "AllOf",
    "AnyOf",
    "AttemptCapRespected",
    "Availability",
    "BackoffGrowth",
    "CheckValue",
    "Comparator",
    "Count",
    "FaultMetric",
    "GuardExpr",
    "JitterSpread",
    "Metric",
    "NoDataPolicy",
    "Percentile",
    "Predicate",
    "Quantity",
    "Ratio",
    "RequestCount",
    "RetryAfterCompliance",
    "RetryAfterShare",
    "RetryAmplification",
    "SloExpr",
    "StatusTest",
    "UnitKind",
    "Window",
    "compare",
]

Comparator: TypeAlias = Literal["==", "!=", "<", "<=", ">", ">="]
COMPARATORS: Final[tuple[Comparator, ...]] = ("==", "!=", "<", "<=", ">", ">=")

# Which kind of threshold a metric takes: a share (written with %), a duration (with a unit) or
# a plain number (no unit). The parser refuses the others, so "< 5" is never silently 500%.
UnitKind: TypeAlias = Literal["share", "duration", "number"]

# What an SLO whose metric had nothing to measure (no traffic in its window) comes to: the
# scenario's ``no_data`` (per SLO, or for all of them). Not applicable is another thing: see
# :data:`harness.verdict.metrics.Missing`.
NoDataPolicy: TypeAlias = Literal["pass", "fail"]

# Shares and latencies are sums and quotients of floats: two ways of computing "7.5%" may differ
# in the last bit. A relative slack this small cannot turn a real difference into equality.
_REL_TOL: Final = 1e-9
_ABS_TOL: Final = 1e-12


_INT_OPS: Final[dict[str, Callable[[int, int], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(observed: float, op: Comparator, threshold: float) -> bool:
    """``observed op threshold``, with equality tolerant of float rounding (see _REL_TOL)."""
    equal = math.isclose(observed, threshold, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
    if op == "==":
        return equal
    if op == "!=":
        return not equal
    if op == "<":
        return observed < threshold and not equal
    if op == "<=":
        return observed < threshold or equal
    if op == ">":
        return observed > threshold and not equal
    return observed > threshold or equal


@dataclass(frozen=True)
class Quantity:
    """A threshold: ``value`` in base units, ``unit`` as written (``%``, ``ms``, ``s``, ``m``,
    ``h`` or empty; a compound duration like ``1m30s`` is shown in ``s``)."""

    value: float
    unit: str = ""

    def __str__(self) -> str:
        return written(self.value, self.unit)


# --- predicates on the status code -------------------------------------------------------------


@dataclass(frozen=True)
class StatusTest:
    """``status <op> <code>``, or ``status <op> <N>xx`` for a class (``is_class``, ``code`` is
    ``N * 100``). A class is the range ``N00..N99``: ``== 5xx`` is inside it, ``!=`` outside,
    ``< 5xx`` below it, ``<= 5xx`` up to its top, ``> 5xx`` above it, ``>= 5xx`` from its bottom.
    Status 0 means no response (connection error or timeout)."""

    op: Comparator
    code: int
    is_class: bool = False

    def matches(self, status: int) -> bool:
        if not self.is_class:
            return _INT_OPS[self.op](status, self.code)
        low, high = self.code, self.code + 99
        inside = low <= status <= high
        return {
            "==": inside,
            "!=": not inside,
            "<": status < low,
            "<=": status <= high,
            ">": status > high,
            ">=": status >= low,
        }[self.op]

    def __str__(self) -> str:
        value = f"{self.code // 100}xx" if self.is_class else str(self.code)
        return f"status {self.op} {value}"


@dataclass(frozen=True)
class AllOf:
    """Every part matches (``and``)."""

    parts: tuple[Predicate, ...]

    def matches(self, status: int) -> bool:
        return all(part.matches(status) for part in self.parts)

    def __str__(self) -> str:
        return " and ".join(f"({p})" if isinstance(p, AnyOf) else str(p) for p in self.parts)


@dataclass(frozen=True)
class AnyOf:
    """Some part matches (``or``)."""

    parts: tuple[Predicate, ...]

    def matches(self, status: int) -> bool:
        return any(part.matches(status) for part in self.parts)

    def __str__(self) -> str:
        return " or ".join(str(p) for p in self.parts)


Predicate: TypeAlias = StatusTest | AllOf | AnyOf


# --- metrics -----------------------------------------------------------------------------------
#
# ``unit_kind`` says what threshold a metric takes; ``per_bucket`` that it is computed from the
# buckets alone (so a guard, which sees only buckets as they arrive, may use it).


@dataclass(frozen=True)
class Ratio:
    """``ratio(pred)``: responses matching ÷ responses; with ``where``, both sides restricted to
    the responses matching ``where``. Status 0 (no response) counts as a response."""

    predicate: Predicate
    where: Predicate | None = None
    unit_kind: ClassVar[UnitKind] = "share"
    per_bucket: ClassVar[bool] = True

    def __str__(self) -> str:
        where = f", where {self.where}" if self.where is not None else ""
        return f"ratio({self.predicate}{where})"


@dataclass(frozen=True)
class RetryAfterShare:
    """``ratio(retry_after, where status == 503)``: 503s carrying Retry-After ÷ 503s."""

    unit_kind: ClassVar[UnitKind] = "share"
    per_bucket: ClassVar[bool] = True

    def __str__(self) -> str:
        return "ratio(retry_after, where status == 503)"


@dataclass(frozen=True)
class Count:
    """``count(pred)``: responses matching (and matching ``where``, when given)."""

    predicate: Predicate
    where: Predicate | None = None
    unit_kind: ClassVar[UnitKind] = "number"
    per_bucket: ClassVar[bool] = True

    def __str__(self) -> str:
        where = f", where {self.where}" if self.where is not None else ""
        return f"count({self.predicate}{where})"


@dataclass(frozen=True)
class Percentile:
    """``pN(latency)``: the N-th percentile of attempt latency (nearest rank, ~1% precision)."""

    q: float
    unit_kind: ClassVar[UnitKind] = "duration"
    per_bucket: ClassVar[bool] = True

    def __str__(self) -> str:
        return f"p{self.q:g}(latency)"


@dataclass(frozen=True)
class Availability:
    """``availability``: 1 - (no response or 5xx) ÷ responses."""

    unit_kind: ClassVar[UnitKind] = "share"
    per_bucket: ClassVar[bool] = True

    def __str__(self) -> str:
        return "availability"


@dataclass(frozen=True)
class RetryAmplification:
    """``retry_amplification``: attempts ÷ logical requests done."""

    unit_kind: ClassVar[UnitKind] = "number"
    per_bucket: ClassVar[bool] = True

    def __str__(self) -> str:
        return "retry_amplification"


@dataclass(frozen=True)
class RetryAfterCompliance:
    """``retry_after_compliance``: share of retries sent no earlier than the Retry-After of the
    response they follow, counted from when that response arrived."""

    unit_kind: ClassVar[UnitKind] = "share"
    per_bucket: ClassVar[bool] = False

    def __str__(self) -> str:
        return "retry_after_compliance"


@dataclass(frozen=True)
class BackoffGrowth:
    """``backoff_growth``: median ratio of successive waits within one logical request."""

    unit_kind: ClassVar[UnitKind] = "number"
    per_bucket: ClassVar[bool] = False

    def __str__(self) -> str:
        return "backoff_growth"


@dataclass(frozen=True)
class JitterSpread:
    """``jitter_spread``: coefficient of variation of the waits before first retries."""

    unit_kind: ClassVar[UnitKind] = "number"
    per_bucket: ClassVar[bool] = False

    def __str__(self) -> str:
        return "jitter_spread"


@dataclass(frozen=True)
class AttemptCapRespected:
    """``attempt_cap_respected[(N)]``: share of logical requests that used at most N attempts;
    without N, the cap the run recorded (meta ``max_attempts``)."""

    cap: int | None = None
    unit_kind: ClassVar[UnitKind] = "share"
    per_bucket: ClassVar[bool] = False

    def __str__(self) -> str:
        return "attempt_cap_respected" + (f"({self.cap})" if self.cap is not None else "")


FaultMetricKind: TypeAlias = Literal["recovery_time", "time_to_first_impact", "failed_requests"]


@dataclass(frozen=True)
class FaultMetric:
    """``recovery_time(F)``, ``time_to_first_impact(F)`` or ``failed_requests(F)``, against the
    baseline of phase ``baseline`` (the first phase when None). See :mod:`~.recovery`."""

    kind: FaultMetricKind
    fault: str
    baseline: str | None = None
    per_bucket: ClassVar[bool] = False

    @property
    def unit_kind(self) -> UnitKind:
        return "number" if self.kind == "failed_requests" else "duration"

    def __str__(self) -> str:
        baseline = f", baseline {self.baseline}" if self.baseline is not None else ""
        return f"{self.kind}({self.fault}{baseline})"


@dataclass(frozen=True)
class RequestCount:
    """``count(P, where name == "N")``: responses to requests Locust named ``N`` (every attempt)
    whose status matches P (and ``where``); ``requests(P[, where ...])``: logical requests whose
    last attempt's status matches (a retried request counts once, by how it ended). Read from the
    run's per-name totals, which have no time: whole run only, never in a guard."""

    predicate: Predicate
    request_name: str | None = None
    where: Predicate | None = None
    logical: bool = False
    unit_kind: ClassVar[UnitKind] = "number"
    per_bucket: ClassVar[bool] = False

    def __str__(self) -> str:
        parts = [str(p) for p in (self.where,) if p is not None]
        if self.request_name is not None:
            parts.insert(0, f'name == "{self.request_name}"')
        where = f", where {' and '.join(parts)}" if parts else ""
        return f"{'requests' if self.logical else 'count'}({self.predicate}{where})"


CheckStage: TypeAlias = Literal["after", "before", "delta"]


@dataclass(frozen=True)
class CheckValue:
    """``check(NAME[, before|delta])``: a post-run check's reading after the run (the default),
    before the load, or the difference. See :mod:`harness.integrity`."""

    check: str
    stage: CheckStage = "after"
    unit_kind: ClassVar[UnitKind] = "number"
    per_bucket: ClassVar[bool] = False

    def __str__(self) -> str:
        stage = f", {self.stage}" if self.stage != "after" else ""
        return f"check({self.check}{stage})"


Metric: TypeAlias = (
    Ratio
    | RetryAfterShare
    | Count
    | Percentile
    | Availability
    | RetryAmplification
    | RetryAfterCompliance
    | BackoffGrowth
    | JitterSpread
    | AttemptCapRespected
    | FaultMetric
    | RequestCount
    | CheckValue
)


# --- windows and whole expressions -------------------------------------------------------------

WindowKind: TypeAlias = Literal["run", "phase", "fault", "either"]


@dataclass(frozen=True)
class Window:
    """The stretch of the run an SLO looks at. ``either`` is ``during NAME`` without saying
    ``phase`` or ``fault``: the name decides (:func:`~.language.check_names` refuses a name that
    is both). ``after_s`` extends a fault's window past its revert (``during fault F + 10s``)."""

    kind: WindowKind = "run"
    name: str = ""
    after_s: float = 0.0

    @property
    def label(self) -> str:
        if self.kind == "run":
            return "whole run"
        base = self.name if self.kind == "either" else f"{self.kind} {self.name}"
        if self.after_s:
            return f"{base} + {written(self.after_s, 's')}"
        return base

    def __str__(self) -> str:
        return "" if self.kind == "run" else f"during {self.label}"


WHOLE_RUN: Final = Window()


@dataclass(frozen=True)
class SloExpr:
    """A parsed SLO: ``metric comparator threshold`` over ``window``."""

    name: str
    text: str
    metric: Metric
    comparator: Comparator
    threshold: Quantity
    window: Window = WHOLE_RUN
    # Compared with another metric instead of a number (``check(orders, delta) == requests(...)``):
    # the threshold is then that metric's value in the same run, ``threshold`` a placeholder.
    against: Metric | None = None
    no_data: NoDataPolicy = "fail"
    # ``over any 10s``: judged on its worst sliding window of this many seconds inside
    # ``window`` (sliding in 100 ms buckets), not on the stretch as a whole. None: as a whole.
    over_s: float | None = None

    @property
    def slide_label(self) -> str:
        """``any 10s of phase spike``, ``any 10s`` (whole run), or the window's own label."""
        if self.over_s is None:
            return self.window.label
        length = f"any {written(self.over_s, 's')}"
        return length if self.window.kind == "run" else f"{length} of {self.window.label}"

    def __str__(self) -> str:
        window = f" {self.window}" if self.window.kind != "run" else ""
        other = self.against if self.against is not None else self.threshold
        slide = f" over any {written(self.over_s, 's')}" if self.over_s is not None else ""
        return f"{self.metric} {self.comparator} {other}{slide}{window}"


@dataclass(frozen=True)
class GuardExpr:
    """A parsed guard: abort once ``metric comparator threshold`` held for ``hold_s``."""

    name: str
    text: str
    metric: Metric
    comparator: Comparator
    threshold: Quantity
    hold_s: float

    def __str__(self) -> str:
        hold = written(self.hold_s, "s")
        return f"abort if {self.metric} {self.comparator} {self.threshold} for {hold}"
