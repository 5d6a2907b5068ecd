"""The SLO language: every documented form parses to the model it means, every mistake is one
line of BadInputError pointing at the column, and nothing else ever escapes the parser."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import BadInputError
from harness.scenario import Scenario, load_scenario, parse_scenario
from harness.verdict.checks import check_names, parse_checks
from harness.verdict.language import parse_guard, parse_slo
from harness.verdict.model import (
    AllOf,
    AnyOf,
    AttemptCapRespected,
    Availability,
    BackoffGrowth,
    Count,
    FaultMetric,
    JitterSpread,
    Percentile,
    Quantity,
    Ratio,
    RetryAfterCompliance,
    RetryAfterShare,
    RetryAmplification,
    StatusTest,
    Window,
)

from .fuzz_budget import examples

pytestmark = pytest.mark.unit

EXAMPLES = [
    "ratio(status == 503) < 5% during phase spike",
    "count(status == 500) == 0",
    "p99(latency) < 300ms during phase warmup",
    "recovery_time(kill-app-1) < 10s",
    "ratio(retry_after, where status == 503) >= 99%",
    "retry_amplification during slow-db < 1.5",
    "retry_after_compliance >= 99%",
    "availability >= 99.5% during fault slow-db",
    "p95(latency) < 1s during fault kill-app-1 + 10s",
    "ratio(status >= 500) < 1%",
    "count(status == 0) == 0 during phase warmup",
    "backoff_growth >= 1.5",
    "jitter_spread > 0.1",
    "attempt_cap_respected == 100%",
    "time_to_first_impact(kill-app-1) > 0s",
    "failed_requests(kill-app-1) < 500",
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_every_documented_example_parses_and_prints_back_to_itself(text: str) -> None:
    slo = parse_slo(text)
    assert slo.text == text
    assert slo.name == text
    # The canonical form puts the window last; apart from that it is the text as written.
    canonical = "retry_amplification < 1.5 during slow-db"
    assert str(slo) == (canonical if text.startswith("retry_amplification") else text)
    assert parse_slo(str(slo)) == parse_slo(str(slo))


@pytest.mark.parametrize(
    ("text", "metric", "threshold", "window"),
    [
        (
            "ratio(status == 503) < 5% during phase spike",
            Ratio(StatusTest("==", 503)),
            Quantity(0.05, "%"),
            Window("phase", "spike"),
        ),
        ("count(status == 500) == 0", Count(StatusTest("==", 500)), Quantity(0), Window()),
        (
            "p99(latency) < 300ms during phase warmup",
            Percentile(99),
            Quantity(0.3, "ms"),
            Window("phase", "warmup"),
        ),
        (
            "recovery_time(kill-app-1) < 10s",
            FaultMetric("recovery_time", "kill-app-1"),
            Quantity(10, "s"),
            Window(),
        ),
        (
            "ratio(retry_after, where status == 503) >= 99%",
            RetryAfterShare(),
            Quantity(0.99, "%"),
            Window(),
        ),
        (
            "retry_amplification during slow-db < 1.5",
            RetryAmplification(),
            Quantity(1.5),
            Window("either", "slow-db"),
        ),
        ("retry_after_compliance >= 99%", RetryAfterCompliance(), Quantity(0.99, "%"), Window()),
        (
            "availability >= 99.5% during fault slow-db",
            Availability(),
            Quantity(0.995, "%"),
            Window("fault", "slow-db"),
        ),
        (
            "p95(latency) < 1s during fault kill-app-1 + 10s",
            Percentile(95),
            Quantity(1, "s"),
            Window("fault", "kill-app-1", 10),
        ),
        ("backoff_growth >= 1.5", BackoffGrowth(), Quantity(1.5), Window()),
        ("jitter_spread > 0.1", JitterSpread(), Quantity(0.1), Window()),
        ("attempt_cap_respected == 100%", AttemptCapRespected(), Quantity(1.0, "%"), Window()),
        ("attempt_cap_respected(4) == 100%", AttemptCapRespected(4), Quantity(1.0, "%"), Window()),
        (
            "time_to_first_impact(kill-app-1) > 0s",
            FaultMetric("time_to_first_impact", "kill-app-1"),
            Quantity(0, "s"),
            Window(),
        ),
        (
            "failed_requests(kill-app-1, baseline warmup) < 500",
            FaultMetric("failed_requests", "kill-app-1", "warmup"),
            Quantity(500),
            Window(),
        ),
        ("p99.9(latency) < 1m30s", Percentile(99.9), Quantity(90, "s"), Window()),
    ],
)
def test_examples_parse_into_the_model_they_mean(
    text: str, metric: object, threshold: Quantity, window: Window
) -> None:
    slo = parse_slo(text)
    assert slo.metric == metric
    assert slo.threshold.unit == threshold.unit
    assert slo.threshold.value == pytest.approx(threshold.value)
    assert slo.window == window


def test_status_predicates_combine_with_and_or_parentheses_and_classes() -> None:
    slo = parse_slo("ratio(status == 5xx and status != 503 or (status == 0 or status == 429)) < 1%")
    assert slo.metric == Ratio(
        AnyOf(
            (
                AllOf((StatusTest("==", 500, is_class=True), StatusTest("!=", 503))),
                AnyOf((StatusTest("==", 0), StatusTest("==", 429))),
            )
        )
    )
    predicate = slo.metric.predicate
    assert [code for code in (0, 200, 429, 500, 502, 503, 599, 600) if predicate.matches(code)] == [
        0,
        429,
        500,
        502,
        599,
    ]


@pytest.mark.parametrize(
    ("op", "inside"),
    [
        ("==", [500, 503, 599]),
        ("!=", [0, 200, 499, 600]),
        ("<", [0, 200, 499]),
        ("<=", [0, 200, 499, 500, 503, 599]),
        (">", [600]),
        (">=", [500, 503, 599, 600]),
    ],
)
def test_a_status_class_is_the_range_of_its_hundred(op: str, inside: list[int]) -> None:
    predicate = parse_slo(f"ratio(status {op} 5xx) < 1%").metric.predicate  # type: ignore[union-attr]
    candidates = [0, 200, 499, 500, 503, 599, 600]
    assert [code for code in candidates if predicate.matches(code)] == inside


def test_the_window_may_come_before_or_after_the_comparison() -> None:
    before = parse_slo("availability during phase spike >= 99%")
    after = parse_slo("availability >= 99% during phase spike")
    assert before.metric == after.metric
    assert before.window == after.window == Window("phase", "spike")


def test_a_guard_parses_with_its_duration() -> None:
    guard = parse_guard("abort if ratio(status >= 500) > 50% for 15s", name="storm")
    assert guard.name == "storm"
    assert guard.metric == Ratio(StatusTest(">=", 500))
    assert guard.comparator == ">"
    assert guard.threshold == Quantity(0.5, "%")
    assert guard.hold_s == 15
    assert str(guard) == "abort if ratio(status >= 500) > 50% for 15s"


# --- mistakes ------------------------------------------------------------------------------------


def _column(message: str) -> int:
    found = re.search(r"at column (\d+)", message)
    assert found, message
    return int(found.group(1))


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("ratio(status == 503) < %", 24, 'unexpected "%"'),
        ("ratio(status == 503) <", 23, "unexpected end"),
        ("ratio(status = 503) < 5%", 14, 'unexpected "="'),
        ("ratio(status == 503 < 5%", 21, 'expected ")", ",", "and" or "or"'),
        ("ratio(status == 5000) < 1%", 17, "status code"),
        ("p99(latency) < 300 ms", 20, "write the unit right after the number: 300ms"),
        ("count(status == 500) == 0 during phase a during phase b", 42, "a second window"),
        ("ratio(status == 503) < 5% during", 33, "unexpected end"),
        ("", 1, "empty expression"),
    ],
)
def test_a_syntax_error_points_at_its_column(text: str, column: int, words: str) -> None:
    with pytest.raises(BadInputError) as caught:
        parse_slo(text, where="slos[2]")
    message = str(caught.value)
    assert message.startswith("slos[2]: ")
    assert words in message
    assert _column(message) == column
    assert "\n" not in message
    # The text is shown with the marker exactly at that column.
    assert message.endswith(f": {text[: column - 1]}<<here>>{text[column - 1 :]}")


def test_an_unknown_metric_suggests_the_closest_one() -> None:
    with pytest.raises(
        BadInputError, match=r'unknown metric "ratoi" at column 1 \(did you mean "ratio"\?\)'
    ):
        parse_slo("ratoi(status == 503) < 5%")
    with pytest.raises(BadInputError, match='did you mean "retry_amplification"'):
        parse_slo("retry_amplifcation < 1.5")
    with pytest.raises(BadInputError, match=r'at column 3 \(did you mean "availability"\?\)'):
        parse_slo("  availabilty >= 99%")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ratio(status == 503) < 5", "write it with %, like 5%"),
        ("availability >= 0.99", "is a share"),
        ("p99(latency) < 300", "with a unit: 300s or 300ms"),
        ("recovery_time(kill-app-1) < 10", "takes a duration"),
        ("count(status == 500) < 3%", 'drop the unit "%"'),
        ("retry_amplification < 150%", "is a plain number"),
        ("p99(latency) < 3x", 'bad duration "3x"'),
        ("p99(status == 500) < 1s", "write p99(latency)"),
        ("p101(latency) < 1s", "out of range"),
        ("ratio(retry_after) > 99%", "write ratio(retry_after, where status == 503)"),
        ("ratio(retry_after, where status == 504) > 99%", "counted on 503s only"),
        ("ratio(kill-app-1) < 1%", "needs a predicate on status"),
        ("ratio(status == 503, status == 504) < 1%", "one where clause"),
        ("availability(status == 503) > 1%", "takes no arguments"),
        ("attempt_cap_respected(0) == 100%", "takes the cap"),
        ("recovery_time(status == 503) < 1s", "needs a fault"),
        ("recovery_time(kill-app-1) < 10s during phase spike", "takes no window"),
        ("ratio(status == 503) < 5% during phase spike + 10s", '"+ N" after a phase'),
    ],
)
def test_a_metric_used_wrongly_says_how_to_write_it(text: str, words: str) -> None:
    with pytest.raises(BadInputError) as caught:
        parse_slo(text, where="slos[0]")
    assert words in str(caught.value)
    assert "<<here>>" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("abort if retry_after_compliance < 50% for 10s", "a guard cannot use"),
        ("abort if recovery_time(kill-app-1) > 10s for 10s", "a guard cannot use"),
        ("abort if ratio(status >= 500) > 50% for 0s", "longer than 0s"),
        ("abort if ratio(status >= 500) > 50% for 15", "takes a duration"),
        ("abort if ratio(status >= 500) > 50%", "unexpected end"),
        ("ratio(status >= 500) > 50% for 15s", 'unexpected "ratio"'),
    ],
)
def test_a_bad_guard_is_refused_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(BadInputError, match=re.escape(words)):
        parse_guard(text, where="guards[0]")


def test_an_overlong_expression_is_refused_without_parsing() -> None:
    with pytest.raises(BadInputError, match="longer than 400 characters"):
        parse_slo("ratio(" + "(" * 500 + "status == 503" + ")" * 500 + ") < 1%")


# --- names against the scenario ------------------------------------------------------------------


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    (tmp_path / "users.py").write_text("# users\n")
    text = textwrap.dedent(
        """
        name: names
        load:
          locustfile: users.py
          phases:
            - {name: warmup, duration: 10s, users: 1, spawn_rate: 1}
            - {name: spike, duration: 20s, users: 5, spawn_rate: 5}
            - {name: both, duration: 5s, users: 1, spawn_rate: 1}
        faults:
          - {name: kill-app-1, action: kill, target: app-1, at: 12s, for: 5s}
          - {name: slow-db, action: toxic, target: app-db, at: 14s, for: 5s,
             params: {type: latency, latency: 100}}
          - {name: both, action: maintenance, at: 31s, for: 2s}
        """
    )
    return parse_scenario(text, tmp_path / "names.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "ratio(status == 503) < 5% during phase spike",
        "availability >= 99% during fault slow-db",
        "retry_amplification during slow-db < 1.5",
        "availability >= 99% during spike",
        "recovery_time(kill-app-1, baseline warmup) < 10s",
        "p95(latency) < 1s during fault kill-app-1 + 10s",
    ],
)
def test_known_names_pass_the_check(scenario: Scenario, text: str) -> None:
    check_names(parse_slo(text), scenario)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ratio(status == 503) < 5% during phase spkie",
            'unknown phase "spkie" (did you mean "spike"?)',
        ),
        (
            "availability >= 99% during fault slowdb",
            'unknown fault "slowdb" (did you mean "slow-db"?)',
        ),
        (
            "availability >= 99% during xyz",
            'unknown phase or fault "xyz" (known: warmup, spike, both, kill-app-1',
        ),
        (
            "recovery_time(kill-app-2) < 10s",
            'unknown fault "kill-app-2" (did you mean "kill-app-1"?)',
        ),
        ("recovery_time(kill-app-1, baseline warm) < 10s", 'unknown phase "warm"'),
        ("availability >= 99% during both", '"both" is both a phase and a fault'),
        ("availability >= 99% during fault spike", 'unknown fault "spike"'),
    ],
)
def test_an_unknown_name_is_named_with_the_closest_known(
    scenario: Scenario, text: str, message: str
) -> None:
    with pytest.raises(BadInputError) as caught:
        check_names(parse_slo(text), scenario, where="slos[1]")
    assert str(caught.value).startswith("slos[1]: ")
    assert message in str(caught.value)


def test_parse_checks_parses_a_scenarios_slos_and_guards_with_their_names(
    tmp_path: Path, scenario: Scenario
) -> None:
    data = scenario.to_dict()
    data["slos"] = [
        {"name": "no-500s", "expr": "count(status == 500) == 0"},
        {"name": "spike", "expr": "ratio(status == 503) < 5% during phase spike"},
    ]
    data["guards"] = [{"name": "storm", "expr": "abort if ratio(status >= 500) > 50% for 15s"}]
    checks = parse_checks(Scenario.from_dict(data))
    assert [slo.name for slo in checks.slos] == ["no-500s", "spike"]
    assert [guard.name for guard in checks.guards] == ["storm"]

    data["slos"].append({"name": "typo", "expr": "ratio(status == 503) < 5% during phase spik"})
    with pytest.raises(BadInputError, match=r'^slos\[2\]: unknown phase "spik"'):
        parse_checks(Scenario.from_dict(data))
    data["slos"].pop()
    data["guards"].append({"name": "bad", "expr": "abort if ratio(status >= 500) > 50%"})
    with pytest.raises(BadInputError, match=r"^guards\[1\]: unexpected end"):
        parse_checks(Scenario.from_dict(data))


# --- nothing but BadInputError, ever -------------------------------------------------------------

_PIECES = [
    "ratio",
    "count",
    "p99",
    "p99.9",
    "availability",
    "retry_after_compliance",
    "backoff_growth",
    "recovery_time",
    "attempt_cap_respected",
    "(",
    ")",
    ",",
    "status",
    "latency",
    "retry_after",
    "where",
    "baseline",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "503",
    "5xx",
    "0",
    "5%",
    "300ms",
    "1.5",
    "10s",
    "1m30s",
    "during",
    "phase",
    "fault",
    "spike",
    "kill-app-1",
    "+",
    "and",
    "or",
    "abort",
    "if",
    "for",
    "%",
    "ms",
    "-",
    "1e9",
    "99999999999999999999%",
]


def _outcome(parse: object, text: str) -> None:
    try:
        parse(text)  # type: ignore[operator]
    except BadInputError as exc:
        message = str(exc)
    else:
        return
    assert "\n" not in message


@settings(max_examples=examples(300), deadline=None)  # fewer outside CI: fuzz_budget.py
@given(st.text(max_size=120))
def test_arbitrary_text_raises_nothing_but_bad_input(text: str) -> None:
    _outcome(parse_slo, text)
    _outcome(parse_guard, text)


@settings(max_examples=examples(500), deadline=None)  # fewer outside CI: fuzz_budget.py
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map(" ".join))
def test_near_misses_of_the_grammar_raise_nothing_but_bad_input(text: str) -> None:
    _outcome(parse_slo, text)
    _outcome(parse_guard, text)


SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_the_shipped_scenarios_checks_parse(path: Path) -> None:
    scenario = load_scenario(path)
    checks = parse_checks(scenario)
    assert [slo.name for slo in checks.slos] == [slo.name for slo in scenario.slos]
    assert len(checks.guards) == len(scenario.guards)
