"""Market and input extremes: overflowing sizes, low-priced coins (issue 12, items 2 and 3).

Each case was a defect: an `InvalidOperation` left an execution `pending` for
good, and 8-place price rounding wrote 1e-9 as 0 and moved PEPE fills.
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from cogmora_backend.marks import mark_position
from cogmora_backend.settlement import settle_close, settle_execution
from cogmora_core import TradingConfig
from cogmora_core.contract.executions import parse_execution
from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import Tick
from cogmora_core.money import parse_number, to_firestore_price, writable_price
from cogmora_core.trading import check_affordable, liquidation_price, open_position
from tests.support.builders import execution_doc, spot_execution_doc
from tests.support.memory import MemoryDatabase
from worker.venues.backpack.protocol import parse_frame as parse_backpack
from worker.venues.base import FrameError
from worker.venues.kucoin.protocol import FUTURES, SPOT
from worker.venues.kucoin.protocol import parse_frame as parse_kucoin

CONFIG = TradingConfig()


def database(balance: object, **documents: dict) -> MemoryDatabase:
    docs: dict = {"users/u1": {"balance": balance}}
    docs.update({path.replace("__", "/"): doc for path, doc in documents.items()})
    return MemoryDatabase(docs)


def balance_of(db: MemoryDatabase) -> D:
    value = parse_number(db.documents["users/u1"]["balance"])
    assert value is not None
    return value


# --- item 2: arithmetic that does not fit is a rejection, never a stuck execution ---

def test_an_amount_no_balance_could_pay_is_rejected_before_sizing() -> None:
    # 999,999,999,999 at 100x on a fill of 5e-7: a size of 2e20, which 8 places cannot hold.
    execution = execution_doc(amount=999999999999, leverage=100, executedPrice=5e-7,
                              targetPrice=5e-7)
    db = database(10000, users__u1__executedTriggers__e1=execution)

    outcome = settle_execution(db, "u1", "e1", CONFIG)

    assert (outcome.kind, outcome.reason) == ("rejected", "insufficient_balance")
    stored = db.documents["users/u1/executedTriggers/e1"]
    assert (stored["status"], stored["error"]) == ("rejected", "insufficient_balance")
    assert balance_of(db) == D("10000")
    assert "users/u1/openPositions/e1" not in db.documents


def test_a_size_beyond_exact_arithmetic_is_rejected_out_of_range_and_debits_nothing() -> None:
    # A balance that can pay, at a price so low the size has 30 digits.
    execution = execution_doc(amount=900000000, leverage=100, executedPrice=1e-12,
                              targetPrice=1e-12)
    db = database(999999999999, users__u1__executedTriggers__e1=execution)

    outcome = settle_execution(db, "u1", "e1", CONFIG)

    assert (outcome.kind, outcome.reason) == ("rejected", Reason.OUT_OF_RANGE)
    assert db.documents["users/u1/executedTriggers/e1"]["error"] == "out_of_range"
    assert balance_of(db) == D("999999999999")


def test_the_core_turns_every_arithmetic_failure_into_a_rejection() -> None:
    order, _ = parse_execution(execution_doc(amount=900000000, leverage=100))
    with pytest.raises(Rejected) as raised:
        open_position(order, D("1E-12"), CONFIG)
    assert raised.value.reason == Reason.OUT_OF_RANGE
    check_affordable(D("999999999999"), order, CONFIG)  # affordable: only sizing fails


def test_the_balance_is_checked_with_the_exact_debit_before_sizing() -> None:
    order, _ = parse_execution(execution_doc(amount=100, leverage=10))  # 100 + 0.6 fee
    check_affordable(D("100.6"), order, CONFIG)
    with pytest.raises(Rejected) as raised:
        check_affordable(D("100.59999999"), order, CONFIG)
    assert raised.value.reason == Reason.INSUFFICIENT_BALANCE


# --- item 3: prices keep 12 decimal places exactly; unwritable prices never enter ---

@pytest.mark.parametrize("price, writable", [
    ("0.000009868", True),           # PEPE
    ("0.00001234", True),            # SHIB
    ("1E-9", True),                  # a 1e-9 step
    ("0.000000000001", True),        # the smallest price a document holds
    ("1E-13", False),                # would round to zero
    ("0.0000098681", True),
    ("0.0000098681234567", False),   # 16 decimals: inexact
    ("87956.12345678901", False),    # 16 significant digits: a double cannot hold it
    ("87956.1234567890", True),
    ("0", False),
    ("-1", False),
])
def test_a_price_is_writable_only_exactly_and_positive(price: str, writable: bool) -> None:
    assert writable_price(D(price)) is writable
    if writable:  # and what is written reads back as the same decimal
        assert parse_number(to_firestore_price(D(price))) == D(price)


def kucoin_spot(price: str, bid: str, ask: str) -> str:
    return json.dumps({"topic": "/market/ticker:PEPE-USDT", "type": "message",
                       "subject": "trade.ticker",
                       "data": {"bestAsk": ask, "bestBid": bid, "price": price,
                                "sequence": "1", "size": "1", "time": 1766698420140}})


def test_kucoin_refuses_a_price_that_would_be_written_as_zero_and_keeps_pepe_exact() -> None:
    tick = parse_kucoin(kucoin_spot("0.000009869", "0.000009867", "0.000009868"), SPOT)
    assert isinstance(tick, Tick)
    assert (tick.price, tick.best_bid, tick.best_ask) == (
        D("0.000009869"), D("0.000009867"), D("0.000009868"))
    for bad in ("1E-13", "0.0000098690000001"):
        with pytest.raises(FrameError) as raised:
            parse_kucoin(kucoin_spot(bad, "0.000009867", "0.000009868"), SPOT)
        assert raised.value.reason == "inexact_price"
    with pytest.raises(FrameError):
        parse_kucoin(json.dumps({
            "topic": "/contractMarket/ticker:1000PEPEUSDTM", "type": "message",
            "subject": "ticker", "data": {"symbol": "1000PEPEUSDTM", "price": "1E-14",
                                          "bestBidPrice": "0.009867", "ts": 1}}), FUTURES)


def test_backpack_mid_price_of_a_low_priced_coin_is_exact() -> None:
    raw = json.dumps({"stream": "bookTicker.SHIB_USDC", "data": {
        "e": "bookTicker", "s": "SHIB_USDC", "a": "0.000012341", "b": "0.00001234",
        "E": 1791043257142632, "u": 1}})
    tick = parse_backpack(raw)
    assert isinstance(tick, Tick)
    assert (tick.price, tick.best_bid, tick.best_ask) == (
        D("0.0000123405"), D("0.00001234"), D("0.000012341"))


def test_a_pepe_position_opens_and_closes_at_its_exact_prices() -> None:
    # 1,000 USDT of PEPE-USDT bought at the ask 0.000009868 (once stored as 0.00000987).
    execution = spot_execution_doc(symbol="PEPE-USDT", targetPrice=0.00001,
                                   executedPrice=0.000009868)
    db = database(10000, users__u1__executedTriggers__e1=execution)

    assert settle_execution(db, "u1", "e1", CONFIG).kind == "filled"
    position = db.documents["users/u1/openPositions/e1"]
    assert position["averageEntryPrice"] == 0.000009868
    assert position["size"] == 101337657.07336846  # 1000 / 0.000009868, 8 places
    assert balance_of(db) == D("8999")  # 1,000 + 0.1 % fee

    position["details"]["takeProfit"] = 0.00001
    tick = Tick("PEPE-USDT", D("0.000010001"), best_bid=D("0.000010000"),
                best_ask=D("0.000010002"))
    assert mark_position(db, "u1", "e1", tick, "test").kind == "marked"
    assert db.documents["users/u1/openPositions/e1"]["details"]["closeRequest"]["price"] \
        == 0.00001
    assert settle_close(db, "u1", "e1", CONFIG).kind == "settled"

    history = db.documents["users/u1/tradeHistory/e1"]
    size = D(repr(101337657.07336846))
    proceeds = size * D("0.00001")
    credit = (proceeds - proceeds * D("0.001")).quantize(D("0.00000001"))
    assert history["closePrice"] == 0.00001
    assert balance_of(db) == D("8999") + credit
    assert credit == D("1012.36319416")


def test_a_low_priced_futures_liquidation_keeps_twelve_places() -> None:
    from cogmora_core.model import PositionType
    # 10x long at 0.000009868: 0.000009868 × (1 − 0.1 + 0.005) = 0.00000893054.
    assert liquidation_price(D("0.000009868"), 10, PositionType.LONG, D("0.005")) \
        == D("0.00000893054")
