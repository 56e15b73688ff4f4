"""Gap recovery: what should have executed while the worker or a feed was away.

When a symbol's subscription is acknowledged after a gap (the worker
restarted, or its connection dropped), the worker fetches the venue's
one-minute candles covering the gap (each venue's `candles.py`: KuCoin spot
`market/candles`, futures `kline/query`; Backpack `klines`, asked for as the
subscription is sent since Backpack acknowledges nothing) and runs every armed
level of the symbol through them, oldest first, before applying the live ticks
that arrived meanwhile. Backpack's candles are of trades while its live
conditions use the mid price: within a gap the trade range stands for the mid's.

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
from decimal import Decimal

from cogmora_core.errors import RetryableError
from cogmora_core.model import Condition, PositionType, Tick
from cogmora_core.trading import advance_peak, close_reason, trailing_stop_price
from worker.book import Armed, Hit

log = logging.getLogger(__name__)
MINUTE_MS = 60_000
ORIGIN = "gap_recovery"


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

