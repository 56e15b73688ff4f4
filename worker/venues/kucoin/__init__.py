"""KuCoin: spot (`BASE-USDT`) and USDT-margined perpetual futures (`BASEUSDTM`).

Conditions are detected on the last trade price of the ticker topics; fills
use the best bid/ask at that trade (`protocol.py`). Funding settlements come
from the futures announcement topic. Environment: `KUCOIN_SPOT_API`,
`KUCOIN_FUTURES_API` (REST: tokens, candles, listings) and `TOPIC_LIMIT`
(topics per connection before another is opened). KuCoin allows 100 uplink
messages per 10 s on a connection and 100 topics per subscribe message (spot
joins symbols in one topic; a futures topic names one symbol, and each futures
symbol also takes its funding announcement topic).
"""

from __future__ import annotations

from functools import partial

import httpx

from cogmora_core.candles import Candle
from cogmora_core.venues import SymbolType, Venue
from worker.metrics import Metrics
from worker.venues.base import Feed, FeedHandlers, SubscriptionLimits, VenueAdapter
from worker.venues.kucoin import candles, listings
from worker.venues.kucoin.feed import KucoinFeed

#: Of KuCoin's 100 messages per 10 s per connection, what subscription messages may use,
#: a reconnect's resubscriptions included (the rest is left for pings).
MESSAGES_PER_SECOND = 5.0
BURST = 40
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

    @property
    def topic_limit(self) -> int:
        """Return the topics one connection carries before another is opened."""
        return int(self.setting("TOPIC_LIMIT", "300"))

    def subscription_limits(self, market: SymbolType) -> SubscriptionLimits:
        """Return KuCoin's limits: spot joins 100 symbols a message, futures one topic each."""
        if market is SymbolType.SPOT:
            return SubscriptionLimits(MESSAGES_PER_SECOND, BURST, topics_per_symbol=1,
                                      topics_per_message=100,
                                      symbols_per_connection=self.topic_limit)
        return SubscriptionLimits(MESSAGES_PER_SECOND, BURST, topics_per_symbol=2,
                                  topics_per_message=1,
                                  symbols_per_connection=max(1, self.topic_limit // 2))

    def feeds(self, handlers: FeedHandlers, metrics: Metrics) -> dict[SymbolType, Feed]:
        """Return one `KucoinFeed` per market; futures also follow funding."""
        topic_limit = self.topic_limit
        apis = self.apis
        return {
            market: KucoinFeed(
                market, apis[market], handlers.on_tick, metrics, topic_limit=topic_limit,
                on_funding=handlers.on_funding if market is SymbolType.FUTURES else None,
                on_subscribed=partial(handlers.on_subscribed, market),
                limits=self.subscription_limits(market))
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
