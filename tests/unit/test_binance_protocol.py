"""Binance's protocol, Sans-I/O: frames as Binance documents them, exact ticks, subscriptions."""

from __future__ import annotations

from decimal import Decimal as D

import orjson
import pytest

from cogmora_core.model import Tick
from cogmora_core.venues import SymbolType, Venue
from localkucoin.binance import LocalBinance
from worker.venues.base import FrameError, Funding, FundingClock, MarkPrice
from worker.venues.binance.protocol import (
    MAX_STREAMS_PER_MESSAGE,
    Ack,
    ErrorFrame,
    Shutdown,
    Subscriptions,
    book_stream,
    book_symbols,
    mark_stream,
    parse_frame,
)

SPOT, FUTURES = SymbolType.SPOT, SymbolType.FUTURES
#: The documented examples (spot web-socket-streams.md; USDⓈ-M "Individual Symbol Book
#: Ticker Streams" and "Mark Price Stream"), wrapped as combined streams.
SPOT_BOOK = {"stream": "bnbusdt@bookTicker", "data": {
    "u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
    "a": "25.36520000", "A": "40.66000000"}}
FUTURES_BOOK = {"stream": "bnbusdt@bookTicker", "data": {
    "e": "bookTicker", "u": 400900217, "E": 1568014460893, "T": 1568014460891, "s": "BNBUSDT",
    "b": "25.35190000", "B": "31.21000000", "a": "25.36520000", "A": "40.66000000"}}
MARK = {"stream": "btcusdt@markPrice@1s", "data": {
    "e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
    "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000}}


def raw(frame: object) -> bytes:
    return orjson.dumps(frame)


def test_a_spot_book_ticker_is_an_exact_mid_tick_of_the_spot_market_without_a_time() -> None:
    tick = parse_frame(raw(SPOT_BOOK), SPOT)
    assert tick == Tick("BNBUSDT", D("25.35855"), D("25.35190000"), D("25.36520000"), None)
    assert isinstance(tick, Tick)
    assert (tick.venue, tick.symbol_type, tick.market) == (
        Venue.BINANCE, SPOT, ("binance", "spot", "BNBUSDT"))


def test_a_futures_book_ticker_is_a_tick_of_the_futures_market_at_its_event_time() -> None:
    tick = parse_frame(raw(FUTURES_BOOK), FUTURES)
    assert tick == Tick("BNBUSDT", D("25.35855"), D("25.35190000"), D("25.36520000"),
                        1568014460893)
    assert isinstance(tick, Tick)
    assert tick.market == ("binance", "futures", "BNBUSDT")


def test_the_same_symbol_in_the_two_markets_is_two_markets() -> None:
    spot = parse_frame(raw({**SPOT_BOOK, "stream": "btcusdt@bookTicker",
                            "data": {**SPOT_BOOK["data"], "s": "BTCUSDT"}}), SPOT)
    futures = parse_frame(raw({**FUTURES_BOOK, "stream": "btcusdt@bookTicker",
                               "data": {**FUTURES_BOOK["data"], "s": "BTCUSDT"}}), FUTURES)
    assert isinstance(spot, Tick) and isinstance(futures, Tick)
    assert spot.symbol == futures.symbol == "BTCUSDT"
    assert spot.market != futures.market


def test_the_mid_is_exact_to_the_last_place() -> None:
    frame = {**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "b": "0.000000000001",
                                   "a": "0.000000000002"}}
    tick = parse_frame(raw(frame), SPOT)
    assert isinstance(tick, Tick) and tick.price == D("0.000000000002")  # rounded half even
    frame = {**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "b": "87956.1", "a": "87956.1"}}
    tick = parse_frame(raw(frame), SPOT)
    assert isinstance(tick, Tick) and tick.price == D("87956.1")


def test_a_mark_price_carries_the_funding_of_the_running_interval() -> None:
    assert parse_frame(raw(MARK), FUTURES) == MarkPrice(
        "BTCUSDT", D("11794.15000000"), D("0.00038167"), 1562306400000, 1562305380000)
    three_seconds = {**MARK, "stream": "btcusdt@markPrice"}
    assert isinstance(parse_frame(raw(three_seconds), FUTURES), MarkPrice)


