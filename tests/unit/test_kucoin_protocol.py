"""KuCoin frames: every recorded frame parses; bad frames are refused with a reason."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal as D

import pytest

from cogmora_core.model import Tick
from localkucoin.replay import SHARED_DATA
from worker.venues.kucoin.protocol import (
    FUTURES,
    SPOT,
    Control,
    FrameError,
    parse_frame,
    subscribe_messages,
    symbols_of,
)

FRAMES = SHARED_DATA / "kucoin_frames.jsonl"


def recorded_kucoin_frames() -> list[dict]:
    rows = [json.loads(line) for line in FRAMES.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["src"].lower().startswith("kucoin")]


@pytest.mark.parametrize("row", recorded_kucoin_frames(), ids=lambda r: r["raw"][:40])
def test_every_recorded_kucoin_frame_parses(row: dict) -> None:
    parsed = parse_frame(row["raw"], SPOT)
    raw = json.loads(row["raw"])
    if raw["type"] == "message":
        assert isinstance(parsed, Tick)
        assert parsed.price == D(raw["data"]["price"])
        assert parsed.best_bid == D(raw["data"]["bestBid"])
        assert parsed.best_ask == D(raw["data"]["bestAsk"])
        assert parsed.time_ms == raw["data"]["time"]
    else:
        assert isinstance(parsed, Control) and parsed.type == raw["type"]
        assert parsed.id == str(raw["id"])


def test_recorded_frames_cover_ticker_ticker_all_and_errors() -> None:
    parsed = [parse_frame(r["raw"], SPOT) for r in recorded_kucoin_frames()]
    symbols = {p.symbol for p in parsed if isinstance(p, Tick)}
    assert symbols == {"BTC-USDT", "MOG-USDT"}
    assert {p.code for p in parsed if isinstance(p, Control) and p.type == "error"} == {404, 509}


def test_futures_ticker_frame() -> None:
    raw = ('{"topic":"/contractMarket/ticker:XBTUSDTM","type":"message","subject":"ticker",'
           '"data":{"symbol":"XBTUSDTM","sequence":45,"side":"sell","price":"60000.5","size":16,'
           '"tradeId":"5c9dcf4170744d6f5a3d32fb","bestBidSize":795,"bestBidPrice":"60000.1",'
           '"bestAskPrice":"60000.9","bestAskSize":284,"ts":1553846081210004941}}')
    tick = parse_frame(raw, FUTURES)
    assert tick == Tick("XBTUSDTM", D("60000.5"), D("60000.1"), D("60000.9"), 1553846081210)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "invalid_json"),
        ("[1,2]", "not_an_object"),
        ('{"type":"surprise"}', "unknown_type"),
        ('{"type":"message","topic":"/market/level2:BTC-USDT","data":{}}', "unknown_topic"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT"}', "missing_fields"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"bestBid":"1"}}',
         "missing_fields"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"abc"}}',
         "bad_price"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"-5"}}',
         "bad_price"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"NaN"}}',
         "bad_price"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":7}}',
         "bad_price"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT",'
         '"data":{"price":"1","bestAsk":"0"}}', "bad_price"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"1e999"}}',
         "bad_price"),
        ('{"type":"message","topic":"/market/ticker:BTC-USDT","data":{"price":"Infinity"}}',
         "bad_price"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw, SPOT)
    assert caught.value.reason == reason


def test_spot_subscriptions_batch_at_most_100_symbols_per_message() -> None:
    symbols = [f"S{i}-USDT" for i in range(250)]
    messages = subscribe_messages(SPOT, symbols, "subscribe", itertools.count(7))
    assert [len(symbols_of(m)) for m in messages] == [100, 100, 50]
    assert [m["id"] for m in messages] == [7, 8, 9]
    assert messages[0]["topic"].startswith("/market/ticker:S0-USDT,S1-USDT,")
    assert [s for m in messages for s in symbols_of(m)] == symbols
    assert all(m["response"] is True and m["privateChannel"] is False for m in messages)


def test_futures_subscriptions_take_one_symbol_per_topic() -> None:
    messages = subscribe_messages(FUTURES, ["XBTUSDTM", "SOLUSDTM"], "unsubscribe",
                                  itertools.count(1))
    assert [m["topic"] for m in messages] == [
        "/contractMarket/ticker:XBTUSDTM", "/contractMarket/ticker:SOLUSDTM"]
    assert {m["type"] for m in messages} == {"unsubscribe"}
