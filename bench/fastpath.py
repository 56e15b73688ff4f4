"""Fast path vs. the seed: ticks per second with n resting orders on one symbol.

The seed design scans every cached order of the symbol on each tick; that
baseline is implemented here with the same core condition checks
(`worker.book.fires`) and run side by side, in one process, with the worker's
`PriceIndex`. Ticks move inside a band the resting levels sit outside of, so
every tick must consider the whole book and fires nothing: the steady state.
Prints a table and writes docs/benchmarks/fastpath.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.books import resting, tick_prices
from bench.results import record, tee
from cogmora_core.model import Tick
from worker.book import Armed, PriceIndex, fires

ROOT = Path(__file__).resolve().parents[1]
SIZES = (100, 1_000, 10_000, 100_000)


def seed_scan(orders: list[Armed], tick: Tick) -> list[Armed]:
    """The seed: check every cached order of the symbol against the tick."""
    return [order for order in orders if fires(order, tick.price)]


def rate(step, ticks: list[Tick], budget: float) -> float:  # type: ignore[no-untyped-def]
    """Return ticks per second of `step`, running for at least `budget` seconds."""
    done, started = 0, time.perf_counter()
    while True:
        for tick in ticks:
            step(tick)
            done += 1
            if done % 16 == 0 and time.perf_counter() - started >= budget:
                return done / (time.perf_counter() - started)


def measure(size: int, budget: float) -> tuple[float, float]:
    orders = resting("BENCHUSDTM", size)
    index = PriceIndex()
    for order in orders:
        index.arm(order)
    ticks = [Tick("BENCHUSDTM", price) for price in tick_prices(4096)]
    fired = [h for t in ticks[:64] for h in index.on_tick(t)] + [
        o for t in ticks[:8] for o in seed_scan(orders, t)]
    assert fired == [], "the band must not cross any resting level"
    return rate(lambda t: seed_scan(orders, t), ticks, budget), rate(index.on_tick, ticks,
                                                                     budget)


def chart(rows: list[tuple[int, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r[0] for r in rows]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    axis.loglog(sizes, [r[1] for r in rows], "o-", label="seed: scan every order")
    axis.loglog(sizes, [r[2] for r in rows], "s-", label="worker: PriceIndex")
    axis.set_xlabel("resting orders on the symbol")
    axis.set_ylabel("ticks per second (one core)")
    axis.set_title("Fast path vs. the seed design")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per measurement")
    args = parser.parse_args()
    with tee() as out:
        rows = run(args.budget)
    record("fastpath", {"rows": rows, "ratio_10k": next(i / s for n, s, i in rows if n == 10_000)},
           out.getvalue())
    return 0


def run(budget: float) -> list[tuple[int, float, float]]:
    rows = []
    print(f"{'orders':>8}{'seed ticks/s':>16}{'index ticks/s':>16}{'ratio':>10}")
    for size in SIZES:
        seed, index = measure(size, budget)
        rows.append((size, seed, index))
        print(f"{size:>8}{seed:>16,.0f}{index:>16,.0f}{index / seed:>9,.0f}x", flush=True)
    path = Path(os.environ.get("COGMORA_DOCS_DIR") or ROOT / "docs") / "benchmarks"
    path.mkdir(parents=True, exist_ok=True)
    chart(rows, path / "fastpath.png")
    print(f"chart: {path / 'fastpath.png'}")
    return rows


if __name__ == "__main__":
    sys.exit(main())
