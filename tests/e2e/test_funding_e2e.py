"""End to end: funding races closes, and never takes a balance below zero.

Emulators (Firestore + Functions), the local KuCoin and a `python -m worker`
of this module. Every position is a 10x long of 500 USDT at 100 on a symbol
no other test uses: size 50, margin 500, debit 500 + 5,000 × 0.0006 = 503,
liquidation 90.5. The price is 101.3 when funding settles and when a position
closes, so a close credits 500 + 50 × 1.3 − 50 × 101.3 × 0.0006 = 561.961 and
funding at rate 0.0001 costs the long 50 × 101.3 × 0.0001 = 0.5065.

The worker hears a symbol's funding announcements while it watches the symbol:
where the position under test closes before the announcement, a bystander's
open long on the same symbol keeps it watched (and pays too).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.reconcile import reconcile
from tests.support.builders import execution_doc
from tests.support.emulator import balance_of, document, new_uid, set_background_triggers, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import (
    closed_history,
    funded_user,
    keep_publishing,
    open_through_functions,
)

PRICE = "101.3"


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-funding")
    yield process
    assert process.stop() == 0


def long_position(symbol: str) -> dict:
    return execution_doc(symbol=symbol, amount=500, leverage=10, executedPrice=100,
                         targetPrice=100)


def open_long(db: Any, worker: WorkerProcess, exchange: Exchange, uid: str,
              symbol: str) -> str:
    """Open the long through the functions, armed in the worker, last price 101.3."""
    open_through_functions(db, uid, "p", long_position(symbol))
    path = f"users/{uid}/openPositions/p"
    wait_for(lambda: worker.armed(path))
    keep_publishing(lambda: None, lambda: exchange.publish(symbol, PRICE) > 0)
    return path


def close_manually(db: Any, exchange: Exchange, path: str, symbol: str) -> dict:
    """Ask for a manual close as the app does; return the worker's close request.

    The functions may settle the close before it is seen on the position: then
    the request's time and price are read off the closed history record.
    """
    db.document(path).update({"details.status": "closing"})
    _, uid, _, position_id = path.split("/")

    def priced() -> dict | None:
        request = (((document(db, path) or {}).get("details") or {}).get("closeRequest")
                   or {})
        if request.get("price"):
            return request
        history = closed_history(db, uid, position_id)
        return ({"at": history["closeRequestedAt"], "price": history["closePrice"]}
                if history else None)

    return keep_publishing(lambda: exchange.publish(symbol, PRICE), priced)


def settle_funding(db: Any, exchange: Exchange, symbol: str, rate: str,
                   funding_time: int) -> dict:
    """Announce a funding settlement at `funding_time`; return the event once applied."""
    event_path = f"fundingEvents/kucoin_{symbol}_{funding_time}"
    keep_publishing(lambda: exchange.call(exchange.futures.publish_funding(
        symbol, D(rate), funding_time)), lambda: document(db, event_path))
    return wait_for(lambda: (e := document(db, event_path)) and e["status"] == "applied" and e)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_a_position_held_through_the_funding_time_pays_though_settled_before_funding_ran(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "FHTUSDTM"
    uid, bystander = funded_user(db, "fund-held"), funded_user(db, "fund-by")
    open_long(db, worker, exchange, bystander, symbol)
    path = open_long(db, worker, exchange, uid, symbol)
    funding_time = int(time.time() * 1000)
    time.sleep(0.3)  # the close is asked for after the funding time

    request = close_manually(db, exchange, path, symbol)
    assert ms(request["at"]) > funding_time
    history = wait_for(lambda: closed_history(db, uid, "p"))
    assert balance_of(db, uid) == D("9497") + D("561.961")

    event = settle_funding(db, exchange, symbol, "0.0001", funding_time)

    assert (event["positions"], event["netPaidByTraders"]) == (2, 1.013)
    assert balance_of(db, uid) == D("9497") + D("561.961") - D("0.5065")
    assert balance_of(db, bystander) == D("9497") - D("0.5065")
    history = document(db, f"users/{uid}/tradeHistory/p")
    # pnl 561.961 − 503 − 0.5065; pnlPercent 58.4545 / 503 × 100.
    assert (history["pnl"], history["pnlPercent"], history["funding"]) == (
        58.4545, 11.6212, -0.5065)
    assert [(p["amount"], p["fundingTime"]) for p in history["fundingPayments"]] == [
        (-0.5065, funding_time)]


def test_a_close_asked_for_5_s_before_the_funding_time_pays_nothing_though_settled_late(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "FCLUSDTM"
    uid, bystander = funded_user(db, "fund-closed"), funded_user(db, "fund-by")
    open_long(db, worker, exchange, bystander, symbol)
    path = open_long(db, worker, exchange, uid, symbol)
    set_background_triggers(False)  # the close's settlement fails to run: it will be late
    try:
        request = close_manually(db, exchange, path, symbol)
    finally:
        set_background_triggers(True)
    funding_time = ms(request["at"]) + 5000
    while time.time() * 1000 <= funding_time:
        time.sleep(0.2)

    event = settle_funding(db, exchange, symbol, "0.0001", funding_time)

    assert (event["positions"], event["netPaidByTraders"]) == (1, 0.5065)  # the bystander
    assert balance_of(db, bystander) == D("9497") - D("0.5065")
    assert document(db, path)["details"]["status"] == "closing"  # still not settled
    assert balance_of(db, uid) == D("9497")
    report = reconcile(FirestoreDatabase(db), datetime.now(UTC) + timedelta(minutes=1))
    assert report.closes.get("settled", 0) >= 1
    history = closed_history(db, uid, "p")
    assert history is not None
    assert balance_of(db, uid) == D("9497") + D("561.961")
    assert (history["pnl"], "fundingPayments" in history) == (58.961, False)


def test_funding_larger_than_the_balance_takes_margin_then_liquidates_never_below_zero(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    symbol = "FNGUSDTM"
    uid = new_uid("fund-poor")
    db.document(f"users/{uid}").set({"balance": 503.3})  # 0.3 left once the long is open
    wait_for(lambda: "createdAt" in (document(db, f"users/{uid}") or {}))
    path = open_long(db, worker, exchange, uid, symbol)
    assert balance_of(db, uid) == D("0.3")
    first = int(time.time() * 1000)

    settle_funding(db, exchange, symbol, "0.0001", first)

    # 0.3 from the balance, 0.2065 from the margin; liquidation 90.5 + 0.2065 / 50.
    assert balance_of(db, uid) == D("0")
    position = document(db, path)
    assert (position["margin"], position["liquidationPrice"]) == (499.7935, 90.50413)
    assert (position["funding"]["total"], position["funding"]["fromMargin"]) == (
        -0.5065, 0.2065)

    second = first + 1000
    event = settle_funding(db, exchange, symbol, "0.1", second)

    # Due 50 × 101.3 × 0.1 = 506.5, more than the 499.7935 margin left: liquidated at
    # 101.3, equity 499.7935 + 65 − 3.039 = 561.7545 pays it, 55.2545 comes back.
    assert (event["positions"], event["netPaidByTraders"]) == (1, 506.5)
    assert document(db, path) is None
    assert balance_of(db, uid) == D("55.2545")
    history = document(db, f"users/{uid}/tradeHistory/p")
    assert (history["closeReason"], history["closeDetail"], history["closePrice"]) == (
        "liquidation", "funding", 101.3)
    # The account paid 503 + 0.3 and got 55.2545 back.
    assert (history["credit"], history["pnl"], history["funding"]) == (
        55.2545, -448.0455, -507.0065)
    assert [(p["amount"], p["fromMargin"], p["shortfall"])
            for p in history["fundingPayments"]] == [(-0.5065, 0.2065, 0),
                                                     (-506.5, 506.5, 0)]
