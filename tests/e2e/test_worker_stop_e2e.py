"""End to end: SIGTERM while a mark waits on a locked document (issue 13, item 3).

Cloud Run kills an instance 10 s after SIGTERM. A worker whose mark waited on
a document another transaction held took ~52 s to exit: Python waits at exit
for threads blocked in Firestore. The worker must exit within its grace
period whatever Firestore does, and the mark it cut short must be safe to
retry: the next instance closes the position exactly once.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

from tests.support.builders import execution_doc
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import (
    closed_history,
    funded_user,
    keep_publishing,
    open_through_functions,
)


def test_a_worker_stops_in_its_grace_period_while_a_mark_waits_on_a_lock(
        db: Any, exchange: Exchange) -> None:
    symbol = "STOPUSDTM"
    uid = funded_user(db, "stop")
    path = f"users/{uid}/openPositions/p"
    open_through_functions(db, uid, "p", execution_doc(
        symbol=symbol, amount=500, leverage=10, executedPrice=100, targetPrice=100,
        stopLoss=95))
    first = WorkerProcess(exchange, "worker-stop-first")
    wait_for(lambda: first.armed(path))

    # Another transaction holds the position: the worker's mark waits on its lock.
    holder = db.transaction()
    holder._begin()
    db.document(path).get(transaction=holder)
    try:
        keep_publishing(lambda: exchange.publish(symbol, "94", "93.9", "94.1"),
                        lambda: not first.armed(path), timeout=10)
        time.sleep(1.0)  # the mark is now inside its transaction, waiting

        started = time.monotonic()
        code = first.stop()
        stopped_in = time.monotonic() - started
    finally:
        holder._rollback()

    assert code == 0
    assert stopped_in < 10, f"stopped in {stopped_in:.1f} s: Cloud Run would have killed it"
    # The mark it cut short either committed or changed nothing; the next instance
    # closes the position exactly once at its stop.
    second = WorkerProcess(exchange, "worker-stop-second")
    try:
        history = keep_publishing(lambda: exchange.publish(symbol, "94", "93.9", "94.1"),
                                  lambda: closed_history(db, uid, "p"), timeout=40)
    finally:
        assert second.stop() == 0
    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 93.9)
    assert document(db, path) is None
    # gross 50 × (93.9 − 100) = −305, fee 50 × 93.9 × 0.0006 = 2.817: credit 192.183.
    assert balance_of(db, uid) == D("9497") + D("192.183")
