"""The chaos run, reduced for CI: a few hundred executions under every fault."""

from __future__ import annotations

from typing import Any

from bench.chaos import chaos


def test_chaos_run_loses_and_doubles_nothing(db: Any) -> None:
    counts, log = chaos(db, symbols=4, per_symbol=32, users=6, seed=9)

    assert counts["executions"] >= 200, counts
    assert counts["never crossed"] > 0 and counts["manual closes"] > 0
    assert counts["market orders"] > 0 and counts["liquidations"] > 0
    assert sum("killed the worker" in line for line in log) == 3
    assert any("dropped connections" in line for line in log)
    # Take-profits were edited while no worker ran, under the gap's prices.
    assert any(line.startswith("edited ") and not line.startswith("edited 0 ")
               for line in log), log
    # The last plateau is a storm: one tick crosses many levels at once.
    storm = [line for line in log if line.startswith("storm at plateau")]
    assert len(storm) == 1 and int(storm[0].split("crosses ")[1].split()[0]) >= 40, storm
    assert any(line.startswith("wrote ") and "buy-the-dip" in line for line in log), log
