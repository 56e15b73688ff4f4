"""KuCoin: spot (`BASE-USDT`) and USDT-margined perpetual futures (`BASEUSDTM`).

Conditions are detected on the last trade price of the ticker topics; fills
use the best bid/ask at that trade (`protocol.py`). Funding settlements come
from the futures announcement topic. Environment: `KUCOIN_SPOT_API`,
`KUCOIN_FUTURES_API` (REST: tokens, candles, listings) and `TOPIC_LIMIT`
(topics per connection before another is opened).
"""

from __future__ import annotations

from functools import partial

import httpx

from cogmora_core.candles import Candle
from cogmora_core.venues import SymbolType, Venue
from worker.metrics import Metrics
from worker.venues.base import Feed, FeedHandlers, VenueAdapter
from worker.venues.kucoin import candles, listings
from worker.venues.kucoin.feed import KucoinFeed

SPOT_API = "https://api.kucoin.com"
FUTURES_API = "https://api-futures.kucoin.com"


class Adapter(VenueAdapter):
    """KuCoin's two markets, each its own connection manager."""

    venue = Venue.KUCOIN

    @property
    def apis(self) -> dict[SymbolType, str]:
        """Return the REST API of each market."""
        return {SymbolType.SPOT: self.setting("KUCOIN_SPOT_API", SPOT_API),
                SymbolType.FUTURES: self.setting("KUCOIN_FUTURES_API", FUTURES_API)}

    def feeds(self, handlers: FeedHandlers, metrics: Metrics) -> dict[SymbolType, Feed]:
        """Return one `KucoinFeed` per market; futures also follow funding."""
        topic_limit = int(self.setting("TOPIC_LIMIT", "300"))
        apis = self.apis
        return {
            market: KucoinFeed(
                market, apis[market], handlers.on_tick, metrics, topic_limit=topic_limit,
                on_funding=handlers.on_funding if market is SymbolType.FUTURES else None,
                on_subscribed=partial(handlers.on_subscribed, market))
            for market in self.markets
        }

    async def fetch_candles(self, client: httpx.AsyncClient, market: SymbolType, symbol: str,
                            start_ms: int, end_ms: int) -> list[Candle]:
        """Return KuCoin's one-minute candles (spot `market/candles`, futures `kline/query`)."""
        return await candles.fetch_candles(client, self.apis[market], market, symbol,
                                           start_ms, end_ms)

    async def listed(self, client: httpx.AsyncClient, market: SymbolType, symbol: str) -> bool:
        """Return whether KuCoin lists `symbol` and trades it."""
        return await listings.lookup(client, self.apis[market], market, symbol)
