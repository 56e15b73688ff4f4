"""Trailing stops, one-cancels-other links and funding: the core's rules and the index."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora_backend.marks import mark_position, mark_trigger, record_peak
from cogmora_core.config import TradingConfig
from cogmora_core.contract.positions import parse_position
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.errors import Rejected
from cogmora_core.model import PositionType, Tick, TrailingStop
from cogmora_core.trading import (
    advance_peak,
    close_position,
    funding_payment,
    trailing_stop_price,
)
from tests.support.builders import position_doc, trigger_doc
from tests.support.memory import MemoryDatabase
from worker.book import PriceIndex
from worker.documents import armed_position

LONG, SHORT = PositionType.LONG, PositionType.SHORT


def test_the_peak_waits_for_activation_then_only_moves_in_the_positions_favour() -> None:
    spec = TrailingStop(percent=D(2), activation_price=D(105))
    peaks = []
    peak = None
    for price in ["100", "104.99", "105", "110", "108", "112.5", "90"]:
        peak = advance_peak(LONG, spec, peak, D(price))
        peaks.append(peak)
    assert peaks == [None, None, D(105), D(110), D(110), D("112.5"), D("112.5")]
    assert trailing_stop_price(LONG, spec, D("112.5")) == D("110.25")
    short = TrailingStop(distance=D("1.5"))
    assert advance_peak(SHORT, short, D(100), D(101)) == D(100)
    assert advance_peak(SHORT, short, D(100), D(99)) == D(99)
    assert trailing_stop_price(SHORT, short, D(99)) == D("100.5")


def test_funding_longs_pay_and_shorts_receive_a_positive_rate_exactly() -> None:
    assert funding_payment(LONG, D("0.01"), D("60000"), D("0.0001")) == D("-0.06")
    assert funding_payment(SHORT, D("0.01"), D("60000"), D("0.0001")) == D("0.06")
    # 3 × 140.123 × 0.000125 = 0.052546125: rounded once, half to even.
    assert funding_payment(LONG, D("3"), D("140.123"), D("-0.000125")) == D("0.05254612")


def test_funding_received_counts_in_the_positions_pnl() -> None:
    state = parse_position(position_doc(averageEntryPrice=60000, size=0.01, margin=200,
                                        openFee=0.36, funding={"total": -0.06}))
    settled = close_position(state, D(60000), TradingConfig())
    plain = close_position(parse_position(position_doc(averageEntryPrice=60000, size=0.01,
                                                       margin=200, openFee=0.36)),
                           D(60000), TradingConfig())
    assert settled.credit == plain.credit
    assert settled.pnl == plain.pnl - D("0.06")


@pytest.mark.parametrize("spec, reason", [
    ({"percent": 1, "distance": 2}, "exactly one"),
    ({}, "exactly one"),
    ({"percent": 51}, "above 50"),
    ({"percent": -1}, "positive"),
    ({"distance": 1, "stop": 2}, "unknown fields"),
    ("1%", "not a map"),
])
def test_bad_trailing_stops_are_rejected_with_a_reason(spec: object, reason: str) -> None:
    with pytest.raises(Rejected) as raised:
        parse_trigger(trigger_doc(trailingStop=spec))
    assert raised.value.reason == "invalid_trailing_stop"
    assert reason in raised.value.detail


def test_a_bad_oco_link_is_rejected() -> None:
    with pytest.raises(Rejected) as raised:
        parse_trigger(trigger_doc(ocoTriggerId="../x"))
    assert raised.value.reason == "invalid_oco"
    assert parse_trigger(trigger_doc(ocoTriggerId="t-2")).oco_trigger_id == "t-2"


def trailing_position(**details: object) -> dict:
    return position_doc(positionType="long", averageEntryPrice=100, liquidationPrice=None,
                        details={"status": "open", "trailingStop": {"distance": 5},
                                 **details})


def test_the_index_trails_the_price_and_fires_on_the_pullback() -> None:
    index = PriceIndex()
    path = "users/u/openPositions/p"
    index.arm(armed_position(path, trailing_position()))
    hits = []
    for price in ["100", "103", "110", "106", "105.01"]:
        hits += index.on_tick(Tick("SOLUSDTM", D(price)))
    assert hits == [] and index.peak(path) == D(110)
    assert index.take_moved_peaks() == {path: D(110)}
    assert index.take_moved_peaks() == {}
    hits = index.on_tick(Tick("SOLUSDTM", D(105)))
    assert [(h.armed.path, h.peak) for h in hits] == [(path, D(110))]


def test_re_arming_keeps_the_better_peak() -> None:
    index = PriceIndex()
    path = "users/u/openPositions/p"
    index.arm(armed_position(path, trailing_position()))
    index.on_tick(Tick("SOLUSDTM", D(120)))
    index.arm(armed_position(path, {**trailing_position(), "trailing": {"highWaterMark": 111}}))
    assert index.peak(path) == D(120)
    index.arm(armed_position(path, {**trailing_position(), "trailing": {"highWaterMark": 130}}))
    assert index.peak(path) == D(130)


def test_marks_record_a_trailing_stop_and_peaks_only_improve() -> None:
    database = MemoryDatabase({"users/u/openPositions/p": trailing_position()})
    assert record_peak(database, "u", "p", D(110), "w").kind == "marked"
    assert record_peak(database, "u", "p", D(108), "w").reason == "not better"
    stored = database.read("users/u/openPositions/p")
    assert (stored["trailing"]["highWaterMark"], stored["trailing"]["stopPrice"]) == (110, 105)
    outcome = mark_position(database, "u", "p", Tick("SOLUSDTM", D("107.01")), "w", D(112))
    assert outcome.reason == "not crossed"
    outcome = mark_position(database, "u", "p", Tick("SOLUSDTM", D(107), D("106.9")), "w",
                            D(112))
    assert outcome.reason == "trailing_stop"
    request = database.read("users/u/openPositions/p")["details"]["closeRequest"]
    assert (request["reason"], request["detail"], request["price"]) == (
        "stop_loss", "trailing_stop", 106.9)


def test_an_oco_trigger_cancels_its_partner_in_the_same_transaction() -> None:
    database = MemoryDatabase({
        "users/u/tradeTriggers/a": trigger_doc(symbol="SOLUSDTM", condition="below",
                                               targetPrice=90, ocoTriggerId="b"),
        "users/u/tradeTriggers/b": trigger_doc(symbol="SOLUSDTM", condition="above",
                                               targetPrice=110, ocoTriggerId="a")})
    assert mark_trigger(database, "u", "a", Tick("SOLUSDTM", D(89)), "w").kind == "marked"
    partner = database.read("users/u/tradeTriggers/b")["details"]
    assert partner == {"status": "cancelled", "cancelledBy": "a", "cancelReason": "oco"}
    assert database.read("users/u/executedTriggers/a")["ocoCancelled"] == "b"
    assert mark_trigger(database, "u", "b", Tick("SOLUSDTM", D(111)), "w").reason == \
        "not active"
    assert database.read("users/u/executedTriggers/b") is None
