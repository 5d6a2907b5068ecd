"""The SLO and guard language: a lark grammar, and its parse into :mod:`~.model` dataclasses.

An SLO is ``METRIC [WINDOW] COMPARATOR VALUE [WINDOW]`` (one window at most, before or after
the comparison); a guard is ``abort if METRIC COMPARATOR VALUE for DURATION``::

    ratio(status == 503) < 5% during phase spike
    count(status == 500) == 0
    p99(latency) < 300ms during phase warmup
    ratio(retry_after, where status == 503) >= 99%
    retry_amplification during slow-db < 1.5
    availability >= 99.5% during fault slow-db
    p95(latency) < 1s during fault kill-app-1 + 10s
    ratio(status == 503) < 5% over any 10s
    p99(latency) < 300ms over any 5s during phase spike
    recovery_time(kill-app-1) < 10s
    recovery_time(kill-app-1, baseline warmup) < 10s
    attempt_cap_respected(4) == 100%
    abort if ratio(status >= 500) > 50% for 15s

Metrics: ``ratio(P[, where P])``, ``count(P[, where P])``, ``pN(latency)`` (``p99``, ``p99.9``),
``availability``, ``retry_amplification``, ``ratio(retry_after, where status == 503)``,
``retry_after_compliance``, ``backoff_growth``, ``jitter_spread``, ``attempt_cap_respected[(N)]``,
and per fault ``recovery_time(F)``, ``time_to_first_impact(F)``, ``failed_requests(F)``, each
optionally ``, baseline PHASE``. Predicates ``P``: ``status OP CODE`` with ``OP`` one of
``== != < <= > >=`` and ``CODE`` a number (0 = no response) or a class (``5xx``), combined with
``and``, ``or`` and parentheses. Windows: the whole run (no window), ``during phase NAME``,
``during fault NAME`` (from its injection to its revert), ``during fault NAME + 10s`` (and 10 s
after), or ``during NAME`` when the name is a phase or a fault but not both. ``over any 10s``
judges the worst 10 s inside that stretch instead of the stretch as a whole: every window of
that length, sliding in 100 ms buckets, for the metrics the buckets alone give; "worst" is the
highest value for ``<``/``<=`` and the lowest for ``>``/``>=``.

Values carry their unit and the metric decides which: shares take ``%`` (so ``< 5`` is never
silently 500%), durations ``ms``/``s``/``m``/``h`` (or ``1m30s``), counts and ratios like
amplification a bare number.

Every mistake is a one-line :class:`~harness.errors.BadInputError` that names where the expression
came from, says what is wrong, the column, and shows the text with ``<<here>>`` at that column::

    slos[2]: unexpected "%" at column 24, expected a number: ratio(status == 503) < <<here>>%

The parse knows nothing of the scenario: the names of phases and faults are checked against it
by :mod:`harness.verdict.checks`.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Final, NoReturn, cast

from lark import Token, Tree

from harness.durations import DurationError, parse_duration
from harness.record.buckets import BUCKETS_PER_SECOND
from harness.verdict.grammar import (
    MAX_LENGTH,
    as_token,
    as_tree,
    error_at,
    only_tree,
    parse_tree,
    position,
)
from harness.verdict.model import (
    AllOf,
    AnyOf,
    AttemptCapRespected,
    Availability,
    BackoffGrowth,
    CheckStage,
    CheckValue,
    Comparator,
    Count,
    FaultMetric,
    FaultMetricKind,
    GuardExpr,
    JitterSpread,
    Metric,
    Percentile,
    Predicate,
    Quantity,
    Ratio,
    RequestCount,
    RetryAfterCompliance,
    RetryAfterShare,
    RetryAmplification,
    SloExpr,
    StatusTest,
    Window,
    WindowKind,
)
from harness.verdict.units import DURATION_UNITS

__all__ = ["MAX_LENGTH", "METRIC_NAMES", "parse_guard", "parse_slo"]

_PLAIN_METRICS: Final[dict[str, Metric]] = {
    "availability": Availability(),
    "retry_amplification": RetryAmplification(),
    "retry_after_compliance": RetryAfterCompliance(),
    "backoff_growth": BackoffGrowth(),
    "jitter_spread": JitterSpread(),
}
_FAULT_METRICS: Final = ("recovery_time", "time_to_first_impact", "failed_requests")
METRIC_NAMES: Final = (
    "ratio",
    "count",
    "p50",
    "p90",
    "p95",
    "p99",
    *_PLAIN_METRICS,
    "attempt_cap_respected",
    *_FAULT_METRICS,
    "requests",
    "check",
)
_CHECK_STAGES: Final = ("before", "after", "delta")
_PERCENTILE: Final = re.compile(r"p([0-9]+(?:\.[0-9]+)?)")
_QUANTITY: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)", re.DOTALL)

# --- entry points ------------------------------------------------------------------------------


def parse_slo(text: str, *, name: str | None = None, where: str = "slo") -> SloExpr:
    """Parse one SLO. ``where`` starts every error message (``slos[2]``); ``name`` defaults to
    the text itself. Raises :class:`BadInputError`, and nothing else, for any input."""
    tree = parse_tree(text, "slo", where)
    return _Builder(text, where).slo(tree, name if name is not None else text.strip())


def parse_guard(text: str, *, name: str | None = None, where: str = "guard") -> GuardExpr:
    """Parse one guard (``abort if ... for 15s``); see :func:`parse_slo`."""
    tree = parse_tree(text, "guard", where)
    return _Builder(text, where).guard(tree, name if name is not None else text.strip())


# --- from the tree to the model ----------------------------------------------------------------


class _Builder:
    """Turns a parse tree into model dataclasses, checking what the grammar cannot: metric
    names, their arguments, units. Errors point at the offending token's column."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where

    def fail(self, token: Token | Tree[Token], message: str, hint: str = "") -> NoReturn:
        raise error_at(self.text, self.where, position(token), message, hint)

    def fail_at_keyword(
        self, tree: Tree[Token], keyword: str, message: str, hint: str = ""
    ) -> NoReturn:
        """Point at the keyword that opens ``tree`` (the parse keeps no token for it)."""
        at = self.text.rfind(keyword, 0, position(tree))
        raise error_at(self.text, self.where, max(at, 0), message, hint)

    # --- top level --------------------------------------------------------------------------

    def slo(self, tree: Tree[Token], name: str) -> SloExpr:
        metric_tree, *rest = tree.children
        metric_tree = as_tree(metric_tree)
        windows = [c for c in rest if isinstance(c, Tree) and c.data == "window"]
        slides = [c for c in rest if isinstance(c, Tree) and c.data == "slide"]
        others = [c for c in rest if isinstance(c, Tree) and c.data == "metric"]
        tokens = [child for child in rest if isinstance(child, Token)]
        comparator = tokens[0]
        if len(windows) > 1:
            self.fail_at_keyword(windows[1], "during", "a second window", "one window per SLO")
        metric = self.metric(metric_tree)
        against: Metric | None = None
        if others:
            against = self.metric(others[0])
            threshold = self.comparable(others[0], metric, against)
        else:
            threshold = self.threshold(tokens[1], metric)
        window = self.window(windows[0]) if windows else Window()
        for one, where in ((metric, metric_tree), (against, others[0] if others else None)):
            if isinstance(one, FaultMetric) and window.kind != "run":
                self.fail(
                    windows[0],
                    f"{one.kind} takes no window",
                    "it has its own: from the fault to its recovery",
                )
            if isinstance(one, RequestCount | CheckValue) and window.kind != "run":
                assert where is not None
                self.fail(
                    windows[0],
                    f"{_metric_word(one)} takes no window",
                    "it counts the whole run: the per-name totals and the checks have no time",
                )
        cmp = _comparator(comparator)
        over_s = self.slide(slides, metric, cmp, against) if slides else None
        return SloExpr(name, self.text, metric, cmp, threshold, window, against, over_s=over_s)

    def slide(
        self, slides: list[Tree[Token]], metric: Metric, cmp: Comparator, against: Metric | None
    ) -> float:
        """The length of ``over any N``, checked: one per SLO, a whole number of 100 ms buckets,
        a metric the buckets alone give, and a comparison that says which window is worst."""
        if len(slides) > 1:
            self.fail_at_keyword(
                slides[1], "over", 'a second "over any"', "one sliding window per SLO"
            )
        tree = slides[0]
        token = as_token(tree.children[0])
        seconds = self.duration(token, "over any")
        buckets = seconds * BUCKETS_PER_SECOND
        if buckets < 1 or abs(buckets - round(buckets)) > 1e-6:
            self.fail(token, "a sliding window is a whole number of 100ms buckets", "like 10s")
        if not metric.per_bucket:
            self.fail(
                tree,
                f"{_metric_word(metric)} cannot slide",
                "over any works on ratio, count, pN(latency), availability, "
                "retry_amplification and the Retry-After share",
            )
        if against is not None:
            self.fail(tree, "over any compares with a number", "not with another metric")
        if cmp in ("==", "!="):
            self.fail(
                tree,
                f"over any needs <, <=, > or >=, not {cmp}",
                "the comparison says which window is the worst",
            )
        return round(buckets) / BUCKETS_PER_SECOND

    def comparable(self, tree: Tree[Token], metric: Metric, against: Metric) -> Quantity:
        """The placeholder threshold of ``metric CMP against``: both must take the same unit."""
        if metric.unit_kind != against.unit_kind:
            self.fail(
                tree,
                f"{_metric_word(metric)} and {_metric_word(against)} are not comparable",
                f"one is a {metric.unit_kind}, the other a {against.unit_kind}",
            )
        unit = {"share": "%", "duration": "s"}.get(metric.unit_kind, "")
        return Quantity(0.0, unit)

    def guard(self, tree: Tree[Token], name: str) -> GuardExpr:
        metric_tree = as_tree(tree.children[0])
        comparator, value, hold = (as_token(child) for child in tree.children[1:])
        metric = self.metric(metric_tree)
        if not metric.per_bucket:
            self.fail(
                metric_tree,
                f"a guard cannot use {_metric_word(metric)}",
                "guards see only the buckets as they arrive: use ratio, count, pN(latency), "
                "availability or retry_amplification",
            )
        threshold = self.threshold(value, metric)
        hold_s = self.duration(hold, "for")
        if hold_s <= 0:
            self.fail(hold, "a guard's duration must be longer than 0s", "like for 15s")
        return GuardExpr(name, self.text, metric, _comparator(comparator), threshold, hold_s)

    # --- metrics ------------------------------------------------------------------------------

    def metric(self, tree: Tree[Token]) -> Metric:
        name_token = as_token(tree.children[0])
        args = tree.children[1:]
        name = str(name_token)
        arg_trees = [arg for arg in args if isinstance(arg, Tree)]
        has_parens = len(tree.children) > 1
        if name in ("ratio", "count"):
            return self.counting(name_token, arg_trees)
        percentile = _PERCENTILE.fullmatch(name)
        if percentile:
            return self.percentile(name_token, float(percentile.group(1)), arg_trees)
        if name in _PLAIN_METRICS:
            if has_parens:
                self.fail(arg_trees[0], f"{name} takes no arguments", f"write {name}")
            return _PLAIN_METRICS[name]
        if name == "attempt_cap_respected":
            return self.attempt_cap(arg_trees)
        if name in _FAULT_METRICS:
            return self.fault_metric(name_token, arg_trees)
        if name == "requests":
            return self.counting(name_token, arg_trees)
        if name == "check":
            return self.check_value(name_token, arg_trees)
        close = difflib.get_close_matches(name, METRIC_NAMES, n=1, cutoff=0.6)
        hint = f'did you mean "{close[0]}"?' if close else "known: " + ", ".join(METRIC_NAMES)
        self.fail(name_token, f'unknown metric "{name}"', hint)

    def counting(self, name_token: Token, args: list[Tree[Token]]) -> Metric:
        name = str(name_token)
        usage = f"{name}(status == 503) or {name}(status == 503, where status >= 500)"
        if not args:
            self.fail(name_token, f"{name} needs a predicate on status", f"like {usage}")
        first, *rest = args
        where: Predicate | None = None
        request_name: str | None = None
        seen_where = False
        for extra in rest:
            if extra.data != "arg_where" or seen_where:
                self.fail(extra, f"{name} takes a predicate and one where clause", f"like {usage}")
            seen_where = True
            where, request_name = self.where_clause(only_tree(extra))
        if name == "requests" or request_name is not None:
            if first.data != "arg_pred":
                self.fail(first, f"{name} needs a predicate on status", f"like {usage}")
            return RequestCount(
                self.predicate(only_tree(first)),
                request_name,
                where,
                logical=name == "requests",
            )
        if first.data == "arg_name" and str(first.children[0]) == "retry_after":
            if name != "ratio" or where != StatusTest("==", 503):
                self.fail(
                    first,
                    "Retry-After is counted on 503s only",
                    "write ratio(retry_after, where status == 503)",
                )
            return RetryAfterShare()
        if first.data != "arg_pred":
            self.fail(first, f"{name} needs a predicate on status", f"like {usage}")
        predicate = self.predicate(only_tree(first))
        return Ratio(predicate, where) if name == "ratio" else Count(predicate, where)

    def where_clause(self, tree: Tree[Token]) -> tuple[Predicate | None, str | None]:
        """A where clause: status tests, and at most one ``name == "N"`` joined to them with
        ``and`` at its top level (a name under ``or`` would mix two kinds of count)."""
        conjs = tree.children if tree.data == "pred" else [tree]
        if len(conjs) != 1:
            return self.predicate(tree), None
        conj = as_tree(conjs[0])
        atoms = [as_tree(a) for a in conj.children] if conj.data == "conj" else [conj]
        names = [atom for atom in atoms if atom.data == "name_test"]
        if len(names) > 1:
            self.fail(names[1], "a second request name", 'one name per count: name == "/x"')
        request_name: str | None = None
        if names:
            op, value = (as_token(child) for child in names[0].children)
            if str(op) != "==":
                self.fail(op, "a request name is matched with ==", 'like name == "/checkout"')
            request_name = str(value)[1:-1]
        parts = tuple(self.predicate(atom) for atom in atoms if atom.data != "name_test")
        if not parts:
            return None, request_name
        return (parts[0] if len(parts) == 1 else AllOf(parts)), request_name

    def check_value(self, name_token: Token, args: list[Tree[Token]]) -> Metric:
        usage = "check(orders), check(orders, before) or check(orders, delta)"
        if not args or args[0].data != "arg_name":
            self.fail(args[0] if args else name_token, "check needs a check's name", usage)
        stage = "after"
        if len(args) > 2 or (len(args) == 2 and args[1].data != "arg_name"):
            self.fail(args[-1], "check takes a check's name and a stage", usage)
        if len(args) == 2:
            stage = str(args[1].children[0])
            if stage not in _CHECK_STAGES:
                self.fail(args[1], f'unknown stage "{stage}"', "before, after or delta")
        return CheckValue(str(args[0].children[0]), cast(CheckStage, stage))

    def percentile(self, name_token: Token, q: float, args: list[Tree[Token]]) -> Metric:
        if not 0 <= q <= 100:
            self.fail(name_token, f"percentile {name_token} out of range", "p0 to p100")
        if len(args) != 1 or args[0].data != "arg_name" or str(args[0].children[0]) != "latency":
            self.fail(
                args[0] if args else name_token,
                f"{name_token} is a percentile of latency",
                f"write {name_token}(latency)",
            )
        return Percentile(q)

    def attempt_cap(self, args: list[Tree[Token]]) -> Metric:
        if not args:
            return AttemptCapRespected()
        arg = args[0]
        text = str(arg.children[0]) if arg.data == "arg_name" else ""
        if len(args) > 1 or not text.isdigit() or int(text) < 1:
            self.fail(
                arg,
                "attempt_cap_respected takes the cap",
                "a whole number >= 1, like attempt_cap_respected(4)",
            )
        return AttemptCapRespected(int(text))

    def fault_metric(self, name_token: Token, args: list[Tree[Token]]) -> Metric:
        name = str(name_token)
        usage = f"{name}(kill-app-1) or {name}(kill-app-1, baseline warmup)"
        if not args or args[0].data != "arg_name":
            self.fail(args[0] if args else name_token, f"{name} needs a fault", usage)
        baseline: str | None = None
        for extra in args[1:]:
            if extra.data != "arg_baseline" or baseline is not None:
                self.fail(extra, f"{name} takes a fault and one baseline phase", usage)
            baseline = str(extra.children[0])
        # The caller matched the name against _FAULT_METRICS, the literal type's values.
        return FaultMetric(cast(FaultMetricKind, name), str(args[0].children[0]), baseline)

    # --- predicates -------------------------------------------------------------------------

    def predicate(self, tree: Tree[Token]) -> Predicate:
        if tree.data == "name_test":
            self.fail(
                tree,
                "a request name is tested in a where clause only",
                'like count(status == 2xx, where name == "/checkout")',
            )
        if tree.data == "status_test":
            op, value = (as_token(child) for child in tree.children)
            text = str(value)
            if text.endswith("xx"):
                return StatusTest(_comparator(op), int(text[0]) * 100, is_class=True)
            return StatusTest(_comparator(op), int(text))
        parts = tuple(self.predicate(as_tree(child)) for child in tree.children)
        if len(parts) == 1:
            return parts[0]
        return AnyOf(parts) if tree.data == "pred" else AllOf(parts)

    # --- windows and values -----------------------------------------------------------------

    def window(self, tree: Tree[Token]) -> Window:
        kind = "either"
        name: Token | None = None
        after_s = 0.0
        for child in tree.children:
            if isinstance(child, Tree):  # kind
                kind = str(child.children[0])
            elif child.type == "NAME":
                name = child
            else:
                after_s = self.duration(child, "+")
        assert name is not None
        if kind == "phase" and after_s:
            self.fail(tree, '"+ N" after a phase', "it extends a fault's window only")
        return Window(cast(WindowKind, kind), str(name), after_s)

    def threshold(self, token: Token, metric: Metric) -> Quantity:
        number, unit = self.split(token)
        kind = metric.unit_kind
        word = _metric_word(metric)
        if kind == "share":
            if unit != "%":
                self.fail(token, f"{word} is a share", f"write it with %, like {number:g}%")
            if number > 100:
                self.fail(token, f"{word} is a share", "from 0% to 100%")
            return Quantity(number / 100, "%")
        if kind == "duration":
            return Quantity(self.duration(token, word), _display_unit(unit))
        if unit:
            self.fail(token, f"{word} is a plain number", f'drop the unit "{unit}"')
        return Quantity(number)

    def duration(self, token: Token, what: str) -> float:
        number, unit = self.split(token)
        if not unit:
            self.fail(
                token, f"{what} takes a duration", f"with a unit: {number:g}s or {number:g}ms"
            )
        try:
            seconds = parse_duration(str(token))
        except DurationError:
            self.fail(token, f'bad duration "{token}"', "like 300ms, 10s or 1m30s")
        return seconds

    def split(self, token: Token) -> tuple[float, str]:
        match = _QUANTITY.fullmatch(str(token))
        assert match is not None  # the grammar's QUANTITY is this pattern
        number = float(match.group(1))
        if not math.isfinite(number):
            self.fail(token, "number too large")
        return number, match.group(2)


def _display_unit(unit: str) -> str:
    return unit if unit in DURATION_UNITS else "s"


def _metric_word(metric: Metric) -> str:
    """The metric as messages name it: whole when short, its predicate elided otherwise."""
    if isinstance(metric, Ratio | Count):
        return f"{type(metric).__name__.lower()}(...)"
    if isinstance(metric, RequestCount):
        return "requests(...)" if metric.logical else "count(...)"
    if isinstance(metric, FaultMetric):
        return metric.kind
    return str(metric)


def _comparator(token: Token) -> Comparator:
    text = str(token)
    assert text in ("==", "!=", "<", "<=", ">", ">=")
    return text  # type: ignore[return-value]