def test_funding_settles_when_the_next_funding_time_moves_on() -> None:
    clock = FundingClock()
    first = parse_frame(raw(MARK), FUTURES)
    assert isinstance(first, MarkPrice) and clock.observe(first) is None
    after = {**MARK, "data": {**MARK["data"], "E": 1562306400500, "p": "11800",
                              "r": "-0.0001", "T": 1562306400000 + 8 * 3_600_000}}
    second = parse_frame(raw(after), FUTURES)
    assert isinstance(second, MarkPrice)
    assert clock.observe(second) == Funding("BTCUSDT", D("0.00038167"), 1562306400000,
                                            D("11794.15000000"))


def test_answers_errors_and_the_shutdown_notice() -> None:
    assert parse_frame(b'{"result":null,"id":7}', SPOT) == Ack(7)
    assert parse_frame(b'{"result":["btcusdt@bookTicker"],"id":3}', SPOT) == Ack(3)
    assert parse_frame(b'{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}',
                       FUTURES) == ErrorFrame("2", "Invalid request: invalid stream", 2)
    assert parse_frame(b'{"code":0,"msg":"Unknown property","id":5}', SPOT) == ErrorFrame(
        "0", "Unknown property", 5)
    assert parse_frame(b'{"error":{"code":3,"msg":"Invalid JSON"},"id":null}', SPOT) == (
        ErrorFrame("3", "Invalid JSON", None))
    shutdown = {"stream": "!serverShutdown", "data": {"e": "serverShutdown",
                                                      "E": 1770123456789}}
    assert parse_frame(raw(shutdown), SPOT) == Shutdown()


@pytest.mark.parametrize(("frame", "market", "reason"), [
    ("{not json", SPOT, "invalid_json"),
    ("[]", SPOT, "not_an_object"),
    ('{"result":null}', SPOT, "unknown_type"),
    ('{"stream":"btcusdt@depth","data":{"s":"BTCUSDT"}}', SPOT, "unknown_topic"),
    (raw(MARK).decode(), SPOT, "unknown_topic"),  # spot has no mark price
    (raw({**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "s": "ETHUSDT"}}).decode(), SPOT,
     "missing_fields"),
    (raw({**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "s": "bnbusdt"}}).decode(), SPOT,
     "missing_fields"),
    (raw({**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "b": "25.4"}}).decode(), SPOT,
     "bad_price"),  # bid above ask
    (raw({**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "a": "-1"}}).decode(), SPOT, "bad_price"),
    (raw({**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "b": 25.3519}}).decode(), SPOT,
     "bad_price"),  # a JSON number is no exact price
    (raw({**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "a": "1.0000000000001"}}).decode(), SPOT,
     "inexact_price"),
    (raw({**SPOT_BOOK, "data": {**SPOT_BOOK["data"], "u": "400900217"}}).decode(), SPOT,
     "missing_fields"),
    (raw(SPOT_BOOK).decode(), FUTURES, "missing_fields"),  # futures frames carry e and E
    (raw({**MARK, "data": {**MARK["data"], "r": ""}}).decode(), FUTURES, "bad_price"),
    (raw({**MARK, "data": {**MARK["data"], "T": 0}}).decode(), FUTURES, "missing_fields"),
    (raw({**MARK, "data": {**MARK["data"], "e": "kline"}}).decode(), FUTURES, "unknown_type"),
])
def test_frames_no_tick_can_come_from_are_refused(frame: str | bytes, market: SymbolType,
                                                  reason: str) -> None:
    with pytest.raises(FrameError) as refused:
        parse_frame(frame, market)
    assert refused.value.reason == reason


