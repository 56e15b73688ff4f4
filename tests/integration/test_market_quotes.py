"""The AI agent's market prices fetched over real HTTP from the local KuCoin's REST tickers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal as D
from typing import Any

from cogmora_backend.automation.quotes import ExchangeQuotes, watched_markets
from cogmora_core.markets import Market
from cogmora_core.model import SymbolType
from localkucoin.server import LocalKucoin
from tests.support.processes import free_port

SOL, BTC, LINK = watched_markets(["SOLUSDTM", "BTC-USDT", "LINKUSDTM"])


def with_exchange(test: Callable[[LocalKucoin, LocalKucoin, ExchangeQuotes],
                                 Awaitable[Any]], **options: Any) -> Any:
    """Run `test` against a fresh local KuCoin (spot and futures) and a source reading it."""

    async def run() -> Any:
        spot, futures = LocalKucoin("spot"), LocalKucoin("futures")
        await spot.start()
        await futures.start()
        quotes = ExchangeQuotes(spot.base_url, futures.base_url, **options)
        try:
            return await test(spot, futures, quotes)
        finally:
            await quotes.close()
            await spot.stop()
            await futures.stop()

    return asyncio.run(run())


def test_the_last_published_ticker_of_each_market_is_fetched_exactly() -> None:
    async def test(spot: LocalKucoin, futures: LocalKucoin, quotes: ExchangeQuotes) -> Any:
        await futures.publish("SOLUSDTM", D("141.5"), D("141.49"), D("141.51"))
        await spot.publish("BTC-USDT", D("87956.1"), D("87956"), D("87956.2"))
        before = int(time.time() * 1000)
        return await quotes.get_many([SOL, BTC, LINK]), before

    ticks, before = with_exchange(test)

    assert list(ticks) == ["SOLUSDTM", "BTC-USDT"]  # LINK never traded: no price
    sol, btc = ticks["SOLUSDTM"], ticks["BTC-USDT"]
    assert (sol.price, sol.best_bid, sol.best_ask) == (D("141.5"), D("141.49"), D("141.51"))
    assert (btc.price, btc.best_bid, btc.best_ask) == (D("87956.1"), D("87956"), D("87956.2"))
    assert sol.time_ms is not None and btc.time_ms is not None
    assert before - 5000 <= sol.time_ms <= before and before - 5000 <= btc.time_ms <= before


def test_a_market_is_fetched_once_per_ttl_however_many_ask() -> None:
    now = [100.0]

    async def test(spot: LocalKucoin, futures: LocalKucoin, quotes: ExchangeQuotes) -> Any:
        await futures.publish("SOLUSDTM", D("141.5"))
        first = await asyncio.gather(*(quotes.get(SOL) for _ in range(5)))
        await futures.publish("SOLUSDTM", D("142"))
        now[0] += 5.0  # within the ttl: the same answer
        cached = await quotes.get(SOL)
        now[0] += 0.001
        fresh = await quotes.get(SOL)
        return [t.price for t in (*first, cached, fresh) if t is not None]

    prices = with_exchange(test, ttl=5.0, clock=lambda: now[0])

    assert prices == [D("141.5")] * 6 + [D("142")]


def test_an_exchange_that_fails_or_is_down_gives_no_price() -> None:
    async def test(spot: LocalKucoin, futures: LocalKucoin, quotes: ExchangeQuotes) -> Any:
        down = ExchangeQuotes(f"http://127.0.0.1:{free_port()}",
                              f"http://127.0.0.1:{free_port()}", timeout=2.0)
        # spot and futures swapped: each answers 400 for the other's endpoint
        swapped = ExchangeQuotes(futures.base_url, spot.base_url)
        await futures.publish("SOLUSDTM", D("141.5"))
        await spot.publish("BTC-USDT", D("87956.1"))
        try:
            return (await down.get_many([SOL, BTC]), await swapped.get_many([SOL, BTC]),
                    await quotes.get_many([Market("SOL_USDC", SymbolType.SPOT, "SOL",
                                                  "backpack", "USDC")]))
        finally:
            await down.close()
            await swapped.close()

    assert with_exchange(test) == ({}, {}, {})
