"""docs/grafana/harness-live.json: importable as it is, and every panel queries only metrics the
live endpoint exports (the list comes from the collector itself, not from a copy kept here)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.load.live_metrics import exported_names

pytestmark = pytest.mark.unit

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "harness-live.json"
# A metric name in PromQL: the harness's own prefix, not inside a label matcher's quotes.
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"\bharness_[a-zA-Z0-9_]+")


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            yield f"variable {variable['name']}", text


def metric_names(promql: str) -> set[str]:
    return set(_NAME.findall(_QUOTED.sub('""', promql)))


def unknown_metrics(dashboard: dict[str, Any]) -> list[str]:
    exported = exported_names()
    return [
        f"{where}: {name}"
        for where, promql in queries(dashboard)
        for name in sorted(metric_names(promql))
        if name not in exported
    ]


def test_every_metric_a_panel_queries_is_one_the_endpoint_exports() -> None:
    dashboard = load()
    assert unknown_metrics(dashboard) == []
    used = {name for _, promql in queries(dashboard) for name in metric_names(promql)}
    assert len(used) >= 10  # the check above looked at real queries


def test_the_check_catches_a_panel_that_queries_a_metric_nobody_exports() -> None:
    dashboard = load()
    dashboard["panels"][0]["targets"].append(
        {"refId": "Z", "expr": 'rate(harness_requests_sent_total{code="harness_x"}[1m])'}
    )
    assert unknown_metrics(dashboard) == [
        f"panel {dashboard['panels'][0]['title']!r} Z: harness_requests_sent_total"
    ]


def test_the_dashboard_asks_what_the_issue_asks_for() -> None:
    dashboard = load()
    text = " ".join(promql for _, promql in queries(dashboard))
    assert "histogram_quantile(0.5," in text
    assert "histogram_quantile(0.95," in text
    assert "histogram_quantile(0.99," in text
    for name in (
        "harness_responses_total",
        "harness_503_ratio",
        "harness_slo_threshold",
        "harness_retry_amplification_ratio",
        "harness_fault_active",
        "harness_phase",
    ):
        assert name in text
    kinds = {panel["title"]: panel["type"] for panel in panels(dashboard)}
    assert kinds["Active faults"] == "state-timeline"


def test_the_dashboard_is_importable_as_it_is() -> None:
    dashboard = load()
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["uid"]
    assert dashboard["title"]
    (source,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["name"] == "DS_PROMETHEUS"
    assert source["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        for target in panel.get("targets", []):
            datasource = target.get("datasource", panel["datasource"])
            assert datasource == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
