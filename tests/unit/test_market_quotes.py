"""Reading KuCoin's REST tickers into ticks for the AI agent's risk check (no network)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora_backend.automation.plan import MarketQuote
from cogmora_backend.automation.quotes import (
    ExchangeQuotes,
    parse_futures_ticker,
    parse_spot_level1,
    watched_markets,
)
from cogmora_core.model import Tick

#: Shaped as KuCoin answers `GET /api/v1/market/orderbook/level1?symbol=BTC-USDT`.
SPOT = {"code": "200000", "data": {
    "time": 1729172965609, "sequence": "14609309753", "price": "67269", "size": "0.000025",
    "bestBid": "67267.5", "bestBidSize": "0.000025", "bestAsk": "67267.6",
    "bestAskSize": "1.24808993"}}
#: Shaped as KuCoin answers `GET /api/v1/ticker?symbol=XBTUSDTM` (ts in ns).
FUTURES = {"code": "200000", "data": {
    "sequence": 1638444978558, "symbol": "XBTUSDTM", "side": "sell", "size": 1,
    "tradeId": "1729211214", "price": "67338.9", "bestBidPrice": "67338.9", "bestBidSize": 35,
    "bestAskPrice": "67339", "bestAskSize": 1, "ts": 1729211228803000000}}


def test_a_spot_level1_answer_is_a_tick_timed_in_ms() -> None:
    assert parse_spot_level1("BTC-USDT", SPOT) == Tick(
        "BTC-USDT", D("67269"), D("67267.5"), D("67267.6"), 1729172965609)


def test_a_futures_ticker_answer_is_a_tick_timed_at_its_trade() -> None:
    assert parse_futures_ticker("XBTUSDTM", FUTURES) == Tick(
        "XBTUSDTM", D("67338.9"), D("67338.9"), D("67339"), 1729211228803)


@pytest.mark.parametrize("body", [
    None, [], {"code": "400100", "msg": "bad"}, {"code": "200000", "data": None},
    {"code": "200000", "data": {**SPOT["data"], "price": "-1"}},
    {"code": "200000", "data": {**SPOT["data"], "price": 67269}},
    {"code": "200000", "data": {**SPOT["data"], "price": "1e400"}},
    {"code": "200000", "data": {**SPOT["data"], "price": "0.0000000000001"}},
    {"code": "200000", "data": {**SPOT["data"], "time": "1729172965609"}},
    {"code": "200000", "data": {**SPOT["data"], "time": True}},
])
def test_an_unusable_spot_answer_gives_no_price(body: object) -> None:
    assert parse_spot_level1("BTC-USDT", body) is None


@pytest.mark.parametrize("data", [
    {**FUTURES["data"], "symbol": "ETHUSDTM"}, {**FUTURES["data"], "ts": None},
    {**FUTURES["data"], "price": "NaN"}, {**FUTURES["data"], "price": None},
])
def test_an_unusable_futures_answer_gives_no_price(data: dict) -> None:
    assert parse_futures_ticker("XBTUSDTM", {"code": "200000", "data": data}) is None


def test_a_bad_book_side_is_left_out_and_the_last_price_stands() -> None:
    body = {"code": "200000", "data": {**SPOT["data"], "bestBid": "", "bestAsk": "x"}}
    assert parse_spot_level1("BTC-USDT", body) == Tick(
        "BTC-USDT", D("67269"), None, None, 1729172965609)


def test_only_listed_kucoin_markets_are_fetched_each_once() -> None:
    markets = watched_markets(["SOLUSDTM", "AIXUSDTM", "BTC-USDT", "SOLUSDTM", "SOL_USDC", ""])
    assert [(m.symbol, str(m.symbol_type)) for m in markets] == [
        ("SOLUSDTM", "futures"), ("BTC-USDT", "spot")]


def test_the_functions_read_the_workers_exchange_settings() -> None:
    quotes = ExchangeQuotes.from_environ({"KUCOIN_SPOT_API": "http://127.0.0.1:9501/",
                                          "KUCOIN_FUTURES_API": "http://127.0.0.1:9502"})
    defaults = ExchangeQuotes.from_environ({})
    assert [str(api) for api in quotes.apis.values()] == [
        "http://127.0.0.1:9501", "http://127.0.0.1:9502"]
    assert [str(api) for api in defaults.apis.values()] == [
        "https://api.kucoin.com", "https://api-futures.kucoin.com"]


def test_a_quote_is_exact_through_the_flow_input() -> None:
    tick = Tick("PEPEUSDTM", D("0.000012345678"), D("0.000012345677"), D("0.000012345679"),
                1729211228803)
    assert MarketQuote.of(tick).tick() == tick
