"""Backpack's one-minute klines for catching up a gap.

Backpack's klines are of trades while its live conditions use the mid price:
within a gap the trade range stands for the mid's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from cogmora_core.candles import MINUTE_MS, Candle
from worker.gaps import CandleError
from worker.venues.base import candle, candle_number, first_minute, response_json

#: Minutes asked of Backpack per request; a shorter answer is paged past.
BACKPACK_ROWS = 1000


async def fetch_candles(client: httpx.AsyncClient, api: str, symbol: str,
                        start_ms: int, end_ms: int) -> list[Candle]:
    """Return the one-minute candles of `symbol` from `start_ms` to `end_ms`, paging."""
    found: dict[int, Candle] = {}
    begin = first_minute(start_ms)
    while begin <= end_ms:
        until = min(end_ms, begin + BACKPACK_ROWS * MINUTE_MS - 1)
        response = await client.get(f"{api}/api/v1/klines", params={
            "symbol": symbol, "interval": "1m", "startTime": begin // 1000,
            "endTime": until // 1000 + 1})
        page = [c for c in parse_backpack_candles(response_json(response)) if begin <= c.start_ms]
        for item in page:
            found[item.start_ms] = item
        last = max((c.start_ms for c in page), default=None)
        # An answer that may have been cut short goes on after its last candle
        # (a quiet end of the window costs one more request).
        begin = min(until + 1, last + MINUTE_MS if last is not None else until + 1)
    return [found[start] for start in sorted(found)]


def parse_backpack_candles(body: object) -> list[Candle]:
    """Return the candles of a Backpack klines answer, oldest first, or raise `CandleError`.

    Each kline is an object with `start` ("YYYY-MM-DD HH:MM:SS", UTC) and
    `open`/`high`/`low`/`close` as strings; a minute without trades (null
    prices) is no candle.
    """
    if not isinstance(body, list):
        raise CandleError(f"answer {str(body)[:200]}")
    candles = []
    for row in body:
        if not isinstance(row, dict):
            raise CandleError(f"kline {str(row)[:100]}")
        raw = [row.get(k) for k in ("open", "high", "low", "close")]
        if all(v is None for v in raw):
            continue
        prices = [candle_number(v) for v in raw]
        try:
            start = datetime.strptime(str(row.get("start")), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise CandleError(f"kline start {str(row.get('start'))[:40]!r}") from None
        opened, high, low, closed = prices
        if opened is None or high is None or low is None or closed is None:
            raise CandleError(f"kline {str(row)[:100]}")
        candles.append(candle(int(start.replace(tzinfo=UTC).timestamp() * 1000),
                              opened, high, low, closed, row))
    return sorted(candles, key=lambda c: c.start_ms)
