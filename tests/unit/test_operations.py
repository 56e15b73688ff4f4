"""Stale worker shards from their heartbeats, and the shard services' rendering."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from cogmora_backend.operations import shard_health

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def beat(seconds_ago: float, count: int | None = None, worker: str = "w") -> dict:
    data: dict = {"lastTickMs": NOW_MS - int(seconds_ago * 1000), "workerId": worker,
                  "symbols": {"BTC-USDT": NOW_MS}}
    if count is not None:
        data["shardCount"] = count
    return data


def test_fresh_stale_and_missing_shards() -> None:
    health = shard_health([("kucoin-spot-0", beat(2, 3)), ("kucoin-spot-1", beat(45, 3)),
                           ("kucoin-futures-0", beat(1, 1))], NOW)
    states = {(s.market, s.index): s.state for s in health.shards}
    assert states == {("kucoin-futures", 0): "fresh", ("kucoin-spot", 0): "fresh",
                      ("kucoin-spot", 1): "stale", ("kucoin-spot", 2): "missing"}
    assert health.counts == {"kucoin-futures": 1, "kucoin-spot": 3}
    assert health.as_json()["stale"] == ["kucoin-spot-1", "kucoin-spot-2"]
    assert health.as_json()["ok"] is False
    assert health.max_age_seconds == 45.0


def test_after_re_sharding_the_old_generations_extra_shards_are_retired_not_stale() -> None:
    # Three shards became two: shard 2's heartbeat stops, the fresh ones say 2.
    health = shard_health([("backpack-spot-0", beat(1, 2)), ("backpack-spot-1", beat(3, 2)),
                           ("backpack-spot-2", beat(600, 3))], NOW)
    assert [(s.index, s.state) for s in health.shards] == [
        (0, "fresh"), (1, "fresh"), (2, "retired")]
    assert health.stale == [] and health.as_json()["ok"] is True
    assert health.max_age_seconds == 3.0


def test_heartbeats_without_a_count_count_their_shards_and_odd_ids_are_ignored() -> None:
    health = shard_health([("kucoin-spot-1", beat(1)), ("nonsense", beat(1)),
                           ("kucoin-spot-x", beat(1))], NOW)
    assert [(s.market, s.index, s.state) for s in health.shards] == [
        ("kucoin-spot", 0, "missing"), ("kucoin-spot", 1, "fresh")]


def load_workers():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("workers", ROOT / "infra" / "workers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_template_renders_n_shard_services() -> None:
    workers = load_workers()
    rendered = workers.render("demo-project", "gcr.io/demo-project/cogmora-worker:abc", 3, "g2")
    assert list(rendered) == ["cogmora-worker-g2-0", "cogmora-worker-g2-1",
                              "cogmora-worker-g2-2"]
    for index, (name, text) in enumerate(rendered.items()):
        service = yaml.safe_load(text)
        assert service["metadata"]["name"] == name
        assert service["metadata"]["labels"] == {"cogmora-generation": "g2",
                                                 "cogmora-shard": str(index)}
        spec = service["spec"]["template"]["spec"]
        worker, collector = spec["containers"]
        env = {e["name"]: e["value"] for e in worker["env"]}
        assert (env["SHARD_COUNT"], env["SHARD_INDEX"]) == ("3", str(index))
        assert env["GOOGLE_CLOUD_PROJECT"] == "demo-project"
        assert worker["image"] == "gcr.io/demo-project/cogmora-worker:abc"
        assert "cloud-run-gmp-sidecar" in collector["image"]
        assert spec["serviceAccountName"] == (
            "cogmora-worker@demo-project.iam.gserviceaccount.com")
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        for placeholder in ("SERVICE_NAME", "GENERATION", "_VALUE", "PROJECT_ID", "IMAGE"):
            assert placeholder not in body
    with pytest.raises(ValueError):
        workers.render("p", "i", 0, "g1")
    with pytest.raises(ValueError):
        workers.render("p", "i", 2, "G_1")
