"""End to end on Backpack: emulators + local Backpack + `python -m worker` + the functions.

Backpack's bookTicker has no last price: conditions are detected on the mid
price (bid + ask) / 2 and fills use the bid or the ask. Each scenario uses
symbols of its own, so scenarios never fire each other's levels.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

import httpx
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
    process = WorkerProcess(exchange, "worker-backpack-e2e")
    yield process
    assert process.stop() == 0, "the worker must stop cleanly on SIGTERM"


def backpack_long(symbol: str, **overrides: Any) -> dict:
    """Return a pending 10x long of 500 on a Backpack perpetual, filled at 100."""
    base = {"venue": "backpack", "symbol": symbol, "amount": 500, "leverage": 10,
            "executedPrice": 100, "targetPrice": 100}
    return execution_doc(**{**base, **overrides})


def publish_for(exchange: Exchange, symbol: str, bid: str, ask: str, seconds: float) -> None:
    """Publish the same bookTicker for a while (a level that must not fire)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        exchange.publish(symbol, bid, bid, ask)
        time.sleep(0.05)


def test_a_backpack_trigger_opens_a_perp_long_at_the_ask_when_the_mid_crosses(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    uid = funded_user(db)
    path = f"users/{uid}/tradeTriggers/t"
    db.document(path).set(trigger_doc(venue="backpack", symbol="SOL_USDC_PERP",
                                      condition="below", targetPrice=140, action="long",
                                      amount=500, leverage=10))
    wait_for(lambda: worker.armed(path))
    wait_for(lambda: "SOL_USDC_PERP" in exchange.backpack.subscribed())
    assert "markPrice.SOL_USDC_PERP" in exchange.backpack.streams()

    # The bid is below the target but the mid (140.01) is not: nothing fires.
    publish_for(exchange, "SOL_USDC_PERP", "139.98", "140.04", seconds=1.0)
    assert document(db, f"users/{uid}/executedTriggers/t") is None
    assert worker.metric("cogmora_ticks_total", feed="backpack") > 0

    # Mid 139.95 <= 140: fires; a long buys at the ask.
    execution = keep_publishing(
        lambda: exchange.publish("SOL_USDC_PERP", "139.9", "139.9", "140.0"),
        lambda: execution_of(db, uid, "t"))

    assert (execution["status"], execution["executedPrice"]) == ("filled", 140)
    assert execution["venue"] == "backpack"
    assert document(db, path) is None
    position = document(db, f"users/{uid}/openPositions/t")
    assert position is not None
    assert (position["venue"], position["symbol"], position["positionType"]) == (
        "backpack", "SOL_USDC_PERP", "long")
    assert (position["size"], position["averageEntryPrice"]) == (35.71428571, 140)
    assert (position["margin"], position["openFee"]) == (500, 3)
    assert position["liquidationPrice"] == 126.7  # 140 × (1 − 1/10 + 0.005)
    assert document(db, f"users/{uid}/tradeHistory/t")["venue"] == "backpack"
    # USDC-quoted: margin and fee come 1:1 out of the account's balance.
    assert balance_of(db, uid) == D("9497")
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/t"))  # armed on Backpack


def test_a_backpack_stop_loss_closes_a_long_at_the_bid_with_an_exact_balance(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    uid = funded_user(db)
    position = open_through_functions(db, uid, "p", backpack_long("SLB_USDC_PERP",
                                                                  stopLoss=95))
    assert (position["venue"], position["size"]) == ("backpack", 50)
    assert balance_of(db, uid) == D("9497")
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/p"))
    wait_for(lambda: "SLB_USDC_PERP" in exchange.backpack.subscribed())

    # The bid touches the stop but the mid (95.025) does not: the position stays open.
    publish_for(exchange, "SLB_USDC_PERP", "94.95", "95.1", seconds=1.0)
    assert document(db, f"users/{uid}/openPositions/p")["details"]["status"] == "open"

    history = keep_publishing(lambda: exchange.publish("SLB_USDC_PERP", "94.9", "94.9", "95"),
                              lambda: closed_history(db, uid, "p"))

    # gross 50 × (94.9 − 100) = −255, fee 50 × 94.9 × 0.0006 = 2.847, credit 242.153
    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 94.9)
    assert (history["closeFee"], history["credit"], history["pnl"]) == (2.847, 242.153,
                                                                        -260.847)
    assert (history["venue"], history["symbol"]) == ("backpack", "SLB_USDC_PERP")
    assert balance_of(db, uid) == D("9739.153")
    assert document(db, f"users/{uid}/openPositions/p") is None


def test_a_backpack_spot_take_profit_sells_at_the_bid(db: Any, exchange: Exchange,
                                                      worker: WorkerProcess) -> None:
    uid = funded_user(db)
    open_through_functions(db, uid, "p", spot_execution_doc(
        venue="backpack", symbol="TPB_USDC", amount=1000, targetPrice=49, executedPrice=50,
        takeProfit=55))
    assert balance_of(db, uid) == D("8999")
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/p"))

    history = keep_publishing(lambda: exchange.publish("TPB_USDC", "55", "55", "55.2"),
                              lambda: closed_history(db, uid, "p"))

    # size 20, proceeds 20 × 55 = 1100, fee 1.1
    assert (history["closeReason"], history["closePrice"], history["pnl"]) == (
        "take_profit", 55, 97.9)
    assert balance_of(db, uid) == D("10097.9")
    assert "markPrice.TPB_USDC" not in exchange.backpack.streams()


def test_the_worker_reports_the_backpack_feed_and_survives_a_dropped_connection(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    uid = funded_user(db)
    open_through_functions(db, uid, "p", backpack_long("DRB_USDC_PERP", stopLoss=95))
    wait_for(lambda: "DRB_USDC_PERP" in exchange.backpack.subscribed())
    before = worker.metric("cogmora_reconnects_total", feed="backpack")

    exchange.call(exchange.backpack.drop_connections())
    wait_for(lambda: worker.metric("cogmora_reconnects_total", feed="backpack") > before)
    wait_for(lambda: "DRB_USDC_PERP" in exchange.backpack.subscribed())
    health = httpx.get(f"{worker.url}/healthz", timeout=5)
    assert (health.status_code, health.json()["parts"]["backpack"]) == (200, True)

    history = keep_publishing(lambda: exchange.publish("DRB_USDC_PERP", "94", "93.9", "94.1"),
                              lambda: closed_history(db, uid, "p"))
    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 93.9)
    assert balance_of(db, uid) == D("9689.183")


def test_backpack_funding_read_off_the_mark_price_moves_balances_exactly_once(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    symbol = "FND_USDC_PERP"
    longer, shorter = funded_user(db, "bp-fund-long"), funded_user(db, "bp-fund-short")
    open_through_functions(db, longer, "p", backpack_long(symbol))
    open_through_functions(db, shorter, "p", backpack_long(symbol, action="short",
                                                           condition="above"))
    for uid in (longer, shorter):
        wait_for(lambda uid=uid: worker.armed(f"users/{uid}/openPositions/p"))
    wait_for(lambda: f"markPrice.{symbol}" in exchange.backpack.streams())

    funding_time = int(time.time() * 1000) + 500
    assert exchange.call(exchange.backpack.publish_mark(
        symbol, D("101.3"), D("0.0001"), funding_time)) == 1
    time.sleep(0.7)  # the funding time passes; the next frame names the next hour
    for _ in range(2):  # repeated frames settle nothing more
        assert exchange.call(exchange.backpack.publish_mark(
            symbol, D("101.4"), D("0.00002"), funding_time + 3_600_000)) == 1
    event_path = f"fundingEvents/backpack_{symbol}_{funding_time}"
    event = wait_for(lambda: (e := document(db, event_path)) and e["status"] == "applied" and e)
    assert (event["venue"], event["rate"], event["markPrice"], event["positions"]) == (
        "backpack", 0.0001, 101.3, 2)

    # 50 × 101.3 × 0.0001 = 0.5065: the long pays it, the short receives it.
    assert balance_of(db, longer) == D("9497") - D("0.5065")
    assert balance_of(db, shorter) == D("9497") + D("0.5065")
    assert document(db, f"users/{longer}/openPositions/p")["funding"]["count"] == 1
