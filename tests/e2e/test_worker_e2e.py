"""End to end: emulators + local KuCoin + `python -m worker` + the functions.

Each scenario uses symbols of its own, so scenarios never fire each other's levels.
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal as D
from typing import Any

import pytest

from tests.support.builders import execution_doc, spot_execution_doc, trigger_doc
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import (
    closed_history,
    execution_of,
    funded_user,
    keep_publishing,
    open_through_functions,
)


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-e2e")
    yield process
    assert process.stop() == 0, "the worker must stop cleanly on SIGTERM"


def futures_long(symbol: str, **overrides: Any) -> dict:
    base = {"symbol": symbol, "amount": 500, "leverage": 10, "executedPrice": 100,
            "targetPrice": 100}
    return execution_doc(**{**base, **overrides})


def test_stop_loss_closes_a_long_at_the_bid(db: Any, exchange: Exchange,
                                            worker: WorkerProcess) -> None:
    uid = funded_user(db)
    open_through_functions(db, uid, "p", futures_long("SLAUSDTM", stopLoss=95))
    assert balance_of(db, uid) == D("9497")
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/p"))

    history = keep_publishing(lambda: exchange.publish("SLAUSDTM", "94", "93.9", "94.1"),
                              lambda: closed_history(db, uid, "p"))

    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 93.9)
    assert (history["closeFee"], history["pnl"]) == (2.817, -310.817)
    assert balance_of(db, uid) == D("9689.183")
    assert document(db, f"users/{uid}/openPositions/p") is None


def test_take_profit_closes_spot_at_the_bid(db: Any, exchange: Exchange,
                                            worker: WorkerProcess) -> None:
    uid = funded_user(db)
    open_through_functions(db, uid, "p", spot_execution_doc(symbol="TPA-USDT",
                                                            takeProfit=55000))
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/p"))

    history = keep_publishing(lambda: exchange.publish("TPA-USDT", "55001", "55000.5", "55001.5"),
                              lambda: closed_history(db, uid, "p"))

    assert (history["closeReason"], history["closePrice"]) == ("take_profit", 55000.5)
    assert balance_of(db, uid) == D("10097.90999")


def test_trigger_above_opens_a_short_at_the_bid(db: Any, exchange: Exchange,
                                                worker: WorkerProcess) -> None:
    uid = funded_user(db)
    db.document(f"users/{uid}/tradeTriggers/t").set(trigger_doc(
        symbol="TABUSDTM", condition="above", targetPrice=141, action="short", amount=200,
        leverage=5))
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/t"))

    execution = keep_publishing(lambda: exchange.publish("TABUSDTM", "141.2", "141.1", "141.3"),
                                lambda: execution_of(db, uid, "t"))

    assert (execution["status"], execution["executedPrice"]) == ("filled", 141.1)
    assert document(db, f"users/{uid}/tradeTriggers/t") is None
    position = document(db, f"users/{uid}/openPositions/t")
    assert position is not None
    assert (position["positionType"], position["size"]) == ("short", 7.08717222)
    assert position["liquidationPrice"] == 168.6145
    assert balance_of(db, uid) == D("9799.4")


def test_trigger_below_opens_a_long_at_the_ask(db: Any, exchange: Exchange,
                                               worker: WorkerProcess) -> None:
    uid = funded_user(db)
    db.document(f"users/{uid}/tradeTriggers/t").set(trigger_doc(symbol="TBLUSDTM"))
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/t"))
    exchange.publish("TBLUSDTM", "60000.5", "60000", "60001")  # not crossed yet

    execution = keep_publishing(lambda: exchange.publish("TBLUSDTM", "59990", "59989", "59991"),
                                lambda: execution_of(db, uid, "t"))

    assert execution["executedPrice"] == 59991
    position = document(db, f"users/{uid}/openPositions/t")
    assert position is not None and position["size"] == 0.00500075  # 3x: 300 / 59991
    assert balance_of(db, uid) == D("9899.82")


def test_market_order_fills_at_the_latest_fresh_ask(db: Any, exchange: Exchange,
                                                    worker: WorkerProcess) -> None:
    uid = funded_user(db)
    # Something resting on the symbol keeps it subscribed, so a fresh price exists.
    db.document(f"users/{uid}/tradeTriggers/far").set(trigger_doc(
        symbol="MKA-USDT", symbolType="spot", action="buy", leverage=1, targetPrice=1))
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/far"))
    keep_publishing(lambda: exchange.publish("MKA-USDT", "20", "19.99", "20.01"),
                    lambda: worker.metric("cogmora_ticks_total", feed="kucoin-spot-0") > 0)
    exchange.publish("MKA-USDT", "20", "19.99", "20.01")
    time.sleep(0.2)

    db.document(f"users/{uid}/tradeTriggers/now").set(trigger_doc(
        symbol="MKA-USDT", symbolType="spot", action="buy", leverage=1, condition="market",
        targetPrice=None, amount=1000))
    execution = wait_for(lambda: execution_of(db, uid, "now"), timeout=10)

    assert execution["executedPrice"] == 20.01
    position = document(db, f"users/{uid}/openPositions/now")
    assert position is not None and position["size"] == 49.97501249
    assert balance_of(db, uid) == D("8999")


def test_manual_close_is_priced_at_the_next_tick(db: Any, exchange: Exchange,
                                                 worker: WorkerProcess) -> None:
    uid = funded_user(db)
    open_through_functions(db, uid, "p", spot_execution_doc(symbol="MNA-USDT"))
    db.document(f"users/{uid}/openPositions/p").update({"details.status": "closing"})
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/p"))

    history = keep_publishing(lambda: exchange.publish("MNA-USDT", "51000", "50990", "51010"),
                              lambda: closed_history(db, uid, "p"))

    assert (history["closeReason"], history["closePrice"]) == ("manual", 50990)
    assert balance_of(db, uid) == D("10017.7802")


def test_futures_liquidation_settles_to_zero(db: Any, exchange: Exchange,
                                             worker: WorkerProcess) -> None:
    uid = funded_user(db)
    open_through_functions(db, uid, "p", futures_long("LQAUSDTM"))
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/p"))

    history = keep_publishing(lambda: exchange.publish("LQAUSDTM", "90", "89.9", "90.1"),
                              lambda: closed_history(db, uid, "p"))

    assert (history["closeReason"], history["closePrice"]) == ("liquidation", 89.9)
    assert history["pnl"] == -503
    assert balance_of(db, uid) == D("9497")


def test_triggers_written_while_running_are_armed_within_a_second(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    uid = funded_user(db)
    delays = []
    for n in range(5):
        path = f"users/{uid}/tradeTriggers/t{n}"
        started = time.monotonic()
        db.document(path).set(trigger_doc(symbol="ARMUSDTM", targetPrice=50000 - n))
        wait_for(lambda path=path: worker.armed(path), timeout=10, every=0.01)
        delays.append(time.monotonic() - started)

    assert statistics.median(delays) < 1.0, delays
    keep_publishing(lambda: exchange.publish("ARMUSDTM", "49000", "48999", "49001"),
                    lambda: all(execution_of(db, uid, f"t{n}") for n in range(5)))
    assert balance_of(db, uid) == D("10000") - 5 * D("100.18")


def test_a_cancelled_trigger_never_fires(db: Any, exchange: Exchange,
                                         worker: WorkerProcess) -> None:
    uid = funded_user(db)
    path = f"users/{uid}/tradeTriggers/t"
    db.document(path).set(trigger_doc(symbol="CNXUSDTM"))
    wait_for(lambda: worker.armed(path))
    db.document(path).update({"details.status": "cancelled"})
    wait_for(lambda: not worker.armed(path))

    for _ in range(20):
        exchange.publish("CNXUSDTM", "50000", "49999", "50001")
        time.sleep(0.05)
    time.sleep(1)

    assert document(db, f"users/{uid}/executedTriggers/t") is None
    assert document(db, path)["details"]["status"] == "cancelled"
    assert balance_of(db, uid) == D("10000")


def test_an_invalid_trigger_is_rejected_with_a_reason(db: Any, worker: WorkerProcess) -> None:
    uid = funded_user(db)
    path = f"users/{uid}/tradeTriggers/t"
    db.document(path).set(trigger_doc(symbol="BADUSDTM", leverage=500))

    trigger = wait_for(lambda: (d := document(db, path)) and
                       d["details"]["status"] == "rejected" and d)

    assert trigger["details"]["error"] == "invalid_leverage"
    assert not worker.armed(path)
