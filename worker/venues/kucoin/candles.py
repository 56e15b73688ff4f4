"""KuCoin's one-minute candles (spot `market/candles`, futures `kline/query`) for catching up."""

from __future__ import annotations

import httpx

from cogmora_core.candles import MINUTE_MS, Candle
from cogmora_core.venues import SymbolType
from worker.gaps import CandleError
from worker.venues.base import candle, candle_number, first_minute, response_json

#: Rows per request, as KuCoin documents them.
SPOT_ROWS, FUTURES_ROWS = 1500, 500


def parse_candles(market: str, body: object) -> list[Candle]:
    """Return the candles of a KuCoin answer, oldest first, or raise `CandleError`.

    Spot rows are strings `[time s, open, close, high, low, volume, turnover]`,
    newest first; futures rows are numbers `[time ms, open, high, low, close, volume]`.
    """
    if not isinstance(body, dict) or body.get("code") != "200000":
        raise CandleError(f"answer {str(body)[:200]}")
    rows = body.get("data")
    if not isinstance(rows, list):
        raise CandleError("data is not a list")
    candles = []
    for row in rows:
        if not isinstance(row, list) or len(row) < 5:
            raise CandleError(f"row {str(row)[:100]}")
        values = [candle_number(v) for v in row[:5]]
        if any(v is None for v in values):
            raise CandleError(f"row {str(row)[:100]}")
        time_value, *prices = values
        assert time_value is not None
        if market == SymbolType.SPOT:
            opened, closed, high, low = prices
            start = int(time_value) * 1000
        else:
            opened, high, low, closed = prices
            start = int(time_value)
        assert opened is not None and high is not None and low is not None and closed is not None
        candles.append(candle(start, opened, high, low, closed, row))
    return sorted(candles, key=lambda c: c.start_ms)


async def fetch_candles(client: httpx.AsyncClient, api: str, market: SymbolType, symbol: str,
                        start_ms: int, end_ms: int) -> list[Candle]:
    """Return the one-minute candles of `symbol` from `start_ms` to `end_ms`, paging."""
    step = (SPOT_ROWS if market == SymbolType.SPOT else FUTURES_ROWS) * MINUTE_MS
    found: dict[int, Candle] = {}
    begin = first_minute(start_ms)
    while begin <= end_ms:
        until = min(end_ms, begin + step - 1)
        if market == SymbolType.SPOT:
            response = await client.get(f"{api}/api/v1/market/candles", params={
                "symbol": symbol, "type": "1min", "startAt": begin // 1000,
                "endAt": until // 1000 + 1})
        else:
            response = await client.get(f"{api}/api/v1/kline/query", params={
                "symbol": symbol, "granularity": 1, "from": begin, "to": until})
        for item in parse_candles(market, response_json(response)):
            found[item.start_ms] = item
        begin = until + 1
    return [found[start] for start in sorted(found)]
