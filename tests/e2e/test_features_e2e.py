"""End to end: gap recovery, trailing stops, one-cancels-other triggers and funding.

Emulators (Firestore + Functions), the local KuCoin and `python -m worker`
processes of this module. Every position is a 10x long (or short) of 500 USDT
at 100 on a symbol no other test uses: size 50, debit 500 + 5,000 × 0.0006 = 503.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

import pytest

from tests.support.builders import execution_doc, trigger_doc
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import (
    closed_history,
    funded_user,
    keep_publishing,
    open_through_functions,
)

FAST = {"HEARTBEAT_SECONDS": "0.3", "PEAK_PERSIST_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-features", **FAST)
    yield process
    assert process.stop() == 0


def position(symbol: str, **overrides: Any) -> dict:
    base = {"symbol": symbol, "amount": 500, "leverage": 10, "executedPrice": 100,
            "targetPrice": 100}
    return execution_doc(**{**base, **overrides})


@pytest.mark.parametrize(("venue", "symbol"), [("kucoin", "GAPUSDTM"),
                                               ("backpack", "GAP_USDC_PERP")])
def test_a_stop_crossed_while_the_worker_is_down_executes_on_restart_at_the_level(
        db: Any, exchange: Exchange, venue: str, symbol: str) -> None:
    uid = funded_user(db, f"gap-{venue}")
    path = f"users/{uid}/openPositions/p"
    open_through_functions(db, uid, "p", position(symbol, venue=venue, stopLoss=95))
    first = WorkerProcess(exchange, f"worker-gap-{venue}-first", **FAST)
    wait_for(lambda: first.armed(path))
    keep_publishing(lambda: exchange.publish(symbol, "100"),
                    lambda: (document(db, f"workerState/{venue}-futures-0") or {}).get(
                        "lastTickMs", 0) > time.time() * 1000 - 1000)
    assert first.stop() == 0
    # Candles that began before the position existed are not replayed: cross in a later one.
    opened_minute = int(document(db, path)["openedAt"].timestamp()) // 60
    while int(time.time()) // 60 == opened_minute:
        time.sleep(0.5)

    # While no worker runs the price (Backpack: the mid) dips through the stop and comes
    # back; the exchange's candles (KuCoin's klines, Backpack's) remember it.
    for price in ["97", "94", "96.5"]:
        assert exchange.publish(symbol, price) == 0
    assert document(db, path)["details"]["status"] == "open"

    second = WorkerProcess(exchange, f"worker-gap-{venue}-second", **FAST)
    try:
        history = wait_for(lambda: closed_history(db, uid, "p"), timeout=30)
    finally:
        assert second.stop() == 0
    # The candle opened at 97, above 95, and its low was 94: the stop fills at its level.
    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 95)
    assert history.get("venue", "kucoin") == venue
    assert document(db, f"users/{uid}/executedTriggers/p")["status"] == "filled"
    assert document(db, path) is None
    # gross 50 × (95 − 100) = −250, fee 50 × 95 × 0.0006 = 2.85: credit 247.15.
    assert balance_of(db, uid) == D("9497") + D("247.15")


def test_a_trailing_stop_follows_a_rising_price_and_fires_on_the_pullback(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "TRLUSDTM"
    uid = funded_user(db, "trail")
    path = f"users/{uid}/openPositions/p"
    opened = open_through_functions(db, uid, "p", position(symbol, trailingStop={"distance": 2}))
    assert opened["details"]["trailingStop"] == {"distance": 2}
    wait_for(lambda: worker.armed(path))
    keep_publishing(lambda: None, lambda: exchange.publish(symbol, "100") > 0)
    for price in ["103", "106", "108", "107", "106.5"]:
        assert exchange.publish(symbol, price) == 1
    wait_for(lambda: document(db, path).get("trailing", {}).get("highWaterMark") == 108)
    trailing = document(db, path)["trailing"]
    assert (trailing["highWaterMark"], trailing["stopPrice"]) == (108, 106)
    assert document(db, path)["details"]["status"] == "open"

    history = keep_publishing(lambda: exchange.publish(symbol, "105.9", "105.8", "106"),
                              lambda: closed_history(db, uid, "p"))
    assert (history["closeReason"], history["closeDetail"], history["closePrice"]) == (
        "stop_loss", "trailing_stop", 105.8)
    # gross 50 × 5.8 = 290, fee 50 × 105.8 × 0.0006 = 3.174: credit 786.826.
    assert balance_of(db, uid) == D("9497") + D("786.826")


def test_an_oco_pair_crossed_by_one_tick_executes_one_side_only(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "OCOUSDTM"
    uid = funded_user(db, "oco")
    batch = db.batch()
    batch.set(db.document(f"users/{uid}/tradeTriggers/low"), trigger_doc(
        symbol=symbol, condition="below", targetPrice=100, leverage=10, ocoTriggerId="high"))
    batch.set(db.document(f"users/{uid}/tradeTriggers/high"), trigger_doc(
        symbol=symbol, condition="above", targetPrice=99, leverage=10, ocoTriggerId="low"))
    batch.commit()
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/low")
             and worker.armed(f"users/{uid}/tradeTriggers/high"))

    keep_publishing(lambda: exchange.publish(symbol, "99.5"),
                    lambda: list(db.collection(f"users/{uid}/openPositions").stream()))
    time.sleep(1.0)  # let any second mark land, if the system were to make one

    executions = [e.to_dict() for e in db.collection(f"users/{uid}/executedTriggers").stream()]
    assert len(executions) == 1
    winner = executions[0]["triggerId"]
    loser = "high" if winner == "low" else "low"
    assert executions[0]["ocoCancelled"] == loser
    assert document(db, f"users/{uid}/tradeTriggers/{loser}")["details"] == {
        "status": "cancelled", "cancelledBy": winner, "cancelReason": "oco"}
    assert len(list(db.collection(f"users/{uid}/openPositions").stream())) == 1
    # One 10x position of 100 USDT: debit 100 + 1,000 × 0.0006 = 100.6.
    assert balance_of(db, uid) == D("10000") - D("100.6")


def test_funding_moves_balances_by_the_exact_amount_once(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "FNDUSDTM"
    longer, shorter = funded_user(db, "fund-long"), funded_user(db, "fund-short")
    open_through_functions(db, longer, "p", position(symbol))
    open_through_functions(db, shorter, "p", position(symbol, action="short",
                                                      condition="above"))
    for uid in (longer, shorter):
        wait_for(lambda uid=uid: worker.armed(f"users/{uid}/openPositions/p"))
    keep_publishing(lambda: None, lambda: exchange.publish(symbol, "101.3") > 0)
    funding_time = int(time.time() * 1000)
    keep_publishing(lambda: exchange.call(exchange.futures.publish_funding(
        symbol, D("0.0001"), funding_time)), lambda: document(
        db, f"fundingEvents/kucoin_{symbol}_{funding_time}"))
    exchange.call(exchange.futures.publish_funding(symbol, D("0.0001"), funding_time,
                                                   "funding.end"))
    event = wait_for(lambda: (e := document(db, f"fundingEvents/kucoin_{symbol}_{funding_time}"))
                     and e["status"] == "applied" and e)
    assert (event["rate"], event["markPrice"], event["positions"]) == (0.0001, 101.3, 2)

    # 50 × 101.3 × 0.0001 = 0.5065: the long pays it, the short receives it.
    assert balance_of(db, longer) == D("9497") - D("0.5065")
    assert balance_of(db, shorter) == D("9497") + D("0.5065")
    record = document(db, f"users/{longer}/openPositions/p")["funding"]
    assert (record["total"], record["count"]) == (-0.5065, 1)
    history = document(db, f"users/{shorter}/tradeHistory/p")
    assert history["funding"] == 0.5065
    assert [p["amount"] for p in history["fundingPayments"]] == [0.5065]
