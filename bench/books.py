"""Resting books for the benchmarks: triggers and positions at random levels."""

from __future__ import annotations

import random
from decimal import Decimal

from tests.support.builders import DROP, position_doc, trigger_doc
from worker.book import Armed
from worker.documents import armed_position, armed_trigger

#: Ticks move inside this band; resting levels sit outside it, so a tick
#: evaluates the whole book but fires nothing (the steady state).
BAND = (96.0, 104.0)


def level(rng: random.Random, below: bool) -> Decimal:
    """Return a level outside the tick band, below it or above it."""
    value = rng.uniform(50, 95.9) if below else rng.uniform(104.1, 150)
    return Decimal(f"{value:.4f}")


def resting(symbol: str, count: int, seed: int = 7) -> list[Armed]:
    """Return `count` armed documents on `symbol`: 60 % triggers, 40 % positions."""
    rng = random.Random(seed)
    spot = symbol.endswith("-USDT")
    kind = ({"symbolType": "spot", "leverage": DROP} if spot else
            {"symbolType": "futures", "leverage": 3})
    armed: list[Armed] = []
    for n in range(count):
        if n % 5 < 3:
            below = rng.random() < 0.5
            action = "buy" if spot else ("long" if below else "short")
            doc = trigger_doc(symbol=symbol, condition="below" if below else "above",
                              targetPrice=float(level(rng, below)), action=action, **kind)
            armed.append(armed_trigger(f"users/{symbol}-u{n}/tradeTriggers/t{n}", doc))
        else:
            long = spot or rng.random() < 0.5
            stop, take = level(rng, long), level(rng, not long)
            doc = position_doc(symbol=symbol, positionType="long" if long else "short",
                               averageEntryPrice=100, liquidationPrice=None,
                               details={"status": "open", "stopLoss": float(stop),
                                        "takeProfit": float(take)},
                               **{**kind, "leverage": 1 if spot else 3})
            found = armed_position(f"users/{symbol}-u{n}/openPositions/p{n}", doc)
            assert found is not None
            armed.append(found)
    return armed


def tick_prices(count: int, seed: int = 11) -> list[Decimal]:
    """Return a random walk of last prices inside the band."""
    rng = random.Random(seed)
    price, prices = 100.0, []
    for _ in range(count):
        price = min(max(price + rng.gauss(0, 0.3), BAND[0]), BAND[1])
        prices.append(Decimal(f"{price:.3f}"))
    return prices
