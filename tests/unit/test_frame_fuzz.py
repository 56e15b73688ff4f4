"""Fuzzing every exchange frame parser and the subscription state (issue 13, item 4).

Whatever an exchange sends, a parser returns a frame or raises `FrameError`,
and the subscription state takes any control frame without raising anything
but the one exception it is meant to raise (`TokenRejected`, which reconnects).
An error frame whose code was `"²"` once passed `str.isdigit`, made `int()`
raise, and ended the connection for good.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogmora_core.model import Tick
from cogmora_core.venues import SymbolType
from worker.metrics import Metrics
from worker.venues.backpack import protocol as backpack_protocol
from worker.venues.base import FrameError, FundingClock, MarkPrice, connection_ended
from worker.venues.binance import protocol as binance_protocol
from worker.venues.kucoin import protocol as kucoin_protocol
from worker.venues.kucoin.feed import KucoinConnection, TokenRejected
from worker.venues.kucoin.protocol import FUTURES, SPOT, Control

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)
#: Values that look like what the exchanges send, and the strange ones nearby.
LIKELY = st.sampled_from([
    "²", "٣", "1e400", "-0", "0", "1E-13", "NaN", "Infinity", "", " 1", "1_000", "0x10",
    "87956.1", "0.000009868", 10**30, -1, 2**63, 1.5, True, None, [], {}, "XBTUSDTM",
    "BTC-USDT", "SOL_USDC_PERP", "bookTicker.SOL_USDC", "markPrice.SOL_USDC_PERP",
])
VALUE = JSON | LIKELY
KUCOIN_FIELDS = ["type", "topic", "subject", "id", "code", "data", "price", "bestBid",
                 "bestAsk", "bestBidPrice", "bestAskPrice", "time", "ts", "symbol",
                 "fundingTime", "fundingRate", "sequence"]
BACKPACK_FIELDS = ["stream", "data", "e", "s", "a", "b", "E", "T", "u", "p", "f", "n", "i",
                   "error", "code", "message", "id"]
BINANCE_FIELDS = ["e", "E", "T", "s", "u", "b", "B", "a", "A", "p", "i", "P", "r"]
BINANCE_MARKETS = (SymbolType.SPOT, SymbolType.FUTURES)


def kucoin_frames() -> st.SearchStrategy[dict[str, Any]]:
    data = st.dictionaries(st.sampled_from(KUCOIN_FIELDS), VALUE, max_size=8)
    return st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "welcome", "pong", "ack", "error"]) | VALUE,
         "topic": st.sampled_from(["/market/ticker:BTC-USDT", "/market/ticker:all",
                                   "/contractMarket/ticker:XBTUSDTM",
                                   "/contract/announcement:XBTUSDTM", "/market/ticker:"])
         | VALUE},
        optional={"subject": st.sampled_from(["trade.ticker", "ticker", "funding.begin",
                                              "funding.end"]) | VALUE,
                  "id": VALUE, "code": VALUE, "data": data | VALUE})


def backpack_frames() -> st.SearchStrategy[dict[str, Any]]:
    data = st.dictionaries(st.sampled_from(BACKPACK_FIELDS), VALUE, max_size=10)
    return st.fixed_dictionaries(
        {"stream": st.sampled_from(["bookTicker.SOL_USDC", "markPrice.SOL_USDC_PERP",
                                    "bookTicker.", "other.X"]) | VALUE,
         "data": data | VALUE},
        optional={"error": VALUE, "id": VALUE, "result": VALUE})


def binance_frames() -> st.SearchStrategy[dict[str, Any]]:
    data = st.dictionaries(st.sampled_from(BINANCE_FIELDS), VALUE, max_size=10)
    return st.fixed_dictionaries(
        {"stream": st.sampled_from(["btcusdt@bookTicker", "btcusdt@markPrice@1s",
                                    "btcusdt@markPrice", "!serverShutdown", "@bookTicker",
                                    "BTCUSDT@bookTicker", "btcusdt@depth"]) | VALUE,
         "data": data | VALUE},
        optional={"error": VALUE, "id": VALUE, "result": VALUE, "code": VALUE, "msg": VALUE})


def parses_or_refuses(parse: Any, raw: str | bytes) -> object:
    try:
        return parse(raw)
    except FrameError:
        return None


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_or_text_is_a_frame_or_a_frame_error(raw: str | bytes) -> None:
    for market in (SPOT, FUTURES):
        parses_or_refuses(lambda r, m=market: kucoin_protocol.parse_frame(r, m), raw)
    parses_or_refuses(backpack_protocol.parse_frame, raw)
    for kind in BINANCE_MARKETS:
        parses_or_refuses(lambda r, k=kind: binance_protocol.parse_frame(r, k), raw)


@settings(max_examples=400, deadline=None)
@given(value=JSON)
def test_any_json_value_is_a_frame_or_a_frame_error(value: object) -> None:
    raw = json.dumps(value)
    for market in (SPOT, FUTURES):
        parses_or_refuses(lambda r, m=market: kucoin_protocol.parse_frame(r, m), raw)
    parses_or_refuses(backpack_protocol.parse_frame, raw)
    for kind in BINANCE_MARKETS:
        parses_or_refuses(lambda r, k=kind: binance_protocol.parse_frame(r, k), raw)


@settings(max_examples=1500, deadline=None)
@given(frame=kucoin_frames())
def test_kucoin_frames_of_the_right_shape_with_any_values(frame: dict[str, Any]) -> None:
    for market in (SPOT, FUTURES):
        parsed = parses_or_refuses(lambda r, m=market: kucoin_protocol.parse_frame(r, m),
                                   json.dumps(frame))
        if isinstance(parsed, Tick):
            assert parsed.price > 0
        if isinstance(parsed, Control):
            assert parsed.code is None or isinstance(parsed.code, int)


@settings(max_examples=1500, deadline=None)
@given(frame=backpack_frames())
def test_backpack_frames_of_the_right_shape_with_any_values(frame: dict[str, Any]) -> None:
    clock = FundingClock()
    parsed = parses_or_refuses(backpack_protocol.parse_frame, json.dumps(frame))
    if isinstance(parsed, Tick):
        assert parsed.best_bid is not None and parsed.best_ask is not None
        assert 0 < parsed.best_bid <= parsed.price <= parsed.best_ask
    if isinstance(parsed, MarkPrice):
        clock.observe(parsed)


@settings(max_examples=1500, deadline=None)
@given(frame=binance_frames())
def test_binance_frames_of_the_right_shape_with_any_values(frame: dict[str, Any]) -> None:
    clock = FundingClock()
    for kind in BINANCE_MARKETS:
        parsed = parses_or_refuses(lambda r, k=kind: binance_protocol.parse_frame(r, k),
                                   json.dumps(frame))
        if isinstance(parsed, Tick):
            assert parsed.best_bid is not None and parsed.best_ask is not None
            assert 0 < parsed.best_bid <= parsed.price <= parsed.best_ask
            assert parsed.symbol_type is kind
        if isinstance(parsed, MarkPrice):
            assert kind is SymbolType.FUTURES
            clock.observe(parsed)
        if isinstance(parsed, binance_protocol.Ack | binance_protocol.ErrorFrame):
            assert parsed.id is None or (isinstance(parsed.id, int) and parsed.id > 0)


def test_an_error_code_of_a_non_ascii_digit_is_no_code() -> None:
    for code in ("²", "٣", "1²", "", "12345678901"):
        frame = json.dumps({"type": "error", "id": "1", "code": code, "data": "x"})
        parsed = kucoin_protocol.parse_frame(frame, SPOT)
        assert isinstance(parsed, Control) and parsed.code is None
    parsed = kucoin_protocol.parse_frame('{"type":"error","id":"1","code":"509"}', SPOT)
    assert isinstance(parsed, Control) and parsed.code == 509


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.builds(
    Control, st.sampled_from(["welcome", "pong", "ack", "error"]),
    st.sampled_from(["1", "2", "3", ""]) | st.text(max_size=5),
    st.none() | st.integers() | st.sampled_from([400, 401, 404, 406, 500, 509]),
    VALUE), max_size=12))
def test_the_subscription_state_takes_any_control_frames(frames: list[Control]) -> None:
    async def scenario() -> None:
        connection = KucoinConnection(SPOT, "kucoin-spot-0", tokens=None,  # type: ignore[arg-type]
                                      on_tick=lambda tick: None, metrics=Metrics(),
                                      on_subscribed=lambda symbols: None)
        connection.update_desired({"BTC-USDT", "ETH-USDT", "SOL-USDT"})
        connection._pending = {"1": ("subscribe", ["BTC-USDT"]),
                               "2": ("unsubscribe", ["ETH-USDT"]),
                               "3": ("funding-subscribe", ["SOL-USDT"])}
        for frame in frames:
            try:
                connection._on_control(frame)
            except TokenRejected:
                assert frame.type == "error" and frame.code == 401
        assert connection.subscribed <= {"BTC-USDT"}

    asyncio.run(scenario())


@pytest.mark.parametrize("error", [ValueError("invalid literal for int()"), KeyError("x"),
                                   RuntimeError("bug")])
def test_an_unexpected_error_is_counted_and_the_manager_goes_on(error: Exception) -> None:
    counted: list[int] = []
    connection_ended("kucoin-spot-0", error, lambda: counted.append(1))
    assert counted == [1]
    connection_ended("kucoin-spot-0", TimeoutError(), lambda: counted.append(1))
    assert counted == [1]  # an expected ending is not counted as unexpected
