"""Scenarios are read with libyaml's parser where PyYAML has it, and with the pure-Python one
for the words of an error: both must read every document the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import BadInputError
from harness.scenario import loader

pytestmark = pytest.mark.unit

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").rglob("*.yaml"))


def test_libyaml_reads_the_scenarios_where_pyyaml_has_it() -> None:
    if getattr(yaml, "CSafeLoader", None) is None:
        pytest.skip("this PyYAML was built without libyaml")
    assert issubclass(loader._FastStrictLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_both_parsers_read_every_shipped_scenario_alike(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    fast = yaml.load(text, Loader=loader._FastStrictLoader)
    pure = yaml.load(text, Loader=loader._StrictLoader)
    assert fast == pure


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The pure-Python parser's words, whichever parser refused the document first.
        ("name: x: y\n", "line 1, column 8: bad YAML: mapping values are not allowed here"),
        ("a: 1\na: 2\n", 'line 2, column 1: bad YAML: duplicate key "a"'),
        ("x: " + "[" * 200 + "]" * 200 + "\n", "lists and mappings nested deeper than"),
    ],
)
def test_a_refused_document_is_worded_by_the_pure_parser(text: str, expected: str) -> None:
    with pytest.raises(BadInputError) as refused:
        loader.parse_scenario(text, "s.yaml")
    assert expected in str(refused.value)
