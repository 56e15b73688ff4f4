"""Binance's one-minute klines for catching up a gap: spot `GET /api/v3/klines`,
futures `GET /fapi/v1/klines`.

Binance's klines are of trades while its live conditions use the bookTicker
mid price: within a gap the trade range stands for the mid's.
"""

from __future__ import annotations

import httpx

from cogmora_core.candles import MINUTE_MS, Candle
from cogmora_core.venues import SymbolType
from worker.gaps import CandleError
from worker.venues.base import candle, candle_number, first_minute, response_json

#: Klines per request at most, as Binance documents them (spot 1000, futures 1500).
ROWS = {SymbolType.SPOT: 1000, SymbolType.FUTURES: 1500}
PATHS = {SymbolType.SPOT: "/api/v3/klines", SymbolType.FUTURES: "/fapi/v1/klines"}


def parse_candles(body: object) -> list[Candle]:
    """Return the candles of a Binance klines answer, oldest first, or raise `CandleError`.

    Each kline is an array `[open time ms, open, high, low, close, volume,
    close time ms, …]` with prices as decimal strings.
    """
    if not isinstance(body, list):
        raise CandleError(f"answer {str(body)[:200]}")
    candles = []
    for row in body:
        if not isinstance(row, list) or len(row) < 5:
            raise CandleError(f"kline {str(row)[:100]}")
        start = row[0]
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise CandleError(f"kline open time {str(start)[:40]!r}")
        opened, high, low, closed = (candle_number(v) for v in row[1:5])
        if opened is None or high is None or low is None or closed is None:
            raise CandleError(f"kline {str(row)[:100]}")
        candles.append(candle(start, opened, high, low, closed, row))
    return sorted(candles, key=lambda c: c.start_ms)


async def fetch_candles(client: httpx.AsyncClient, api: str, market: SymbolType, symbol: str,
                        start_ms: int, end_ms: int) -> list[Candle]:
    """Return the one-minute candles of `symbol` from `start_ms` to `end_ms`, paging.

    Each request covers as many minutes as one answer holds, so no answer is cut short.
    """
    rows = ROWS[market]
    found: dict[int, Candle] = {}
    begin = first_minute(start_ms)
    while begin <= end_ms:
        until = min(end_ms, begin + rows * MINUTE_MS - 1)
        response = await client.get(f"{api}{PATHS[market]}", params={
            "symbol": symbol, "interval": "1m", "startTime": begin, "endTime": until,
            "limit": rows})
        for item in parse_candles(response_json(response)):
            found[item.start_ms] = item
        begin = until + 1
    return [found[start] for start in sorted(found)]
