"""End to end: no level fires on a price printed before it was set (DESIGN.md §3).

Issue 12, item 1. Emulators, the local exchange and `python -m worker`
processes of this module. The attacks: edit an old trigger onto a symbol the
worker does not watch yet, with its target at that symbol's earlier low; add a
take-profit to an old position at an earlier spike; edit a level while the
worker is down. Each would fill from the exchange's candles of the gap. What
must keep working: a stop that was set before a genuine gap and crossed during
it executes on restart.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

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

FAST = {"HEARTBEAT_SECONDS": "0.3", "PEAK_PERSIST_SECONDS": "0.2"}


def position(symbol: str, **overrides: Any) -> dict:
    """A 10x long of 500 USDT at 100: size 50, debit 500 + 3 = 503."""
    base = {"symbol": symbol, "amount": 500, "leverage": 10, "executedPrice": 100,
            "targetPrice": 100}
    return execution_doc(**{**base, **overrides})


def wait_for_the_next_minute(since: float) -> None:
    """Wait until a new minute has begun after `since` (s): its candle starts after it."""
    while int(time.time()) // 60 == int(since) // 60:
        time.sleep(0.2)


def test_levels_set_on_a_symbol_not_yet_watched_never_fire_on_its_earlier_prices(
        db: Any, exchange: Exchange) -> None:
    # A previous worker's heartbeat of the market, an hour old: the market had a gap,
    # but no symbol of this test was watched then.
    db.document("workerState/kucoin-futures-0").set(
        {"lastTickMs": int(time.time() * 1000) - 3_600_000, "workerId": "earlier"})
    worker = WorkerProcess(exchange, "worker-hindsight-new", **FAST)
    try:
        trader, holder, probe = (funded_user(db, "hs-trigger"), funded_user(db, "hs-tp"),
                                 funded_user(db, "hs-probe"))
        trigger = f"users/{trader}/tradeTriggers/t"
        # An old trigger on a watched symbol, and an old spot position with no levels
        # (1,000 USDT at 100: size 10, debit 1,000 + 1 fee).
        db.document(trigger).set(trigger_doc(symbol="HSAUSDTM", targetPrice=1,
                                             leverage=10, amount=500))
        open_through_functions(db, holder, "p", spot_execution_doc(
            symbol="HSC-USDT", targetPrice=100, executedPrice=100))
        wait_for(lambda: worker.armed(trigger))
        created = time.time()
        wait_for_the_next_minute(created)

        # Later, on symbols nobody watches: a dip to 14.01 and a spike to 120.
        for symbol, prices in (("HSBUSDTM", ["15", "14.01", "16"]),
                               ("HSC-USDT", ["104", "120", "100"])):
            for price in prices:
                assert exchange.publish(symbol, price) == 0
        # Then the edits: the trigger onto the dip, a take-profit under the spike.
        db.document(trigger).update({"symbol": "HSBUSDTM", "targetPrice": 14.01})
        db.document(f"users/{holder}/openPositions/p").update({"details.takeProfit": 119})
        # Probes set with them: the first live tick fires them, after any catching up.
        db.document(f"users/{probe}/tradeTriggers/b").set(trigger_doc(
            symbol="HSBUSDTM", condition="above", targetPrice=15.5, leverage=10))
        db.document(f"users/{probe}/tradeTriggers/c").set(trigger_doc(
            symbol="HSC-USDT", symbolType="spot", action="buy", leverage=1,
            condition="above", targetPrice=99))
        for path in (trigger, f"users/{holder}/openPositions/p",
                     f"users/{probe}/tradeTriggers/b", f"users/{probe}/tradeTriggers/c"):
            wait_for(lambda path=path: worker.armed(path))

        keep_publishing(lambda: (exchange.publish("HSBUSDTM", "16"),
                                 exchange.publish("HSC-USDT", "100")),
                        lambda: execution_of(db, probe, "b") and execution_of(db, probe, "c"))
        time.sleep(1.0)  # a mark from catching up, were there one, lands meanwhile

        assert document(db, f"users/{trader}/executedTriggers/t") is None
        assert document(db, f"users/{holder}/openPositions/p")["details"]["status"] == "open"
        assert balance_of(db, trader) == D("10000")
        assert worker.metric("cogmora_marks_total", reason="gap_recovery") == 0

        # The levels work on prices printed after them, at the live fill.
        execution = keep_publishing(lambda: exchange.publish("HSBUSDTM", "14", "13.99", "14.01"),
                                    lambda: execution_of(db, trader, "t"))
        assert (execution["status"], execution["executedPrice"]) == ("filled", 14.01)
        history = keep_publishing(lambda: exchange.publish("HSC-USDT", "119.5", "119.4", "119.6"),
                                  lambda: closed_history(db, holder, "p"))
    finally:
        assert worker.stop() == 0
    # 10x of 500 at 14.01: debit 500 + 5,000 × 0.0006 = 503.
    assert balance_of(db, trader) == D("9497")
    # proceeds 10 × 119.4 = 1,194, fee 1.194: credit 1,192.806.
    assert (history["closeReason"], history["closePrice"]) == ("take_profit", 119.4)
    assert balance_of(db, holder) == D("8999") + D("1192.806")


def test_a_level_edited_while_the_worker_is_down_is_not_caught_up_but_a_genuine_stop_is(
        db: Any, exchange: Exchange) -> None:
    symbol = "HSDUSDTM"
    edited, genuine = funded_user(db, "hs-edit"), funded_user(db, "hs-genuine")
    edited_path = f"users/{edited}/openPositions/p"
    open_through_functions(db, edited, "p", position(symbol, stopLoss=90))
    open_through_functions(db, genuine, "q", position(symbol, stopLoss=99))
    opened = time.time()
    first = WorkerProcess(exchange, "worker-hindsight-first", **FAST)
    wait_for(lambda: first.armed(edited_path))
    keep_publishing(lambda: exchange.publish(symbol, "100"),
                    lambda: symbol in ((document(db, "workerState/kucoin-futures-0") or {})
                                       .get("symbols") or {}))
    assert first.stop() == 0
    wait_for_the_next_minute(opened)

    # While no worker runs: a spike to 110, a dip to 98.5, back to 100.
    for price in ["110", "98.5", "100"]:
        assert exchange.publish(symbol, price) == 0
    # After the spike, the user adds a take-profit under it.
    db.document(edited_path).update({"details.takeProfit": 109})

    second = WorkerProcess(exchange, "worker-hindsight-second", **FAST)
    try:
        genuine_history = wait_for(lambda: closed_history(db, genuine, "q"), timeout=30)
        time.sleep(1.0)
        assert document(db, edited_path)["details"]["status"] == "open"
        wait_for(lambda: second.armed(edited_path))
        history = keep_publishing(lambda: exchange.publish(symbol, "109.5", "109.4", "109.6"),
                                  lambda: closed_history(db, edited, "p"))
    finally:
        assert second.stop() == 0
    # The stop set before the gap: the candle's low 98.5 crossed 99, filled at its level.
    assert (genuine_history["closeReason"], genuine_history["closePrice"]) == ("stop_loss", 99)
    # gross 50 × (99 − 100) = −50, fee 50 × 99 × 0.0006 = 2.97: credit 447.03.
    assert balance_of(db, genuine) == D("9497") + D("447.03")
    # The take-profit fires on the live price after it, at the bid 109.4:
    # gross 50 × 9.4 = 470, fee 50 × 109.4 × 0.0006 = 3.282: credit 966.718.
    assert (history["closeReason"], history["closePrice"]) == ("take_profit", 109.4)
    assert balance_of(db, edited) == D("9497") + D("966.718")
