"""Gap recovery: what should have executed while the worker or a feed was away.

When a symbol's subscription is acknowledged after a gap (the worker
restarted, or its connection dropped), the worker fetches the venue's
one-minute candles covering the gap (each venue's `candles.py`: KuCoin spot
`market/candles`, futures `kline/query`; Backpack `klines`, asked for as the
subscription is sent since Backpack acknowledges nothing) and runs every armed
level of the symbol through them, oldest first, before applying the live ticks
that arrived meanwhile. Backpack's candles are of trades while its live
conditions use the mid price: within a gap the trade range stands for the mid's.

The price each level fills at, and which candles count, are the core's rules
(`cogmora_core.candles`): at the level, or at the open of a candle that gapped
through it, the adverse level when a candle crosses both sides.

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
from dataclasses import replace
from decimal import Decimal

from cogmora_core.candles import MINUTE_MS, Candle, first_fill
from cogmora_core.errors import RetryableError
from cogmora_core.model import PositionLevels, Tick, TriggerLevel
from worker.book import Armed, Hit

# Candle and MINUTE_MS are the core's, named here too for the venues' candle parsers.
__all__ = ["MINUTE_MS", "ORIGIN", "Candle", "CandleError", "recover"]
log = logging.getLogger(__name__)
ORIGIN = "gap_recovery"


class CandleError(RetryableError):
    """The exchange's candle answer could not be used."""


def recover(armed: Armed, candles: Iterable[Candle], since_ms: int,
            peak: Decimal | None, levels_since_ms: int | None) -> Hit | None:
    """Return the hit `armed` should have had within `candles`, or None.

    The rules are the core's (`cogmora_core.candles.first_fill`): a candle
    counts when it ends after the gap's start (`since_ms`) and starts at or
    after the document's levels were set (`levels_since_ms`, DESIGN.md §3
    "No hindsight"); without that time (None) nothing counts. `peak` is the
    trailing stop's peak before the gap. Market orders and manual closes
    (`immediate`) wait for a live price.
    """
    if armed.immediate:
        return None
    levels: TriggerLevel | PositionLevels
    if armed.trigger is not None:
        levels = armed.trigger
    else:
        assert armed.position is not None
        levels = replace(armed.position, peak=peak)
    fill = first_fill(levels, candles, since_ms, levels_since_ms)
    if fill is None:
        return None
    return Hit(armed, Tick(armed.symbol, fill.price, time_ms=fill.start_ms), fill.peak, ORIGIN)
