"""Backpack frames: every recorded frame parses; bad frames are refused with a reason."""

from __future__ import annotations

import json
from decimal import Decimal as D

import orjson
import pytest

from cogmora_core.model import Tick
from localkucoin.backpack import LocalBackpack
from localkucoin.replay import SHARED_DATA
from worker.venues.backpack.protocol import (
    ErrorFrame,
    FrameError,
    MarkPrice,
    parse_frame,
    streams_for,
    subscription_messages,
)
from worker.venues.base import Funding, FundingClock

FRAMES = SHARED_DATA / "kucoin_frames.jsonl"


def recorded_backpack_frames(direction: str) -> list[dict]:
    rows = [json.loads(line) for line in FRAMES.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["src"].lower().startswith("backpack") and r["dir"] == direction]


def book_ticker(**changes: object) -> str:
    data = {"A": "1.28080", "B": "3.08745", "E": 1791043257142632, "T": 1791043257142284,
            "a": "84827.0", "b": "84826.9", "e": "bookTicker", "s": "BTC_USDC_PERP",
            "u": 6932035996}
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not DROP}
    return json.dumps({"data": data, "stream": "bookTicker.BTC_USDC_PERP"})


def mark_price(**changes: object) -> str:
    data = {"E": 1791043256641414, "T": 1791043256640942, "e": "markPrice", "f": "0.0000125",
            "i": "84856.2053036", "n": 1791046800000, "p": "84827.2", "s": "BTC_USDC_PERP"}
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not DROP}
    return json.dumps({"data": data, "stream": "markPrice.BTC_USDC_PERP"})


DROP = object()


def test_the_recorded_frames_are_there() -> None:
    assert len(recorded_backpack_frames("in")) == 3
    assert len(recorded_backpack_frames("out")) == 1


