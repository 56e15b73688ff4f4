"""Gap recovery: candle answers parsed exactly, and the conservative price of every level."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.support.builders import position_doc, trigger_doc
from worker import gaps
from worker.book import Armed
from worker.documents import armed_position, armed_trigger
from worker.gaps import MINUTE_MS, ORIGIN, Candle, CandleError
from worker.venues.backpack.candles import parse_backpack_candles
from worker.venues.kucoin.candles import parse_candles

T0 = 1_763_251_200_000  # 2025-11-16 00:00:00 UTC, a minute boundary


def candle(minute: int, o: str, h: str, low: str, c: str) -> Candle:
    return Candle(T0 + minute * MINUTE_MS, D(o), D(h), D(low), D(c))


def recover(armed: Armed, candles: list[Candle], since_ms: int, peak: D | None = None,
            levels_since_ms: int = T0) -> object:
    """Run `gaps.recover`; unless told, the levels were set as the first candle began."""
    return gaps.recover(armed, candles, since_ms, peak, levels_since_ms)


def long_position(**details: object) -> Armed:
    """10x long at 100, liquidation 90.5: stop 95 and take-profit 110 unless told."""
    levels = {"status": "open", "stopLoss": 95, "takeProfit": 110, **details}
    armed = armed_position("users/u/openPositions/p", position_doc(details=levels))
    assert armed is not None
    return armed


def test_kucoin_spot_rows_are_strings_newest_first_and_come_back_oldest_first() -> None:
    body = {"code": "200000", "data": [
        ["1763251260", "100.5", "99", "101", "98.5", "12.1", "1210.3"],
        ["1763251200", "100", "100.5", "100.7", "99.9", "3", "300"],
    ]}
    assert parse_candles("spot", body) == [candle(0, "100", "100.7", "99.9", "100.5"),
                                           candle(1, "100.5", "101", "98.5", "99")]


def test_kucoin_futures_rows_are_numbers_in_ms_open_high_low_close() -> None:
    body = {"code": "200000", "data": [[T0, 100, 100.7, 99.9, 100.5, 7]]}
    assert parse_candles("futures", body) == [candle(0, "100", "100.7", "99.9", "100.5")]


def test_backpack_klines_are_objects_with_utc_starts_and_quiet_minutes_are_skipped() -> None:
    body = [
        {"start": "2025-11-16 00:01:00", "end": "2025-11-16 00:02:00", "open": "186.2",
         "high": "186.9", "low": "185.7", "close": "186.0", "volume": "41.5",
         "quoteVolume": "7722.1", "trades": "19"},
        {"start": "2025-11-16 00:00:00", "end": "2025-11-16 00:01:00", "open": None,
         "high": None, "low": None, "close": None, "volume": "0", "quoteVolume": "0",
         "trades": "0"},
    ]
    assert parse_backpack_candles(body) == [candle(1, "186.2", "186.9", "185.7", "186.0")]


@pytest.mark.parametrize("body", [
    {"code": "429000", "msg": "Too Many Requests"},
    {"code": "200000", "data": "rows"},
    {"code": "200000", "data": [["1763251200", "100", "x", "101", "99"]]},
    {"code": "200000", "data": [["1763251200", "100"]]},
    {"code": "200000", "data": [["1763251200", "100", "100", "99", "101"]]},  # high < low
    {"code": "200000", "data": [["1763251200", "0", "0", "0", "0"]]},
])
def test_a_kucoin_answer_that_is_not_candles_is_refused(body: object) -> None:
    with pytest.raises(CandleError):
        parse_candles("spot", body)


@pytest.mark.parametrize("body", [
    {"code": "INVALID_CLIENT_REQUEST", "message": "Invalid symbol"},
    [["2025-11-16 00:00:00", "1", "1", "1", "1"]],
    [{"start": "yesterday", "open": "1", "high": "1", "low": "1", "close": "1"}],
    [{"start": "2025-11-16 00:00:00", "open": "1", "high": None, "low": "1", "close": "1"}],
    [{"start": "2025-11-16 00:00:00", "open": "3", "high": "2", "low": "1", "close": "1"}],
])
def test_a_backpack_answer_that_is_not_klines_is_refused(body: object) -> None:
    with pytest.raises(CandleError):
        parse_backpack_candles(body)


def test_a_stop_crossed_inside_a_candle_fills_at_its_level() -> None:
    hit = recover(long_position(), [candle(0, "99", "99.5", "97", "98"),
                                    candle(1, "97", "97.5", "94", "96.5")], T0)
    assert hit is not None
    assert (hit.tick.price, hit.tick.time_ms, hit.origin) == (D(95), T0 + MINUTE_MS, ORIGIN)
    assert (hit.tick.best_bid, hit.tick.best_ask) == (None, None)  # the fill is the level


def test_a_candle_that_opened_beyond_the_stop_fills_at_its_open() -> None:
    hit = recover(long_position(), [candle(0, "93", "94", "92", "93.5")], T0)
    assert hit is not None and hit.tick.price == D(93)


def test_one_candle_across_both_stop_and_take_profit_takes_the_stop() -> None:
    hit = recover(long_position(), [candle(0, "100", "111", "94", "105")], T0)
    assert hit is not None and hit.tick.price == D(95)


def test_the_first_adverse_level_met_wins_for_a_long() -> None:
    # stop 95 and liquidation 90.5 both crossed: falling, the price met 95 first.
    hit = recover(long_position(), [candle(0, "100", "100", "90", "91")], T0)
    assert hit is not None and hit.tick.price == D(95)


def test_a_take_profit_reached_alone_fills_at_its_level() -> None:
    hit = recover(long_position(), [candle(0, "104", "110.2", "103", "109")], T0)
    assert hit is not None and hit.tick.price == D(110)


def test_candles_before_the_gap_or_before_the_document_do_not_count() -> None:
    candles = [candle(0, "97", "97", "94", "96"), candle(1, "97", "98", "96", "97")]
    # The first candle ended before the gap began.
    assert recover(long_position(), candles, since_ms=T0 + MINUTE_MS) is None
    # The first candle began before the position's levels were set.
    assert recover(long_position(), candles, T0, levels_since_ms=T0 + 1) is None
    assert recover(long_position(), candles, T0, levels_since_ms=T0) is not None
    # Without proof of when the levels were set, nothing is caught up.
    assert gaps.recover(long_position(), candles, T0, None, None) is None


def test_a_level_set_during_the_gap_fires_only_on_candles_after_it() -> None:
    # The low of 94 came in the first minute; the stop was set in the second.
    candles = [candle(0, "97", "97", "94", "96"), candle(1, "97", "98", "96", "97"),
               candle(2, "96.5", "97", "95.5", "96")]
    assert recover(long_position(), candles, T0, levels_since_ms=T0 + 1) is None
    hit = recover(long_position(), [*candles, candle(3, "96", "96", "94.5", "95")], T0,
                  levels_since_ms=T0 + 1)
    assert hit is not None and hit.tick.price == D(95) and hit.tick.time_ms == T0 + 3 * MINUTE_MS


@pytest.mark.parametrize(("condition", "target", "bar", "expected"), [
    ("below", 60000, ("60100", "60200", "59990", "60050"), D(60000)),
    ("below", 60000, ("59000", "59500", "58800", "59100"), D(59000)),
    ("below", 60000, ("60100", "60200", "60001", "60050"), None),
    ("above", 61000, ("60900", "61005", "60800", "60950"), D(61000)),
    ("above", 61000, ("61500", "61600", "61400", "61550"), D(61500)),
])
def test_a_trigger_fires_at_its_target_or_the_open_beyond_it(
        condition: str, target: int, bar: tuple[str, str, str, str],
        expected: D | None) -> None:
    armed = armed_trigger("users/u/tradeTriggers/t",
                          trigger_doc(condition=condition, targetPrice=target))
    hit = recover(armed, [candle(0, *bar)], T0)
    assert (hit.tick.price if hit is not None else None) == expected


def test_market_orders_and_manual_closes_wait_for_a_live_price() -> None:
    market = armed_trigger("users/u/tradeTriggers/m", trigger_doc(condition="market",
                                                                 targetPrice=None))
    closing = armed_position("users/u/openPositions/c", position_doc(
        details={"status": "closing", "closeRequest": {"reason": "manual"}}))
    assert closing is not None and closing.immediate
    crash = [candle(0, "1", "1000000", "0.5", "1")]
    assert recover(market, crash, T0) is None
    assert recover(closing, crash, T0) is None


def test_a_trailing_stop_advances_through_the_gap_then_fires_at_its_moved_level() -> None:
    armed = long_position(stopLoss=None, takeProfit=None, trailingStop={"distance": 2})
    candles = [candle(0, "100", "108", "99.5", "107.5"),  # peak 100 → 108; stop 98 not met
               candle(1, "107", "107.2", "105", "105.5")]  # stop 106 met
    hit = recover(armed, candles, T0, peak=D(100))
    assert hit is not None
    assert (hit.tick.price, hit.peak, hit.tick.time_ms) == (D(106), D(108), T0 + MINUTE_MS)
