"""Fresh market prices for the AI agent's risk check: the venue's own REST ticker.

Every proposal is checked against the price of its market on the exchange
that will fill it (`cogmora_core.risk`), fetched as the agent runs:

- KuCoin spot: `GET {KUCOIN_SPOT_API}/api/v1/market/orderbook/level1?symbol=`
  → `{price, bestBid, bestAsk, time}` (time in ms);
- KuCoin futures: `GET {KUCOIN_FUTURES_API}/api/v1/ticker?symbol=`
  → `{price, bestBidPrice, bestAskPrice, ts}` (ts in ns, the last trade's).

The same settings as the worker's (`KUCOIN_SPOT_API`, `KUCOIN_FUTURES_API`,
same defaults), so the functions and the worker read one exchange.

Why not the watchlist's scraped price alone: it is as old as the last scrape
(the watchlist task runs every 15 min by default), it comes from a third-party
page (`config/scraper`) whose numbers break when its layout changes, and it is
the very number the model planned from, so a stale or wrong value would pass
the check that should catch it. Why not the worker: it subscribes only to
symbols something is armed on, and it keeps its prices in memory.

Only listed markets (`markets.py`) are fetched, so a run makes at most one
request per listed market per `ttl` seconds, however many users watch it.
A failed or unreadable answer gives no price: the proposals on that market
are dropped (`no_fresh_price`) and the plan is still written. Backpack is not
fetched: proposals name watchlist symbols, which are KuCoin's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import httpx

from cogmora_core.markets import MARKETS, Market
from cogmora_core.model import SymbolType, Tick
from cogmora_core.money import parse_decimal_string, writable_price
from cogmora_core.venues import Venue

log = logging.getLogger(__name__)

KUCOIN_SPOT_API = "https://api.kucoin.com"
KUCOIN_FUTURES_API = "https://api-futures.kucoin.com"
_KUCOIN = {m.symbol: m for m in MARKETS if m.venue == Venue.KUCOIN}


class QuoteSource(Protocol):
    """Where the agent's fresh prices come from (the exchange, or a fake in tests)."""

    async def get_many(self, markets: Iterable[Market]) -> dict[str, Tick]:
        """Return the fresh ticks of `markets` by symbol (markets without one left out)."""
        ...


def watched_markets(symbols: Iterable[str]) -> list[Market]:
    """Return the listed KuCoin markets among watchlist symbols (others get no price)."""
    return [_KUCOIN[symbol] for symbol in dict.fromkeys(symbols) if symbol in _KUCOIN]


def _price(data: Mapping[str, Any], name: str) -> Decimal | None:
    value = parse_decimal_string(data.get(name))
    return value if value is not None and writable_price(value) else None


def _data(body: object) -> Mapping[str, Any] | None:
    if not isinstance(body, Mapping) or body.get("code") != "200000":
        return None
    data = body.get("data")
    return data if isinstance(data, Mapping) else None


def parse_spot_level1(symbol: str, body: object) -> Tick | None:
    """Return the tick of a KuCoin spot `market/orderbook/level1` answer, or None."""
    data = _data(body)
    if data is None:
        return None
    price, at = _price(data, "price"), data.get("time")
    if price is None or not isinstance(at, int) or isinstance(at, bool):
        return None
    return Tick(symbol, price, _price(data, "bestBid"), _price(data, "bestAsk"), at)


def parse_futures_ticker(symbol: str, body: object) -> Tick | None:
    """Return the tick of a KuCoin futures `ticker` answer, or None."""
    data = _data(body)
    if data is None or data.get("symbol") != symbol:
        return None
    price, ts = _price(data, "price"), data.get("ts")
    if price is None or not isinstance(ts, int) or isinstance(ts, bool):
        return None
    return Tick(symbol, price, _price(data, "bestBidPrice"), _price(data, "bestAskPrice"),
                ts // 1_000_000)


class ExchangeQuotes:
    """KuCoin's REST tickers, each market fetched at most once per `ttl` seconds.

    One per scheduler run or callable (its HTTP client lives on that event
    loop); close it when done.
    """

    def __init__(self, spot_api: str = KUCOIN_SPOT_API,
                 futures_api: str = KUCOIN_FUTURES_API, timeout: float = 5.0,
                 ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.apis = {SymbolType.SPOT: spot_api.rstrip("/"),
                     SymbolType.FUTURES: futures_api.rstrip("/")}
        self.ttl = ttl
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=timeout, headers={"Accept": "application/json"})
        self._fetches: dict[str, tuple[float, asyncio.Task[Tick | None]]] = {}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ExchangeQuotes:
        """Return the source the worker's settings name (KUCOIN_SPOT_API, KUCOIN_FUTURES_API)."""
        env = os.environ if environ is None else environ
        return cls(env.get("KUCOIN_SPOT_API") or KUCOIN_SPOT_API,
                   env.get("KUCOIN_FUTURES_API") or KUCOIN_FUTURES_API)

    async def get_many(self, markets: Iterable[Market]) -> dict[str, Tick]:
        """Return the fresh ticks of `markets` by symbol (markets without one left out)."""
        wanted = [m for m in markets if m.venue == Venue.KUCOIN]
        ticks = await asyncio.gather(*(self.get(market) for market in wanted))
        return {m.symbol: tick for m, tick in zip(wanted, ticks, strict=True) if tick}

    async def get(self, market: Market) -> Tick | None:
        """Return the market's tick, fetched now or at most `ttl` seconds ago; None on failure."""
        now = self.clock()
        cached = self._fetches.get(market.symbol)
        if cached is None or now - cached[0] > self.ttl:
            cached = self._fetches[market.symbol] = (
                now, asyncio.ensure_future(self._fetch(market)))
        return await asyncio.shield(cached[1])

    async def _fetch(self, market: Market) -> Tick | None:
        spot = market.symbol_type is SymbolType.SPOT
        path = "/api/v1/market/orderbook/level1" if spot else "/api/v1/ticker"
        try:
            answer = await self.client.get(self.apis[market.symbol_type] + path,
                                           params={"symbol": market.symbol})
            answer.raise_for_status()
            body = answer.json()
        except (httpx.HTTPError, ValueError) as failure:
            log.warning("no market price", extra={"symbol": market.symbol,
                                                  "error": f"{type(failure).__name__}: {failure}"})
            return None
        parse = parse_spot_level1 if spot else parse_futures_ticker
        tick = parse(market.symbol, body)
        if tick is None:
            log.warning("unreadable market price", extra={"symbol": market.symbol,
                                                          "answer": str(body)[:200]})
        return tick

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
