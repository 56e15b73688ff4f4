"""Price paths for the local KuCoin: the recorded SOLUSDTM day, or scripted walks."""

from __future__ import annotations

import asyncio
import csv
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

#: The project's shared data: `shared/` beside the repository, or $COGMORA_SHARED.
SHARED_DATA = Path(os.environ.get("COGMORA_SHARED")
                   or Path(__file__).resolve().parents[2] / "shared") / "data"
#: The day of real KuCoin data the demo replays by default.
DEFAULT_REPLAY = SHARED_DATA / "kucoin_SOLUSDTM_1s_20251116.csv"


@dataclass(frozen=True)
class Quote:
    """One step of a path: last price and best bid/ask (None during a feed outage)."""

    price: Decimal
    bid: Decimal
    ask: Decimal


def recorded_day(path: Path = DEFAULT_REPLAY) -> Iterator[Quote | None]:
    """Yield one quote per recorded second; None for a feed outage (an empty row).

    The last price is the mark price, or the bid/ask mid on the rows that
    have no mark price. The file has a two-level header (three lines).
    """
    with path.open(newline="") as handle:
        rows = csv.reader(handle)
        for _ in range(3):
            next(rows)
        for row in rows:
            _, _, mark, bid, ask, *_ = [*row, "", "", "", "", ""]
            if not (bid and ask):
                yield None
                continue
            best_bid, best_ask = Decimal(bid), Decimal(ask)
            price = Decimal(mark) if mark else (best_bid + best_ask) / 2
            yield Quote(price, best_bid, best_ask)


def random_walk(start: Decimal, seed: int, step_fraction: float = 0.0004,
                spread_fraction: float = 0.00002) -> Iterator[Quote]:
    """Yield a deterministic random walk around `start` with a small spread."""
    generator = random.Random(seed)
    price = float(start)
    exponent = start.as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 2
    quantum = Decimal(1).scaleb(-max(places, 2))
    while True:
        price *= 1 + generator.gauss(0, step_fraction)
        last = Decimal(str(price)).quantize(quantum)
        half = max(quantum, (last * Decimal(str(spread_fraction))).quantize(quantum))
        yield Quote(last, last - half, last + half)


async def play(market: object, symbol: str, path: Iterator[Quote | None], speed: float,
               latest: dict[str, Quote], loop_forever: bool = True) -> None:
    """Publish `path` on `market` at `speed` steps per second (1 = real time for the day)."""
    interval = 1.0 / speed
    while True:
        for quote in path:
            if quote is not None:
                latest[symbol] = quote
                await market.publish(symbol, quote.price, quote.bid, quote.ask)  # type: ignore[attr-defined]
            await asyncio.sleep(interval)
        if not loop_forever:
            return
