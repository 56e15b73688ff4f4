"""Fills from one-minute candles (`cogmora_core.candles`), on the core's level types.

Exact prices worked out by hand: a level fills at itself when a candle's range
reaches it, at the open when the candle opened beyond it, and a candle that
crosses both sides of a position takes the adverse side.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora_core.candles import (
    MINUTE_MS,
    Candle,
    CandleFill,
    counts,
    first_fill,
    position_fill,
    trigger_fill,
)
from cogmora_core.model import Condition, PositionLevels, PositionType, TrailingStop, TriggerLevel
from cogmora_core.trading import Crossing

T0 = 1_763_251_200_000  # 2025-11-16 00:00:00 UTC, a minute boundary
LONG, SHORT = PositionType.LONG, PositionType.SHORT


def candle(minute: int, o: str, h: str, low: str, c: str) -> Candle:
    return Candle(T0 + minute * MINUTE_MS, D(o), D(h), D(low), D(c))


def long_levels(stop: str | None = "95", take: str | None = "110",
                liquidation: str | None = "90.5", trailing: TrailingStop | None = None,
                peak: str | None = None) -> PositionLevels:
    """A 10x long at 100: liquidation 90.5, stop 95, take-profit 110 unless told."""
    return PositionLevels(LONG, D(liquidation) if liquidation else None,
                          D(stop) if stop else None, D(take) if take else None, trailing,
                          D(peak) if peak else None)


def short_levels(stop: str | None = "105", take: str | None = "90",
                 liquidation: str | None = "109.5") -> PositionLevels:
    """A 10x short at 100: liquidation 109.5, stop 105, take-profit 90 unless told."""
    return PositionLevels(SHORT, D(liquidation) if liquidation else None,
                          D(stop) if stop else None, D(take) if take else None)


def test_a_candle_reaches_falling_levels_with_its_low_and_rising_ones_with_its_high() -> None:
    bar = candle(0, "100", "101.5", "99.25", "99.5")
    assert bar.extreme(Crossing.FALLING) == D("99.25")
    assert bar.extreme(Crossing.RISING) == D("101.5")


@pytest.mark.parametrize(("condition", "target", "bar", "expected"), [
    (Condition.BELOW, "60000", ("60100", "60200", "59990", "60050"), D("60000")),
    (Condition.BELOW, "60000", ("59000", "59500", "58800", "59100"), D("59000")),
    (Condition.BELOW, "60000", ("60000", "60200", "60000", "60050"), D("60000")),
    (Condition.BELOW, "60000", ("60100", "60200", "60000.01", "60050"), None),
    (Condition.ABOVE, "61000", ("60900", "61005", "60800", "60950"), D("61000")),
    (Condition.ABOVE, "61000", ("61500", "61600", "61400", "61550"), D("61500")),
    (Condition.ABOVE, "61000", ("60900", "60999.99", "60800", "60950"), None),
])
def test_a_trigger_fills_at_its_target_or_at_the_open_beyond_it(
        condition: Condition, target: str, bar: tuple[str, str, str, str],
        expected: D | None) -> None:
    assert trigger_fill(TriggerLevel(condition, D(target)), candle(0, *bar)) == expected


def test_a_market_trigger_is_never_filled_by_a_candle() -> None:
    crash = candle(0, "1", "1000000", "0.5", "1")
    assert trigger_fill(TriggerLevel(Condition.MARKET, None), crash) is None


@pytest.mark.parametrize(("levels", "bar", "expected"), [
    # Long: the stop crossed inside the candle fills at 95.
    (long_levels(), ("97", "97.5", "94", "96.5"), D("95")),
    # Long: opened below the stop (gapped through): the open, 93.
    (long_levels(), ("93", "94", "92", "93.5"), D("93")),
    # Long: both stop and take-profit in one candle: the stop.
    (long_levels(), ("100", "111", "94", "105"), D("95")),
    # Long: stop 95 and liquidation 90.5 both crossed: falling, 95 came first.
    (long_levels(), ("100", "100", "90", "91"), D("95")),
    # Long: opened below the liquidation: the open.
    (long_levels(), ("90", "92", "89", "91"), D("90")),
    # Long: the take-profit alone.
    (long_levels(), ("104", "110.2", "103", "109"), D("110")),
    (long_levels(), ("104", "109.99", "95.01", "109"), None),
    # Short mirrors it: stop 105 and liquidation 109.5 both crossed, 105 came first.
    (short_levels(), ("100", "112", "100", "111"), D("105")),
    (short_levels(), ("106.5", "107", "104", "105"), D("106.5")),
    (short_levels(), ("100", "106", "89", "95"), D("105")),
    (short_levels(), ("95", "96", "89.75", "90"), D("90")),
    (short_levels(), ("95", "104.99", "90.01", "100"), None),
])
def test_a_position_fills_at_the_first_level_the_candle_proves(
        levels: PositionLevels, bar: tuple[str, str, str, str], expected: D | None) -> None:
    price, peak = position_fill(levels, candle(0, *bar))
    assert (price, peak) == (expected, None)


def test_a_trailing_stop_is_checked_at_the_old_peak_then_the_peak_advances() -> None:
    trailing = TrailingStop(distance=D(2))
    levels = long_levels(stop=None, take=None, trailing=trailing, peak="100")
    # Stop 98 not met by the low of 99.5; the peak moves to the high, 108.
    assert position_fill(levels, candle(0, "100", "108", "99.5", "107.5")) == (None, D(108))
    # At peak 108 the stop is 106: met inside the next candle.
    moved = long_levels(stop=None, take=None, trailing=trailing, peak="108")
    assert position_fill(moved, candle(1, "107", "107.2", "105", "105.5")) == (D(106), D(108))


def test_a_trailing_stop_waits_for_its_activation_and_follows_a_percent() -> None:
    trailing = TrailingStop(percent=D("2.5"), activation_price=D(104))
    levels = long_levels(stop=None, take=None, liquidation=None, trailing=trailing)
    # Below the activation price: no peak yet.
    assert position_fill(levels, candle(0, "100", "103.99", "99", "101")) == (None, None)
    # Reaching 105 activates it at 105; stop 105 × 0.975 = 102.375 is checked next candle.
    assert position_fill(levels, candle(1, "101", "105", "100", "104")) == (None, D(105))
    active = long_levels(stop=None, take=None, liquidation=None, trailing=trailing, peak="105")
    assert position_fill(active, candle(2, "104", "104.5", "102", "102.5")) == (
        D("102.375"), D(105))


@pytest.mark.parametrize(("start_minute", "since_minute", "levels_minute", "expected"), [
    (0, 0, 0, True),
    (0, 1, 0, False),  # ended as the gap began
    (1, 1, 0, True),
    (0, 0, 1, False),  # began before the levels were set
    (2, 0, 1, True),
])
def test_a_candle_counts_from_the_gap_and_from_the_levels(
        start_minute: int, since_minute: int, levels_minute: int, expected: bool) -> None:
    bar = candle(start_minute, "1", "1", "1", "1")
    assert counts(bar, T0 + since_minute * MINUTE_MS, T0 + levels_minute * MINUTE_MS) is expected
    # The gap's start within a minute: a candle that ends after it counts.
    assert counts(candle(0, "1", "1", "1", "1"), T0 + MINUTE_MS - 1, T0) is True


def test_the_first_fill_walks_counted_candles_oldest_first() -> None:
    candles = [candle(0, "97", "97", "94", "96"), candle(1, "97", "98", "96", "97"),
               candle(2, "96.5", "97", "95.5", "96"), candle(3, "96", "96", "94.5", "95")]
    # Set during the first minute: its low of 94 is hindsight; minute 3 fills at 95.
    assert first_fill(long_levels(), candles, T0, T0 + 1) == CandleFill(
        D(95), T0 + 3 * MINUTE_MS, None)
    # Set before the gap: the first candle fills.
    assert first_fill(long_levels(), candles, T0, T0) == CandleFill(D(95), T0, None)
    # No time for the levels: nothing counts.
    assert first_fill(long_levels(), candles, T0, None) is None
    # A trigger walks the same way.
    below = TriggerLevel(Condition.BELOW, D("95.5"))
    assert first_fill(below, candles[1:], T0, T0) == CandleFill(D("95.5"), T0 + 2 * MINUTE_MS)


def test_the_first_fill_carries_the_trailing_peak_across_candles() -> None:
    levels = long_levels(stop=None, take=None, trailing=TrailingStop(distance=D(2)),
                         peak="100")
    candles = [candle(0, "100", "108", "99.5", "107.5"), candle(1, "107", "107.2", "105", "105.5")]
    assert first_fill(levels, candles, T0, T0) == CandleFill(D(106), T0 + MINUTE_MS, D(108))
    # Nothing filled: no fill, whatever the peak did.
    assert first_fill(levels, candles[:1], T0, T0) is None
