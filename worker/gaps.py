"""Gap recovery: what should have executed while the worker or a feed was away.

When a symbol's subscription is acknowledged after a gap (the worker
restarted, or its connection dropped), the worker fetches the exchange's
one-minute candles covering the gap (KuCoin: spot `market/candles`, futures
`kline/query`; Backpack: `klines`, asked for as the subscription is sent since
Backpack acknowledges nothing) and runs every armed level of the symbol
through them, oldest first, before applying the live ticks that arrived
meanwhile. Backpack's candles are of trades while its live conditions use the
mid price: within a gap the trade range stands for the mid's.

The price is the conservative one a candle can prove:
- a level the candle's range crossed fills **at the level**;
- a level the candle **opened** beyond (the price gapped through it) fills at
  the candle's **open**;
- when one candle crosses both a position's adverse level (stop-loss, trailing
  stop, liquidation) and its take-profit, the order inside the candle is
  unknown, so the adverse level is taken; among adverse levels the first one
  the price met (long: the highest) wins;
- a trailing stop is checked against the candle with the peak from before it,
  then its peak advances to the candle's favourable extreme.

A candle counts for a document when it ends after the gap's start and starts at
or after the document's levels were set (DESIGN.md §3, "No hindsight"): the
time is the document's server update time when the worker first saw those
levels, never earlier than the edit itself. Prices from before a level existed
never fire it (the minute it was set in is left to live ticks). A symbol that
had no subscription before (never watched, or watched again after nothing was
armed on it) has no gap at all: the worker keeps the last tick time per symbol
(`workerState` heartbeats hold one per symbol) and only those symbols recover.
Recovered marks carry `closeRequest.origin = 'gap_recovery'` on positions and
`origin: 'gap_recovery'` on executions, and the tick they are priced at has no
bid/ask, so the fill is exactly the recovered price.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from cogmora_core.errors import RetryableError
from cogmora_core.model import Condition, PositionType, Tick
from cogmora_core.money import parse_decimal_string, parse_number
from cogmora_core.trading import advance_peak, close_reason, trailing_stop_price
from worker.book import Armed, Hit

log = logging.getLogger(__name__)
MINUTE_MS = 60_000
ORIGIN = "gap_recovery"
#: Rows per request, as KuCoin documents them.
SPOT_ROWS, FUTURES_ROWS = 1500, 500
#: Minutes asked of Backpack per request; a shorter answer is paged past.
BACKPACK_ROWS = 1000


@dataclass(frozen=True, slots=True)
class Candle:
    """One minute of trades: its start (ms) and open, high, low, close."""

    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class CandleError(RetryableError):
    """The exchange's candle answer could not be used."""


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
        values = [_number(v) for v in row[:5]]
        if any(v is None for v in values):
            raise CandleError(f"row {str(row)[:100]}")
        time_value, *prices = values
        assert time_value is not None
        if market == "spot":
            opened, closed, high, low = prices
            start = int(time_value) * 1000
        else:
            opened, high, low, closed = prices
            start = int(time_value)
        assert opened is not None and high is not None and low is not None and closed is not None
        candles.append(_candle(start, opened, high, low, closed, row))
    return sorted(candles, key=lambda c: c.start_ms)


async def fetch_candles(client: httpx.AsyncClient, venue: str, api: str, market: str,
                        symbol: str, start_ms: int, end_ms: int) -> list[Candle]:
    """Return the one-minute candles of `symbol` from `start_ms` to `end_ms`, paging."""
    if venue == "backpack":
        return await _fetch_backpack(client, api, symbol, start_ms, end_ms)
    return await _fetch_kucoin(client, api, market, symbol, start_ms, end_ms)


