"""The CI gate that remembers, on the real local stack: a short ``ci_gate.yaml`` run twice,
the second time with ``SHOP_MAX_INFLIGHT`` lowered so the shop sheds much more load.
``harness compare`` flags the regression and exits 1; the first run against itself exits 0; the
second run made with ``--baseline`` judges the comparison too, and its report says so. Both runs
are in the history, which survives its own deletion."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from run_support import run_dirs
from stack_support import Harness, new_state_dir, stop_everything_started

from harness.history import INDEX_FILE

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture
def harness() -> Iterator[Harness]:
    state_dir = new_state_dir("harness-it-compare-")
    try:
        yield Harness(state_dir)
    finally:
        try:
            Harness(state_dir).run("down")
        finally:
            stop_everything_started(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)


def port_flags(harness: Harness) -> list[str]:
    ports = harness.ports
    return [
        "--entry-port", str(ports.entry),
        "--toxiproxy-port", str(ports.toxiproxy_api),
        "--postgres-port", str(ports.postgres),
        "--app-db-proxy-port", str(ports.app_db_proxy),
        "--app-ports", ",".join(map(str, ports.apps)),
        "--lb-proxy-ports", ",".join(map(str, ports.lb_proxies)),
        "--caddy-admin-port", "0",
    ]  # fmt: skip


def gate_scenario(tmp_path: Path, name: str, env: dict[str, str]) -> Path:
    """``ci_gate.yaml`` with its phases shortened and its faults (and their recovery SLOs) left
    out: what is compared here is the shop's settings, and the full gate runs unchanged in the
    compose tests."""
    shutil.copy(SCENARIOS / "shop_locustfile.py", tmp_path / "shop_locustfile.py")
    data = yaml.safe_load((SCENARIOS / "ci_gate.yaml").read_text(encoding="utf-8"))
    data["stack"]["env"] = env
    data["load"]["phases"] = [
        {"name": "warmup", "duration": "4s", "users": 10, "spawn_rate": 10},
        {"name": "spike", "duration": "12s", "users": 60, "spawn_rate": 30},
        {"name": "cooldown", "duration": "2s", "users": 10, "spawn_rate": 30},
    ]
    data["faults"] = []
    data["slos"] = [s for s in data["slos"] if "recovery_time" not in s["expr"]]
    # A worst-window SLO, judged on the real buckets: it must say where its worst 5 s were.
    data["slos"].append(
        {
            "name": "spike-503-worst-5s",
            "expr": "ratio(status == 503) < 99% over any 5s during spike",
        }
    )
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_compare_flags_a_degraded_run_and_passes_a_run_against_itself(
    harness: Harness, tmp_path: Path
) -> None:
    harness.env = {k: v for k, v in harness.env.items() if not k.startswith("HARNESS_UP_")}
    reports = tmp_path / "reports"
    healthy = gate_scenario(tmp_path, "healthy.yaml", {"SHOP_MAX_INFLIGHT": "64"})
    degraded = gate_scenario(tmp_path, "degraded.yaml", {"SHOP_MAX_INFLIGHT": "1"})

    first = harness.run("run", str(healthy), "--reports", str(reports), *port_flags(harness),
                        timeout_s=240)  # fmt: skip
    assert first.returncode in (0, 1), f"{first.stdout}\n{first.stderr}"
    (run1,) = run_dirs(reports)

    second = harness.run(
        "run", str(degraded), "--reports", str(reports), "--baseline", str(run1),
        *port_flags(harness), timeout_s=240,
    )  # fmt: skip
    assert second.returncode == 1, f"{second.stdout}\n{second.stderr}"
    (run2,) = [p for p in run_dirs(reports) if p != run1]
    gated = json.loads((run2 / "compare.json").read_text(encoding="utf-8"))
    assert gated["regressed"] is True
    assert gated["baseline"]["run"] == run1.name
    assert "Compared with a baseline" in (run2 / "report.html").read_text(encoding="utf-8")
    summary = json.loads((run2 / "summary.json").read_text(encoding="utf-8"))
    assert any(f"baseline {run1.name}" in note for note in summary["notes"])
    (worst_slo,) = [s for s in summary["slos"] if s["name"] == "spike-503-worst-5s"]
    worst = worst_slo["worst_window"]
    spike = {p["name"]: p for p in summary["phases"]}["spike"]
    assert worst["end_s"] - worst["start_s"] == pytest.approx(5.0)
    assert spike["start_s"] - 0.1 <= worst["start_s"] <= worst["end_s"] <= spike["end_s"] + 0.1
    assert worst["value"] == worst_slo["observed"]
    # The worst 5 s are no better than the phase (edges may differ by a bucket: a point of slack).
    assert worst["value"] >= spike["ratio_503"] - 0.01

    compared = harness.run("compare", str(run1), str(run2), "--out", str(tmp_path))
    assert compared.returncode == 1, f"{compared.stdout}\n{compared.stderr}"
    figures = json.loads((tmp_path / "compare.json").read_text(encoding="utf-8"))["figures"]
    # One request at a time per instance: the spike sheds far more (or answers slower).
    worse = {f["key"] for f in figures if f["status"] == "regression"}
    assert worse & {"phase:spike:ratio_503", "phase:spike:p99_ms", "phase:spike:rps"}, figures

    itself = harness.run("compare", str(run1), str(run1), "--out", str(tmp_path))
    assert itself.returncode == 0, f"{itself.stdout}\n{itself.stderr}"

    # Both runs are in the history, also after the index is lost.
    (reports / INDEX_FILE).unlink()
    listed = harness.run("history", "ci-gate", "--reports", str(reports), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["run"] for row in json.loads(listed.stdout)] == [run2.name, run1.name]
