"""The SLO parser under near-valid input: whatever the text, a parsed expression that prints to
text parsing back to the same check, or one line of BadInputError; never another exception.

``test_verdict_language.py`` already feeds it arbitrary text and soups of grammar tokens; these
start from the documented examples and break them a little (a character inserted, deleted or
replaced, a token swapped for another of the grammar's or an extreme number), so the deep paths
(units, percentiles, fault metrics, windows, guards) are reached with values just off the edge.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.errors import BadInputError
from harness.verdict.language import parse_guard, parse_slo
from harness.verdict.model import GuardExpr, SloExpr

from .fuzz_budget import examples

pytestmark = pytest.mark.unit

SLOS = [
    "ratio(status == 503) < 5% during phase spike",
    "count(status == 500) == 0",
    "p99(latency) < 300ms during phase warmup",
    "p99.9(latency) <= 1m30s",
    "recovery_time(kill-app-1) < 10s",
    "recovery_time(kill-app-1, baseline warmup) < 10s",
    "ratio(retry_after, where status == 503) >= 99%",
    "retry_amplification during slow-db < 1.5",
    "retry_after_compliance >= 99%",
    "availability >= 99.5% during fault slow-db",
    "p95(latency) < 1s during fault kill-app-1 + 10s",
    "ratio(status >= 500 and (status != 503 or status < 5xx), where status > 0) < 1%",
    "count(status == 0) == 0 during phase warmup",
    "backoff_growth >= 1.5",
    "jitter_spread > 0.1",
    "attempt_cap_respected(4) == 100%",
    "time_to_first_impact(kill-app-1) > 0s",
    "failed_requests(kill-app-1) < 500",
]
GUARDS = [
    "abort if ratio(status >= 500) > 50% for 15s",
    "abort if p99(latency) > 2s for 500ms",
    "abort if count(status == 0) > 100 for 1m",
    "abort if availability < 90% for 10s",
]
# Tokens of the grammar and values at the edges: huge, tiny, non-ASCII digits and letters,
# units that are almost units, percentiles out of range.
TOKENS = [
    *"()<>=!,+%.-",
    "==",
    "!=",
    "<=",
    ">=",
    "status",
    "where",
    "baseline",
    "latency",
    "retry_after",
    "during",
    "phase",
    "fault",
    "and",
    "or",
    "abort",
    "if",
    "for",
    "5xx",
    "9xx",
    "0xx",
    "600",
    "999",
    "0",
    "00",
    "1e400",
    "9" * 400,
    "9" * 40 + "h",
    "9" * 320 + "%",
    "1" + "0" * 310 + "ms",
    "0.000000000001s",
    "1.5.5",
    "1..5",
    ".5",
    "5.",
    "1m30",
    "1h1m1s1ms",
    "1µs",
    "10sec",
    "%%",
    "p0",
    "p100",
    "p100.0001",
    "p9999999999999999999999",
    "p99." + "9" * 30,
    "attempt_cap_respected(0)",
    "attempt_cap_respected(" + "9" * 30 + ")",
    "٣",
    "²",
    "ﬁ",
    "é",
    "\x00",
    "\t",
    "\u2028",
    "kill-app-1",
    "a" * 60,
]
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=3)
FUZZ = settings(
    max_examples=examples(400),  # a quarter of it outside CI (fuzz_budget.py)
    deadline=None,
    derandomize=True,  # the same examples in CI every time
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_SPLIT = re.compile(r"(\s+|[()<>=!,+])")


@st.composite
def mutated(draw: st.DrawFn, base: list[str]) -> str:
    """One of ``base``, broken one to three times at the character or the token level."""
    text = draw(st.sampled_from(base))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["insert", "delete", "replace", "token", "duplicate"]))
        if how == "token":
            pieces = [p for p in _SPLIT.split(text) if p]
            i = draw(st.integers(0, len(pieces) - 1))
            pieces[i] = draw(st.sampled_from(TOKENS))
            text = "".join(pieces)
            continue
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 6)))
        if how == "insert":
            text = text[:i] + draw(st.one_of(TEXT, st.sampled_from(TOKENS))) + text[i:]
        elif how == "delete":
            text = text[:i] + text[j:]
        elif how == "replace":
            text = text[:i] + draw(TEXT) + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


def _slo_or_bad_input(text: str) -> SloExpr | None:
    try:
        return parse_slo(text, where="slos[0]")
    except BadInputError as exc:  # anything else fails the test with its traceback
        _one_line(str(exc), "slos[0]: ")
        return None


def _guard_or_bad_input(text: str) -> GuardExpr | None:
    try:
        return parse_guard(text, where="guards[0]")
    except BadInputError as exc:
        _one_line(str(exc), "guards[0]: ")
        return None


def _one_line(message: str, prefix: str) -> None:
    assert message.startswith(prefix)
    assert len(message.splitlines()) == 1
    assert "Traceback" not in message


def _same_threshold(a: float, b: float) -> bool:
    # The printed form rounds to 6 significant digits (``:g``), like the terminal table.
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-12)


@pytest.mark.parametrize("text", SLOS)
def test_the_fuzz_bases_are_valid_slos(text: str) -> None:
    assert _slo_or_bad_input(text) is not None


@pytest.mark.parametrize("text", GUARDS)
def test_the_fuzz_bases_are_valid_guards(text: str) -> None:
    assert _guard_or_bad_input(text) is not None


@FUZZ
@given(text=mutated(SLOS))
@example(text="p99(latency) < " + "9" * 40 + "h")
@example(text="attempt_cap_respected(" + "9" * 30 + ") == 100%")
@example(text="p" + "9" * 30 + "(latency) < 1s")
def test_a_broken_slo_parses_to_a_check_or_fails_as_bad_input(text: str) -> None:
    slo = _slo_or_bad_input(text)
    if slo is None:
        return
    assert math.isfinite(slo.threshold.value)
    # What parsed prints as an SLO that parses back to the same check.
    again = parse_slo(str(slo))
    assert type(again.metric) is type(slo.metric)
    assert again.comparator == slo.comparator
    assert again.window == slo.window
    assert _same_threshold(again.threshold.value, slo.threshold.value)


@FUZZ
@given(text=mutated(GUARDS))
@example(text="abort if ratio(status >= 500) > 50% for " + "9" * 40 + "h")
def test_a_broken_guard_parses_to_a_guard_or_fails_as_bad_input(text: str) -> None:
    guard = _guard_or_bad_input(text)
    if guard is None:
        return
    assert math.isfinite(guard.threshold.value)
    assert math.isfinite(guard.hold_s)
    assert guard.hold_s > 0


@FUZZ
@given(text=mutated(SLOS + GUARDS))
def test_each_parser_refuses_the_others_broken_input_as_bad_input(text: str) -> None:
    _slo_or_bad_input(text)
    _guard_or_bad_input(text)