async def _fetch_kucoin(client: httpx.AsyncClient, api: str, market: str, symbol: str,
                        start_ms: int, end_ms: int) -> list[Candle]:
    step = (SPOT_ROWS if market == "spot" else FUTURES_ROWS) * MINUTE_MS
    found: dict[int, Candle] = {}
    begin = start_ms - start_ms % MINUTE_MS
    while begin <= end_ms:
        until = min(end_ms, begin + step - 1)
        if market == "spot":
            response = await client.get(f"{api}/api/v1/market/candles", params={
                "symbol": symbol, "type": "1min", "startAt": begin // 1000,
                "endAt": until // 1000 + 1})
        else:
            response = await client.get(f"{api}/api/v1/kline/query", params={
                "symbol": symbol, "granularity": 1, "from": begin, "to": until})
        for candle in parse_candles(market, _json(response)):
            found[candle.start_ms] = candle
        begin = until + 1
    return [found[start] for start in sorted(found)]


async def _fetch_backpack(client: httpx.AsyncClient, api: str, symbol: str,
                          start_ms: int, end_ms: int) -> list[Candle]:
    found: dict[int, Candle] = {}
    begin = start_ms - start_ms % MINUTE_MS
    while begin <= end_ms:
        until = min(end_ms, begin + BACKPACK_ROWS * MINUTE_MS - 1)
        response = await client.get(f"{api}/api/v1/klines", params={
            "symbol": symbol, "interval": "1m", "startTime": begin // 1000,
            "endTime": until // 1000 + 1})
        page = [c for c in parse_backpack_candles(_json(response)) if begin <= c.start_ms]
        for candle in page:
            found[candle.start_ms] = candle
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
        prices = [_number(v) for v in raw]
        try:
            start = datetime.strptime(str(row.get("start")), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise CandleError(f"kline start {str(row.get('start'))[:40]!r}") from None
        opened, high, low, closed = prices
        if opened is None or high is None or low is None or closed is None:
            raise CandleError(f"kline {str(row)[:100]}")
        candles.append(_candle(int(start.replace(tzinfo=UTC).timestamp() * 1000),
                               opened, high, low, closed, row))
    return sorted(candles, key=lambda c: c.start_ms)


def _candle(start_ms: int, opened: Decimal, high: Decimal, low: Decimal, closed: Decimal,
            row: object) -> Candle:
    if not (low <= opened <= high and low <= closed <= high and low > 0):
        raise CandleError(f"row {str(row)[:100]} is not a candle")
    return Candle(start_ms, opened, high, low, closed)


def _number(value: object) -> Decimal | None:
    """Return a candle value: a decimal string (spot, Backpack) or a JSON number (futures)."""
    return parse_decimal_string(value) if isinstance(value, str) else parse_number(value)


def _json(response: httpx.Response) -> object:
    if response.status_code != 200:
        raise CandleError(f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        return response.json()
    except ValueError:
        raise CandleError(f"not JSON: {response.text[:200]}") from None


def recover(armed: Armed, candles: Iterable[Candle], since_ms: int,
            peak: Decimal | None, levels_since_ms: int | None) -> Hit | None:
    """Return the hit `armed` should have had within `candles`, or None.

    A candle counts when it ends after the gap's start (`since_ms`) and starts
    at or after the document's levels were set (`levels_since_ms`, DESIGN.md
    §3 "No hindsight"): a candle that began before may hold prices printed
    before the levels existed, so it is skipped. Without that time (None)
    nothing counts. `peak` is the trailing stop's peak before the gap.
    """
    if levels_since_ms is None:
        return None
    for candle in candles:
        if candle.start_ms + MINUTE_MS <= since_ms or candle.start_ms < levels_since_ms:
            continue
        if armed.trigger is not None:
            price = _trigger_price(armed, candle)
        else:
            price, peak = _position_price(armed, candle, peak)
        if price is not None:
            return Hit(armed, Tick(armed.symbol, price, time_ms=candle.start_ms), peak, ORIGIN)
    return None


def _trigger_price(armed: Armed, candle: Candle) -> Decimal | None:
    level = armed.trigger
    assert level is not None
    if armed.immediate or level.target_price is None:
        return None  # a market order waits for a live price
    target = level.target_price
    if level.condition is Condition.BELOW and candle.low <= target:
        return min(candle.open, target)
    if level.condition is Condition.ABOVE and candle.high >= target:
        return max(candle.open, target)
    return None


def _position_price(armed: Armed, candle: Candle,
                    peak: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    position = armed.position
    assert position is not None
    if armed.immediate:
        return None, peak  # a manual close waits for a live price
    long = position.position_type is PositionType.LONG
    levels = replace(position, peak=peak)
    if close_reason(levels, candle.open) is not None:
        return candle.open, peak  # opened beyond a level: gapped through
    adverse = [p for p in (position.stop_loss, position.liquidation_price) if p is not None]
    if position.trailing_stop is not None and peak is not None:
        adverse.append(trailing_stop_price(position.position_type, position.trailing_stop,
                                           peak))
    extreme = candle.low if long else candle.high
    crossed = [p for p in adverse if (extreme <= p if long else extreme >= p)]
    if crossed:
        return (max(crossed) if long else min(crossed)), peak
    take_profit = position.take_profit
    if take_profit is not None and (candle.high >= take_profit if long
                                    else candle.low <= take_profit):
        return take_profit, peak
    if position.trailing_stop is not None:
        peak = advance_peak(position.position_type, position.trailing_stop, peak,
                            candle.high if long else candle.low)
    return None, peak

