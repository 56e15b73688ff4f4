"""Raw throughput and memory: real KuCoin frames through the fast path, 1M resting orders.

Arms 1,000,000 resting orders over 1,000 symbols (RSS before and after gives
bytes per order), then feeds ticker frames in KuCoin's exact wire format, as
bytes the socket delivers, through the worker's frame parser and index on
one core, and prints frames per second. The frame template is the recorded
spot ticker of ../shared/data/kucoin_frames.jsonl.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from bench.books import resting, tick_prices
from bench.results import record, tee
from localkucoin.replay import SHARED_DATA
from worker.book import PriceIndex
from worker.venues.kucoin.protocol import SPOT, parse_frame


def rss_bytes() -> int:
    """Return this process's resident set size."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def recorded_ticker() -> dict[str, Any]:
    for line in (SHARED_DATA / "kucoin_frames.jsonl").read_text().splitlines():
        raw: dict[str, Any] = json.loads(json.loads(line)["raw"])
        if raw.get("topic") == "/market/ticker:BTC-USDT":
            return raw
    raise SystemExit("no recorded spot ticker frame")


def frames(symbols: list[str], count: int) -> list[bytes]:
    """Return `count` ticker frames as bytes, in the recorded frame's exact shape."""
    template = recorded_ticker()
    rng = random.Random(3)
    prices = tick_prices(count)
    out = []
    for n, price in enumerate(prices):
        symbol = symbols[rng.randrange(len(symbols))]
        data = dict(template["data"], price=str(price), bestBid=str(price - 1),
                    bestAsk=str(price + 1), sequence=str(25178512486 + n))
        out.append(json.dumps({**template, "topic": f"/market/ticker:{symbol}",
                               "data": data}, separators=(",", ":")).encode())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--frames", type=int, default=200_000)
    args = parser.parse_args()
    with tee() as out:
        figures = run(args)
    record("throughput", figures, out.getvalue())
    return 0


def run(args: argparse.Namespace) -> dict[str, float]:
    symbols = [f"S{n:04d}-USDT" for n in range(args.symbols)]
    per_symbol = args.orders // args.symbols

    gc.collect()
    before = rss_bytes()
    index = PriceIndex()
    books = 0
    for symbol in symbols:  # the same level pattern on every symbol, distinct documents
        for armed in resting(symbol, per_symbol):
            index.arm(armed)
        books += 1
    gc.collect()
    grown = rss_bytes() - before
    print(f"armed {len(index):,} orders over {books:,} symbols: "
          f"{grown / len(index):,.0f} bytes per resting order (RSS delta {grown / 2**20:,.0f} MiB)")

    payloads = frames(symbols, args.frames)
    started = time.perf_counter()
    hits = 0
    for payload in payloads:
        tick = parse_frame(payload, SPOT)
        hits += len(index.on_tick(tick))  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    print(f"{len(payloads):,} frames parsed and evaluated in {elapsed:.2f} s: "
          f"{len(payloads) / elapsed:,.0f} frames/s on one core ({hits} fired)")
    return {"orders": len(index), "symbols": books, "bytes_per_order": grown / len(index),
            "frames_per_second": len(payloads) / elapsed}


if __name__ == "__main__":
    sys.exit(main())
