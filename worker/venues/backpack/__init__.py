"""Backpack: spot (`BASE_USDC`) and perpetuals (`BASE_USDC_PERP`) over one WebSocket.

Conditions are detected on the mid price of `bookTicker` (it carries no last
trade); fills use the executable side of the book (`protocol.py`). Funding
settlements are read off the `markPrice` stream. Environment:
`BACKPACK_WS_URL` (the WebSocket) and `BACKPACK_API` (REST: klines, markets).
Backpack publishes no message limit for its WebSocket: subscription changes
are paced as for KuCoin, 50 streams a message (a perpetual takes two).
"""

from __future__ import annotations

import httpx

from cogmora_core.candles import Candle
from cogmora_core.venues import SymbolType, Venue
from worker.metrics import Metrics
from worker.venues.backpack import candles, listings
from worker.venues.backpack.feed import LIMITS, BackpackFeed
from worker.venues.backpack.protocol import market_of
from worker.venues.base import Feed, FeedHandlers, VenueAdapter

WS_URL = "wss://ws.backpack.exchange"
API = "https://api.backpack.exchange"


class Adapter(VenueAdapter):
    """Backpack's two markets, carried by one connection manager."""

    venue = Venue.BACKPACK
    limits = LIMITS

    @property
    def api(self) -> str:
        """Return Backpack's REST API."""
        return self.setting("BACKPACK_API", API)

    def feeds(self, handlers: FeedHandlers, metrics: Metrics) -> dict[SymbolType, Feed]:
        """Return the one `BackpackFeed`, serving both markets."""
        def subscribed(symbols: list[str]) -> None:
            for market in self.markets:
                mine = [s for s in symbols if market_of(s) is market]
                if mine:
                    handlers.on_subscribed(market, mine)

        feed = BackpackFeed(self.setting("BACKPACK_WS_URL", WS_URL), handlers.on_tick, metrics,
                            on_funding=handlers.on_funding, on_subscribed=subscribed)
        return dict.fromkeys(self.markets, feed)

    async def fetch_candles(self, client: httpx.AsyncClient, market: SymbolType, symbol: str,
                            start_ms: int, end_ms: int) -> list[Candle]:
        """Return Backpack's one-minute klines (of trades)."""
        return await candles.fetch_candles(client, self.api, symbol, start_ms, end_ms)

    async def listed(self, client: httpx.AsyncClient, market: SymbolType, symbol: str) -> bool:
        """Return whether Backpack lists `symbol` with an open book."""
        return await listings.lookup(client, self.api, symbol)
