"""Fills from one-minute candles: what a level should have done while no tick was seen.

When the worker catches up a gap (DESIGN.md §3), it has no ticks, only the
exchange's one-minute candles. The price is the conservative one a candle
can prove:

- a level the candle's range crossed fills **at the level**;
- a level the candle **opened** beyond (the price gapped through it) fills at
  the candle's **open**;
- when one candle crosses both a position's adverse level (stop-loss, trailing
  stop, liquidation) and its take-profit, the order inside the candle is
  unknown, so the adverse level is taken; among adverse levels the first one
  the price met (long: the highest) wins;
- a trailing stop is checked against the candle with the peak from before it,
  then its peak advances to the candle's favourable extreme.

**No hindsight.** A candle counts for a document when it ends after the gap's
start and starts at or after the document's levels were set: a candle that
began before may hold prices printed before the levels existed. Without that
time nothing counts. A `market` trigger or a manual close waits for a live
price: candles never fill them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from cogmora_core.model import PositionLevels, TriggerLevel
from cogmora_core.trading import (
    Crossing,
    advance_peak,
    adverse_crossing,
    close_reason,
    favourable_crossing,
    trailing_stop_price,
    trigger_crossing,
)

#: One candle's length.
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Candle:
    """One minute of trades: its start (ms) and open, high, low, close."""

    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal

    def extreme(self, crossing: Crossing) -> Decimal:
        """Return the furthest the price went this way: falling the low, rising the high."""
        return self.low if crossing is Crossing.FALLING else self.high


@dataclass(frozen=True, slots=True)
class CandleFill:
    """A level filled within a candle: the price, the candle's start and the trailing peak."""

    price: Decimal
    start_ms: int
    #: The trailing stop's peak when the level filled (positions with one).
    peak: Decimal | None = None


def trigger_fill(level: TriggerLevel, candle: Candle) -> Decimal | None:
    """Return the price a trigger fills at within `candle`, or None.

    The target when the candle's range reaches it, the open when the candle
    opened beyond it. A `market` trigger (no target) is never filled by a candle.
    """
    crossing = trigger_crossing(level.condition)
    target = level.target_price
    if crossing is None or target is None:
        return None
    if not crossing.crossed(target, candle.extreme(crossing)):
        return None
    return candle.open if crossing.crossed(target, candle.open) else target


def position_fill(levels: PositionLevels, candle: Candle) -> tuple[Decimal | None, Decimal | None]:
    """Return (the price `levels` close at within `candle` or None, the trailing peak after it).

    `levels.peak` is the trailing stop's peak from before the candle. Opened
    beyond any level: the open. Else the first adverse level the range
    crossed (stop-loss, liquidation, trailing stop at the old peak), else the
    take-profit; when nothing fills, the peak advances to the candle's
    favourable extreme.
    """
    peak = levels.peak
    if close_reason(levels, candle.open) is not None:
        return candle.open, peak  # opened beyond a level: gapped through
    side = levels.position_type
    adverse = [p for p in (levels.stop_loss, levels.liquidation_price) if p is not None]
    if levels.trailing_stop is not None and peak is not None:
        adverse.append(trailing_stop_price(side, levels.trailing_stop, peak))
    falling_to = adverse_crossing(side)
    worst = candle.extreme(falling_to)
    crossed = [p for p in adverse if falling_to.crossed(p, worst)]
    if crossed:
        return falling_to.first_met(crossed), peak
    rising_to = favourable_crossing(side)
    best = candle.extreme(rising_to)
    if levels.take_profit is not None and rising_to.crossed(levels.take_profit, best):
        return levels.take_profit, peak
    if levels.trailing_stop is not None:
        peak = advance_peak(side, levels.trailing_stop, peak, best)
    return None, peak


def counts(candle: Candle, since_ms: int, levels_since_ms: int) -> bool:
    """Return whether `candle` may fill a level set at `levels_since_ms` in a gap from `since_ms`.

    It must end after the gap began and start at or after the levels were set.
    """
    return candle.start_ms + MINUTE_MS > since_ms and candle.start_ms >= levels_since_ms


def first_fill(levels: TriggerLevel | PositionLevels, candles: Iterable[Candle], since_ms: int,
               levels_since_ms: int | None) -> CandleFill | None:
    """Return the first fill of `levels` within `candles` (oldest first), or None.

    Only candles that `count` are walked; with no time for the levels
    (`levels_since_ms` None) nothing counts. A position's `peak` is its
    trailing stop's peak from before the gap, advanced candle by candle.
    """
    if levels_since_ms is None:
        return None
    peak = levels.peak if isinstance(levels, PositionLevels) else None
    for candle in candles:
        if not counts(candle, since_ms, levels_since_ms):
            continue
        if isinstance(levels, TriggerLevel):
            price = trigger_fill(levels, candle)
        else:
            price, peak = position_fill(replace(levels, peak=peak), candle)
        if price is not None:
            return CandleFill(price, candle.start_ms, peak)
    return None
