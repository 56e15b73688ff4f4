"""Binance: spot (`BASEUSDT`) and USDⓈ-M perpetuals (`BASEUSDT` too), each on its own host.

Conditions are detected on the mid price of `<symbol>@bookTicker` (it
carries no last trade; see `protocol.py` for why the mid); fills use the
executable side of the book (the bid or the ask). Funding settlements are
read off `<symbol>@markPrice@1s` (`base.FundingClock`: settled when the
next funding time `T` moves on). Gaps are caught up from the klines; a
symbol is subscribed only once exchangeInfo lists it as trading (futures:
a PERPETUAL contract).

Spot and perpetual symbols are written alike (`BTCUSDT`): every tick names
its market (`Tick.symbol_type`), and nothing here infers a market from a
symbol's form.

Environment: `BINANCE_SPOT_WS` (spot streams host; `/stream` is appended),
`BINANCE_SPOT_API` (spot REST), `BINANCE_FUTURES_WS` (futures streams host;
`/public/stream` carries bookTicker, `/market/stream` markPrice) and
`BINANCE_FUTURES_API` (futures REST).

Not verified offline (taken from Binance's published documentation, and
held only against the local stand-in `localkucoin/binance.py`):
- that a combined-stream connection opened with no stream
  (`/stream`, streams added by SUBSCRIBE) stays open and pushes wrapped
  frames as documented;
- the futures route split (`/public` for bookTicker, `/market` for
  markPrice, announced for 2026) and what the server answers to a stream
  sent to the wrong route (the docs say it pushes nothing);
- the error frame's exact shape for a refused SUBSCRIBE (read both as
  `{"error": {code, msg}, "id"}`, as seen in client libraries' reports, and
  the docs' flat `{code, msg, id}`);
- that the rate last seen in markPrice before `T` is the rate settled at `T`
  (Binance's settled rates are in `GET /fapi/v1/fundingRate`, not read here);
- limits under load: messages per second (paced at 0.3 s spot, 0.15 s
  futures), streams per connection (1024, 200), the 24-hour cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import httpx

from cogmora_core.candles import Candle
from cogmora_core.venues import SymbolType, Venue
from worker.metrics import Metrics
from worker.venues.base import Feed, FeedHandlers, SubscriptionLimits, VenueAdapter
from worker.venues.binance import candles
from worker.venues.binance.feed import STREAM_LIMITS, BinanceFeed
from worker.venues.binance.listings import ExchangeInfo
from worker.venues.binance.protocol import MAX_STREAMS_PER_MESSAGE

SPOT_WS = "wss://stream.binance.com:9443"
SPOT_API = "https://api.binance.com"
FUTURES_WS = "wss://fstream.binance.com"
FUTURES_API = "https://fapi.binance.com"


class Adapter(VenueAdapter):
    """Binance's two markets, each its own connection manager."""

    venue = Venue.BINANCE

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.exchange_info = ExchangeInfo()

    @property
    def apis(self) -> dict[SymbolType, str]:
        """Return the REST API of each market."""
        return {SymbolType.SPOT: self.setting("BINANCE_SPOT_API", SPOT_API),
                SymbolType.FUTURES: self.setting("BINANCE_FUTURES_API", FUTURES_API)}

    @property
    def streams(self) -> dict[SymbolType, str]:
        """Return the WebSocket host of each market."""
        return {SymbolType.SPOT: self.setting("BINANCE_SPOT_WS", SPOT_WS),
                SymbolType.FUTURES: self.setting("BINANCE_FUTURES_WS", FUTURES_WS)}

    def subscription_limits(self, market: SymbolType) -> SubscriptionLimits:
        """Return Binance's limits: 5 (spot) or 10 (futures) messages a second per
        connection, under which the feed paces too; 1024 or 200 streams a connection."""
        if market is SymbolType.SPOT:
            return SubscriptionLimits(4.0, 8, topics_per_symbol=1,
                                      topics_per_message=MAX_STREAMS_PER_MESSAGE,
                                      symbols_per_connection=STREAM_LIMITS[market])
        # Futures: bookTicker and markPrice, each on its own route's connections.
        return SubscriptionLimits(8.0, 16, topics_per_symbol=2,
                                  topics_per_message=MAX_STREAMS_PER_MESSAGE,
                                  symbols_per_connection=STREAM_LIMITS[market])

    def feeds(self, handlers: FeedHandlers, metrics: Metrics) -> dict[SymbolType, Feed]:
        """Return one `BinanceFeed` per market; perpetuals also follow funding."""
        hosts = self.streams
        return {
            market: BinanceFeed(
                market, hosts[market], handlers.on_tick, metrics,
                on_funding=handlers.on_funding if market is SymbolType.FUTURES else None,
                on_subscribed=partial(handlers.on_subscribed, market))
            for market in self.markets
        }

    async def fetch_candles(self, client: httpx.AsyncClient, market: SymbolType, symbol: str,
                            start_ms: int, end_ms: int) -> list[Candle]:
        """Return Binance's one-minute klines (of trades)."""
        return await candles.fetch_candles(client, self.apis[market], market, symbol,
                                           start_ms, end_ms)

    async def listed(self, client: httpx.AsyncClient, market: SymbolType, symbol: str) -> bool:
        """Return whether Binance lists `symbol` in `market` and trades it."""
        return await self.exchange_info.lookup(client, self.apis[market], market, symbol)
