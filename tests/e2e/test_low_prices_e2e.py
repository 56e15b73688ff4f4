"""End to end: low-priced coins keep their exact prices from the feed to the balance.

Issue 12, item 3. The local exchange publishes PEPE- and SHIB-like prices, the
worker marks them, the functions settle them. Prices keep 12 decimal places
(DESIGN.md §2); a price a document cannot hold exactly and positive is dropped
at the feed and counted, never written.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal as D
from typing import Any

import pytest

from tests.support.builders import DROP, trigger_doc
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import closed_history, execution_of, funded_user, keep_publishing

EIGHT = D("0.00000001")


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-low-prices")
    yield process
    assert process.stop() == 0


def test_a_pepe_spot_trade_fills_and_closes_at_nine_decimal_prices(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "PEPX-USDT"
    uid = funded_user(db, "pepe")
    db.document(f"users/{uid}/tradeTriggers/t").set(trigger_doc(
        symbol=symbol, symbolType="spot", action="buy", leverage=1, amount=1000,
        condition="below", targetPrice=0.00001, takeProfit=0.00001001))
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/t"))

    execution = keep_publishing(
        lambda: exchange.publish(symbol, "0.000009869", "0.000009867", "0.000009868"),
        lambda: execution_of(db, uid, "t"))
    # Bought at the ask, 0.000009868 (8 places once wrote 0.00000987).
    assert (execution["status"], execution["executedPrice"]) == ("filled", 0.000009868)
    position = document(db, f"users/{uid}/openPositions/t")
    assert position["averageEntryPrice"] == 0.000009868
    assert position["size"] == 101337657.07336846  # 1,000 / 0.000009868, 8 places
    assert balance_of(db, uid) == D("8999")  # 1,000 + 0.1 % fee

    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/t"))
    history = keep_publishing(
        lambda: exchange.publish(symbol, "0.000010011", "0.000010011", "0.000010013"),
        lambda: closed_history(db, uid, "t"))
    assert (history["closeReason"], history["closePrice"]) == ("take_profit", 0.000010011)
    size = D(repr(position["size"]))
    proceeds = size * D("0.000010011")
    credit = (proceeds - proceeds * D("0.001")).quantize(EIGHT)
    assert credit == D("1013.47679368")
    assert balance_of(db, uid) == D("8999") + credit


def test_a_shib_futures_short_is_stopped_at_the_exact_ask(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "SHIXUSDTM"
    uid = funded_user(db, "shib")
    db.document(f"users/{uid}/tradeTriggers/t").set(trigger_doc(
        symbol=symbol, condition="above", targetPrice=0.00001234, action="short",
        amount=500, leverage=10, stopLoss=0.0000125))
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/t"))

    execution = keep_publishing(
        lambda: exchange.publish(symbol, "0.00001234", "0.000012339", "0.000012341"),
        lambda: execution_of(db, uid, "t"))
    assert execution["executedPrice"] == 0.000012339  # sold at the bid
    position = document(db, f"users/{uid}/openPositions/t")
    # 0.000012339 × (1 + 1/10 − 0.005), 12 places.
    assert position["liquidationPrice"] == 0.000013511205
    assert balance_of(db, uid) == D("9497")  # 500 + 5,000 × 0.0006

    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/t"))
    history = keep_publishing(
        lambda: exchange.publish(symbol, "0.0000125", "0.000012499", "0.000012501"),
        lambda: closed_history(db, uid, "t"))
    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 0.000012501)
    size = D(repr(position["size"]))
    gross = size * (D("0.000012339") - D("0.000012501"))
    credit = (D(500) + gross - size * D("0.000012501") * D("0.0006")).quantize(EIGHT)
    assert credit == D("431.31509847")
    assert balance_of(db, uid) == D("9497") + credit


def test_a_price_that_would_be_written_as_zero_is_dropped_and_counted(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "TINYUSDTM"
    uid = funded_user(db, "tiny")
    db.document(f"users/{uid}/tradeTriggers/t").set(trigger_doc(
        symbol=symbol, condition="market", targetPrice=DROP, action="long"))
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/t"))
    before = worker.metric("cogmora_frames_rejected_total", feed="kucoin-futures-0",
                           reason="inexact_price")

    frame = {"topic": f"/contractMarket/ticker:{symbol}", "type": "message",
             "subject": "ticker", "data": {"symbol": symbol, "price": "1E-13",
                                           "bestBidPrice": "1E-13", "bestAskPrice": "1E-13",
                                           "ts": time.time_ns()}}
    assert exchange.send_raw("futures", json.dumps(frame)) > 0
    wait_for(lambda: worker.metric("cogmora_frames_rejected_total", feed="kucoin-futures-0",
                                   reason="inexact_price") == before + 1)
    time.sleep(0.5)
    assert document(db, f"users/{uid}/executedTriggers/t") is None
    assert balance_of(db, uid) == D("10000")

    # The next writable price fills the market order, 1E-9 exactly.
    execution = keep_publishing(lambda: exchange.publish(symbol, "1E-9", "1E-9", "2E-9"),
                                lambda: execution_of(db, uid, "t"))
    assert (execution["status"], execution["executedPrice"]) == ("filled", 2e-9)
    assert balance_of(db, uid) == D("9899.82")  # 100 + 300 × 0.0006