@pytest.mark.parametrize("row", recorded_backpack_frames("in"), ids=lambda r: r["raw"][:50])
def test_every_recorded_backpack_frame_parses(row: dict) -> None:
    parsed = parse_frame(row["raw"])
    data = json.loads(row["raw"])["data"]
    if data["e"] == "bookTicker":
        bid, ask = D(data["b"]), D(data["a"])
        assert parsed == Tick(data["s"], (bid + ask) / 2, bid, ask, data["E"] // 1000)
    else:
        assert parsed == MarkPrice(data["s"], D(data["p"]), D(data["f"]), data["n"],
                                   data["E"] // 1000)


def test_a_recorded_book_ticker_gives_the_exact_mid_bid_ask_and_milliseconds() -> None:
    tick = parse_frame(recorded_backpack_frames("in")[1]["raw"])
    assert tick == Tick("BTC_USDC_PERP", D("84826.95"), D("84826.9"), D("84827.0"),
                        1791043257142)


def test_a_recorded_mark_price_gives_rate_and_next_funding() -> None:
    mark = parse_frame(recorded_backpack_frames("in")[0]["raw"])
    assert mark == MarkPrice("BTC_USDC_PERP", D("84827.2"), D("0.0000125"), 1791046800000,
                             1791043256641)


def test_the_recorded_subscribe_message_is_what_the_feed_sends() -> None:
    recorded = json.loads(recorded_backpack_frames("out")[0]["raw"])
    streams = streams_for("BTC_USDC_PERP")
    assert sorted(streams) == sorted(recorded["params"])
    assert subscription_messages("SUBSCRIBE", recorded["params"]) == [recorded]


def test_spot_symbols_have_no_mark_price_stream() -> None:
    assert streams_for("SOL_USDC") == ["bookTicker.SOL_USDC"]
    assert streams_for("SOL_USDC_PERP") == ["bookTicker.SOL_USDC_PERP",
                                             "markPrice.SOL_USDC_PERP"]


def test_many_streams_are_split_over_several_messages() -> None:
    streams = [f"bookTicker.S{n}_USDC" for n in range(120)]
    messages = subscription_messages("UNSUBSCRIBE", streams)
    assert [len(m["params"]) for m in messages] == [50, 50, 20]
    assert {m["method"] for m in messages} == {"UNSUBSCRIBE"}
    assert [s for m in messages for s in m["params"]] == streams


@pytest.mark.parametrize("update_id", [6932035996, "6932035996", DROP])
def test_the_update_id_may_be_an_integer_or_a_string(update_id: object) -> None:
    tick = parse_frame(book_ticker(u=update_id))
    assert isinstance(tick, Tick) and tick.price == D("84826.95")


def test_the_local_exchange_sends_frames_the_parser_reads_as_real_ones() -> None:
    frame = LocalBackpack().book_ticker_frame("SOL_USDC", D("140.1"), D("140.3"))
    assert isinstance(frame["data"]["u"], int) and isinstance(frame["data"]["E"], int)
    assert frame["data"]["E"] > 10**15  # microseconds
    tick = parse_frame(orjson.dumps(frame))
    assert tick == Tick("SOL_USDC", D("140.2"), D("140.1"), D("140.3"), frame["data"]["E"] // 1000)
    mark = LocalBackpack.mark_price_frame("SOL_USDC_PERP", D("140.25"), D("-0.0001"),
                                          1791046800000)
    assert parse_frame(orjson.dumps(mark)) == MarkPrice(
        "SOL_USDC_PERP", D("140.25"), D("-0.0001"), 1791046800000, mark["data"]["E"] // 1000)


def test_an_error_answer_is_an_error_frame() -> None:
    frame = parse_frame('{"id":null,"error":{"code":"INVALID_CLIENT_REQUEST","message":"x"}}')
    assert frame == ErrorFrame("INVALID_CLIENT_REQUEST", "x")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "invalid_json"),
        ("[]", "not_an_object"),
        ('"bookTicker"', "not_an_object"),
        ('{"result":null}', "unknown_type"),
        ('{"stream":"bookTicker.BTC_USDC_PERP"}', "missing_fields"),
        ('{"stream":"bookTicker.BTC_USDC_PERP","data":[]}', "missing_fields"),
        ('{"stream":"depth.BTC_USDC_PERP","data":{"s":"BTC_USDC_PERP"}}', "unknown_topic"),
        ('{"stream":"bookTicker","data":{"s":"BTC_USDC_PERP"}}', "missing_fields"),
        (book_ticker(s="ETH_USDC_PERP"), "missing_fields"),
        (book_ticker(b=DROP), "missing_fields"),
        (book_ticker(a=None), "missing_fields"),
        (book_ticker(a="-1"), "bad_price"),
        (book_ticker(b="0"), "bad_price"),
        (book_ticker(b="NaN"), "bad_price"),
        (book_ticker(b="Infinity"), "bad_price"),
        (book_ticker(b="1e15"), "bad_price"),
        (book_ticker(b=84826.9), "bad_price"),
        (book_ticker(b="84828"), "bad_price"),  # bid above ask: a crossed book
        (book_ticker(u="12a"), "missing_fields"),
        (book_ticker(u=-1), "missing_fields"),
        (book_ticker(u=True), "missing_fields"),
        (mark_price(p=DROP), "missing_fields"),
        (mark_price(p="abc"), "bad_price"),
        (mark_price(f=DROP), "bad_price"),
        (mark_price(f="5"), "bad_price"),
        (mark_price(n="1791046800000"), "missing_fields"),
        (mark_price(E=DROP), "missing_fields"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw)
    assert caught.value.reason == reason


def test_a_book_ticker_without_event_time_has_no_time() -> None:
    tick = parse_frame(book_ticker(E=DROP))
    assert isinstance(tick, Tick) and tick.time_ms is None


def mark(symbol: str, price: str, rate: str, next_ms: int, at_ms: int) -> MarkPrice:
    return MarkPrice(symbol, D(price), D(rate), next_ms, at_ms)


HOUR = 3_600_000


def test_funding_settles_when_the_next_funding_time_moves_on() -> None:
    clock = FundingClock()
    assert clock.observe(mark("SOL_USDC_PERP", "140.1", "0.0000125", HOUR, HOUR - 900)) is None
    assert clock.observe(mark("SOL_USDC_PERP", "140.3", "0.00002", HOUR, HOUR - 10)) is None
    # The next frame names the following hour: the last rate and mark before it settle.
    assert clock.observe(mark("SOL_USDC_PERP", "140.2", "-0.00001", 2 * HOUR, HOUR + 5)) == (
        Funding("SOL_USDC_PERP", D("0.00002"), HOUR, D("140.3")))
    assert clock.observe(mark("SOL_USDC_PERP", "140.2", "-0.00001", 2 * HOUR, HOUR + 900)) is None


def test_funding_is_per_symbol_and_needs_a_frame_before_the_funding_time() -> None:
    clock = FundingClock()
    # The first frame seen is already past an hour: nothing is known of that interval.
    assert clock.observe(mark("BTC_USDC_PERP", "90000", "0.0001", 2 * HOUR, HOUR + 5)) is None
    assert clock.observe(mark("SOL_USDC_PERP", "140", "0.0001", HOUR, HOUR - 5)) is None
    assert clock.observe(mark("BTC_USDC_PERP", "90001", "0.0001", 2 * HOUR, HOUR + 9)) is None


def test_an_older_frame_or_a_schedule_moved_early_settles_nothing() -> None:
    clock = FundingClock()
    assert clock.observe(mark("SOL_USDC_PERP", "140", "0.0001", 2 * HOUR, HOUR + 5)) is None
    assert clock.observe(mark("SOL_USDC_PERP", "139", "0.0001", HOUR, HOUR - 5)) is None
    # Moved to a later time before 2 h came: no settlement at 2 h.
    assert clock.observe(mark("SOL_USDC_PERP", "140", "0.0001", 3 * HOUR, HOUR + 60)) is None
    assert clock.observe(mark("SOL_USDC_PERP", "141", "0.0002", 4 * HOUR, 3 * HOUR)) == (
        Funding("SOL_USDC_PERP", D("0.0001"), 3 * HOUR, D("140")))
