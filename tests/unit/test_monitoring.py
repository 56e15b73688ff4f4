"""infra/monitoring: the log-based metrics, dashboard and alert policies are well formed,
name only metrics that exist, and cover what on-call is asked to watch (no GCP here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from worker.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infra" / "monitoring"
LOG_METRIC = re.compile(r"logging_googleapis_com:user_([a-z0-9_]+?)(?:_sum|_count|_bucket)?\b")
DURATION = re.compile(r"^\d+s$")


def load(path: Path) -> Any:
    return json.loads(path.read_text())


LOG_METRICS = {path.stem: load(path)
               for path in sorted((MONITORING / "log-metrics").glob("*.json"))}
ALERTS = {path.stem: load(path) for path in sorted((MONITORING / "alerts").glob("*.json"))}
DASHBOARD = load(MONITORING / "dashboard.json")


def queries() -> list[str]:
    found = [c["conditionPrometheusQueryLanguage"]["query"]
             for policy in ALERTS.values() for c in policy["conditions"]]
    found += [d["timeSeriesQuery"]["prometheusQuery"] for tile in DASHBOARD["mosaicLayout"]["tiles"]
              for d in tile["widget"]["xyChart"]["dataSets"]]
    return found


@pytest.mark.parametrize("name", sorted(LOG_METRICS))
def test_each_log_metric_is_a_complete_log_metric(name: str) -> None:
    metric = LOG_METRICS[name]
    assert metric["name"] == name and metric["description"]
    assert metric["filter"].startswith('resource.type="cloud_run_revision" AND ')
    descriptor = metric["metricDescriptor"]
    assert descriptor["metricKind"] == "DELTA"
    assert descriptor["valueType"] in ("INT64", "DISTRIBUTION")
    if descriptor["valueType"] == "DISTRIBUTION":
        assert re.fullmatch(r"EXTRACT\(jsonPayload\.\w+\)", metric["valueExtractor"])
        assert "exponentialBuckets" in metric["bucketOptions"]
    labels = {label["key"] for label in descriptor["labels"]}
    assert set(metric.get("labelExtractors", {})) == labels
    # Every log line a filter names is written by the functions' code.
    source = "\n".join(p.read_text() for p in (ROOT / "functions").rglob("*.py")
                       if "venv" not in p.parts)
    for message in re.findall(r'jsonPayload\.message="([^"]+)"', metric["filter"]):
        assert f'"{message}"' in source, message


def test_the_alerts_asked_for_are_there_with_their_thresholds() -> None:
    def query(name: str) -> str:
        return str(ALERTS[name]["conditions"][0]["conditionPrometheusQueryLanguage"]["query"])

    def duration(name: str) -> str:
        return str(ALERTS[name]["conditions"][0]["conditionPrometheusQueryLanguage"]["duration"])

    assert "cogmora_stale_worker_shards" in query("stale-heartbeat")
    assert "cogmora_late_marks" in query("late-mark")
    assert "cogmora_reconcile_backlog" in query("reconcile-backlog-growing")
    assert duration("reconcile-backlog-growing") == "300s"
    assert query("tick-to-mark-p99").startswith("histogram_quantile(0.99, ")
    assert query("tick-to-mark-p99").endswith("> 0.25")
    assert duration("tick-to-mark-p99") == "300s"
    # The thresholds live in code too: the probe's 30 s and 2 minutes.
    from cogmora_backend.operations import LATE_MARK, STALE_AFTER

    assert (STALE_AFTER.total_seconds(), LATE_MARK.total_seconds()) == (30, 120)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_alert_policy_is_well_formed(name: str) -> None:
    policy = ALERTS[name]
    assert policy["displayName"].startswith("Cogmora: ")
    assert policy["combiner"] in ("OR", "AND") and policy["severity"] in ("CRITICAL", "WARNING")
    assert policy["documentation"]["mimeType"] == "text/markdown"
    assert len(policy["documentation"]["content"]) > 40
    for condition in policy["conditions"]:
        promql = condition["conditionPrometheusQueryLanguage"]
        assert DURATION.match(promql["duration"]) and DURATION.match(promql["evaluationInterval"])
        assert promql["query"].count("(") == promql["query"].count(")")


def test_the_dashboard_tiles_fit_and_cover_the_asked_panels() -> None:
    layout = DASHBOARD["mosaicLayout"]
    taken: set[tuple[int, int]] = set()
    for tile in layout["tiles"]:
        assert tile["xPos"] + tile["width"] <= layout["columns"]
        cells = {(x, y) for x in range(tile["xPos"], tile["xPos"] + tile["width"])
                 for y in range(tile["yPos"], tile["yPos"] + tile["height"])}
        assert not cells & taken, tile["widget"]["title"]
        taken |= cells
    titles = " | ".join(tile["widget"]["title"] for tile in layout["tiles"]).lower()
    for panel in ("tick → mark p99", "marks and settlements", "reconciler backlog", "parked",
                  "heartbeats", "reconnects", "rejected frames", "scheduler", "function errors"):
        assert panel in titles, panel


def test_every_metric_queried_exists() -> None:
    rendered = Metrics().render().decode()
    exposed = dict(re.findall(r"^# TYPE (\w+) (\w+)", rendered, re.M))
    for promql in queries():
        for name in LOG_METRIC.findall(promql):
            assert name in LOG_METRICS, name
        worker_side = LOG_METRIC.sub("", promql)
        for name in re.findall(r"\bcogmora_\w+", worker_side):
            base = name.removesuffix("_bucket")
            if base != name:
                assert exposed.get(base) == "histogram", name
            else:
                assert exposed.get(name) == "counter" or exposed.get(
                    name.removesuffix("_total")) == "counter", name