def test_the_local_binance_sends_frames_the_parser_reads_exactly() -> None:
    for market in (SPOT, FUTURES):
        local = LocalBinance(str(market))
        frame = local.book_ticker_frame("SOLUSDT", D("140.21"), D("140.24"))
        tick = parse_frame(raw(frame), market)
        assert isinstance(tick, Tick)
        assert (tick.price, tick.best_bid, tick.best_ask, tick.symbol_type) == (
            D("140.225"), D("140.21"), D("140.24"), market)
    mark = LocalBinance.mark_price_frame("SOLUSDT", D("140.2"), D("-0.00001"), 1791046800000)
    assert parse_frame(raw(mark), FUTURES) == MarkPrice(
        "SOLUSDT", D("140.2"), D("-0.00001"), 1791046800000, mark["data"]["E"])
    for junk in LocalBinance("spot").junk():
        try:
            parse_frame(junk, SPOT)
        except FrameError:
            continue


def test_stream_names_are_lower_case_and_map_back_to_symbols() -> None:
    assert book_stream("BTCUSDT") == "btcusdt@bookTicker"
    assert mark_stream("1000PEPEUSDT") == "1000pepeusdt@markPrice@1s"
    assert book_symbols({"btcusdt@bookTicker", "btcusdt@markPrice@1s", "ethusdt@bookTicker"}) == [
        "BTCUSDT", "ETHUSDT"]


def test_subscriptions_are_confirmed_by_their_answer_and_never_asked_twice() -> None:
    state = Subscriptions()
    state.want({"b@bookTicker", "a@bookTicker"})
    first = state.changes()
    assert first == [{"method": "SUBSCRIBE", "params": ["a@bookTicker", "b@bookTicker"],
                      "id": 1}]
    assert state.changes() == []  # in flight
    state.want({"a@bookTicker", "c@bookTicker"})
    assert state.changes() == [{"method": "SUBSCRIBE", "params": ["c@bookTicker"], "id": 2}]
    assert state.acknowledged(1) == ("SUBSCRIBE", ["a@bookTicker", "b@bookTicker"])
    assert state.confirmed == {"a@bookTicker", "b@bookTicker"}
    assert state.changes() == [{"method": "UNSUBSCRIBE", "params": ["b@bookTicker"], "id": 3}]
    assert state.acknowledged(3) == ("UNSUBSCRIBE", ["b@bookTicker"])
    assert state.acknowledged(2) is not None and state.acknowledged(99) is None
    assert state.confirmed == {"a@bookTicker", "c@bookTicker"}
    state.reset()  # the connection ended: everything is asked for again
    assert state.changes() == [{"method": "SUBSCRIBE", "params": ["a@bookTicker",
                                                                  "c@bookTicker"], "id": 4}]


def test_a_refused_batch_is_asked_again_stream_by_stream_and_a_bad_stream_left_out() -> None:
    state = Subscriptions()
    state.want({"a@bookTicker", "bad@bookTicker", "c@bookTicker"})
    (message,) = state.changes()
    assert state.refuse(message["id"]) == ("SUBSCRIBE", message["params"])
    retried = state.changes()
    assert [m["params"] for m in retried] == [["a@bookTicker"], ["bad@bookTicker"],
                                              ["c@bookTicker"]]
    ids = {m["params"][0]: m["id"] for m in retried}
    state.acknowledged(ids["a@bookTicker"])
    state.refuse(ids["bad@bookTicker"])
    state.acknowledged(ids["c@bookTicker"])
    assert state.changes() == []
    assert state.confirmed == {"a@bookTicker", "c@bookTicker"}
    assert state.refused == {"bad@bookTicker"}
    state.want({"a@bookTicker"})  # no longer wanted: a later want asks again
    assert state.refused == set()
    assert state.refuse(None) is None


def test_many_streams_go_in_messages_of_a_bounded_size() -> None:
    state = Subscriptions()
    state.want({f"s{n}usdt@bookTicker" for n in range(250)})
    sizes = [len(m["params"]) for m in state.changes()]
    assert sizes == [MAX_STREAMS_PER_MESSAGE, MAX_STREAMS_PER_MESSAGE, 50]
