"""The settlement functions, fired by real Firestore writes on the emulators."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from google.cloud import firestore

from cogmora_backend import handlers
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.marks import mark_position
from cogmora_backend.reconcile import reconcile
from cogmora_core.model import Tick
from tests.support.builders import execution_doc, position_doc, spot_execution_doc
from tests.support.emulator import (
    balance_of,
    document,
    new_uid,
    set_background_triggers,
    wait_for,
)
from tests.support.ledger import ledger_total
from tests.support.system import closed_history, execution_of


def write_execution(db: Any, uid: str, eid: str, doc: dict) -> None:
    db.document(f"users/{uid}/executedTriggers/{eid}").set(
        {**doc, "executedAt": firestore.SERVER_TIMESTAMP}
    )


def settled_execution(db: Any, uid: str, eid: str) -> dict:
    return wait_for(lambda: execution_of(db, uid, eid))


def mark_closing(db: Any, uid: str, pid: str, price: float, reason: str = "manual") -> None:
    db.document(f"users/{uid}/openPositions/{pid}").update(
        {
            "details.status": "closing",
            "details.closeRequest": {
                "reason": reason,
                "price": price,
                "at": firestore.SERVER_TIMESTAMP,
                "source": "test",
            },
        }
    )


def closed(db: Any, uid: str, pid: str) -> dict:
    return wait_for(lambda: closed_history(db, uid, pid))


def test_new_user_gets_starting_balance_and_created_at(db: Any) -> None:
    uid = new_uid()
    db.document(f"users/{uid}").set({"displayName": "New"})

    user = wait_for(lambda: (d := document(db, f"users/{uid}")) and "createdAt" in d and d)

    assert user["balance"] == 10000
    assert isinstance(user["createdAt"], datetime)


def test_existing_balance_is_never_overwritten(db: Any) -> None:
    uid = new_uid()
    db.document(f"users/{uid}").set({"balance": 123.45})

    user = wait_for(lambda: (d := document(db, f"users/{uid}")) and "createdAt" in d and d)

    assert user["balance"] == 123.45


def test_execution_becomes_position_history_and_exact_balance(db: Any, funded_user: str) -> None:
    write_execution(db, funded_user, "e1", execution_doc(stopLoss=58000, takeProfit=65000))

    execution = settled_execution(db, funded_user, "e1")

    assert (execution["status"], execution["positionId"]) == ("filled", "e1")
    assert balance_of(db, funded_user) == D("9899.4")
    position = document(db, f"users/{funded_user}/openPositions/e1")
    assert position is not None
    assert (position["size"], position["margin"], position["openFee"]) == (0.01666667, 100, 0.6)
    assert position["liquidationPrice"] == 54300
    assert position["details"] == {"status": "open", "stopLoss": 58000, "takeProfit": 65000}
    history = document(db, f"users/{funded_user}/tradeHistory/e1")
    assert history is not None and history["status"] == "open"
    assert history["entryPrice"] == 60000


def test_priced_close_becomes_closed_history_exact_balance_and_disappears(
    db: Any, funded_user: str
) -> None:
    write_execution(db, funded_user, "e1", execution_doc())
    settled_execution(db, funded_user, "e1")

    mark_closing(db, funded_user, "e1", 63000, reason="take_profit")
    history = closed(db, funded_user, "e1")

    assert document(db, f"users/{funded_user}/openPositions/e1") is None
    assert (history["closePrice"], history["closeFee"]) == (63000, 0.63000013)
    assert (history["pnl"], history["closeReason"]) == (48.77000987, "take_profit")
    assert balance_of(db, funded_user) == D("10048.77000987")


def test_spot_round_trip_is_exact(db: Any, funded_user: str) -> None:
    write_execution(db, funded_user, "s1", spot_execution_doc())
    settled_execution(db, funded_user, "s1")
    assert balance_of(db, funded_user) == D("8999")

    mark_closing(db, funded_user, "s1", 55000)
    history = closed(db, funded_user, "s1")

    assert (history["pnl"], history["pnlPercent"]) == (97.9, 9.7802)
    assert balance_of(db, funded_user) == D("10097.9")


def test_the_same_events_handled_twice_change_money_once(db: Any, funded_user: str) -> None:
    doc = spot_execution_doc()
    write_execution(db, funded_user, "e1", doc)
    settled_execution(db, funded_user, "e1")

    # Deliver the same creation event again, as at-least-once delivery may.
    assert handlers.on_execution_created(funded_user, "e1", doc).kind == "skipped"
    assert balance_of(db, funded_user) == D("8999")

    mark_closing(db, funded_user, "e1", 55000)
    closed(db, funded_user, "e1")
    after = {"details": {"status": "closing", "closeRequest": {"reason": "manual", "price": 55000}}}
    assert handlers.on_position_written(funded_user, "e1", after).kind == "skipped"
    assert balance_of(db, funded_user) == D("10097.9")


def race(count: int, attempt: Any) -> tuple[list[str], list[BaseException]]:
    """Run `attempt(i)` in `count` threads released at the same instant."""
    start = threading.Barrier(count)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes.append(attempt(index))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, errors


def test_twenty_concurrent_close_attempts_settle_once(db: Any, funded_user: str) -> None:
    write_execution(db, funded_user, "e1", spot_execution_doc())
    settled_execution(db, funded_user, "e1")
    path = f"users/{funded_user}/openPositions/e1"
    database = FirestoreDatabase(db)
    tick = Tick("BTC-USDT", price=D("55000.1"), best_bid=D("55000"), best_ask=D("55000.2"))
    priced = {"details": {"status": "closing",
                          "closeRequest": {"reason": "manual", "price": 55000}}}
    db.document(path).update({"details.status": "closing"})  # the user asks to close
    set_background_triggers(False)  # only the racers below may settle
    try:
        # ten worker instances race to price the close ...
        marks, mark_errors = race(10, lambda i: mark_position(
            database, funded_user, "e1", tick, f"worker-{i}").kind)
        # ... then the close event is delivered ten times at once
        settles, settle_errors = race(10, lambda i: handlers.on_position_written(
            funded_user, "e1", priced).kind)
    finally:
        set_background_triggers(True)

    assert mark_errors == [] and settle_errors == []
    assert sorted(marks) == ["marked"] + ["skipped"] * 9
    assert sorted(settles) == ["settled"] + ["skipped"] * 9
    assert document(db, path) is None
    assert closed(db, funded_user, "e1")["closePrice"] == 55000
    assert balance_of(db, funded_user) == D("10097.9")


def test_one_close_event_settles_a_whales_every_priced_close_past_one_transaction(
        db: Any) -> None:
    """200 liquidations priced at 95 need two transactions (500 writes each at most):
    the one event delivered settles both. Each 10x long of 500 margin, size 50 at 100,
    returns 500 + 50 × (95 − 100) − 50 × 95 × 0.0006 = 247.15."""
    uid = new_uid("whale")
    at = datetime.now(UTC)
    set_background_triggers(False)  # seeded as they are after the worker's marks
    try:
        db.document(f"users/{uid}").set({"balance": 1000, "openPositionCount": 200})
        batch = db.batch()
        for n in range(200):
            batch.set(db.document(f"users/{uid}/openPositions/p{n:03}"), position_doc(
                details={"status": "closing", "closeRequest": {
                    "reason": "liquidation", "price": 95, "at": at + timedelta(seconds=n),
                    "source": "test"}}))
        batch.commit()
    finally:
        set_background_triggers(True)
    # One more write to the oldest (settled in the first transaction): its one event
    # (closePositionHandler fires on updates).
    db.document(f"users/{uid}/openPositions/p000").update({"details.closeRequest.source": "w"})

    positions = db.collection(f"users/{uid}/openPositions")
    wait_for(lambda: not list(positions.limit(1).stream()), timeout=60)
    assert balance_of(db, uid) == D(1000) + 200 * D("247.15")
    entries = [entry.to_dict() for entry in db.collection(f"users/{uid}/ledger").stream()]
    assert len(entries) == 200 and {entry["kind"] for entry in entries} == {"close"}
    assert sum((D(str(entry["amount"])) for entry in entries), D(0)) == 200 * D("247.15")
    assert len(list(db.collection(f"users/{uid}/tradeHistory").stream())) == 200


def test_a_racer_out_of_time_reports_the_rivals_work_instead_of_failing(db: Any) -> None:
    from google.api_core import exceptions

    database = FirestoreDatabase(db, deadline_seconds=0)
    checks: list[str] = []

    def done() -> str | None:
        checks.append("checked")
        return "skipped" if len(checks) > 1 else None  # the rival commits meanwhile

    def lost(_tx: Any) -> str:
        raise exceptions.Aborted("lost the race")

    assert database.run(lost, done) == "skipped"
    assert checks == ["checked", "checked"]

    def never() -> str | None:
        checks.append("checked")
        return None

    checks.clear()
    with pytest.raises(exceptions.Aborted):  # nobody did the work: the error stands
        database.run(lost, never)
    assert checks == ["checked", "checked"]


def test_too_small_a_balance_rejects_with_reason_and_debits_nothing(db: Any) -> None:
    uid = new_uid()
    db.document(f"users/{uid}").set({"balance": 100})
    write_execution(db, uid, "e1", spot_execution_doc(amount=100))

    execution = settled_execution(db, uid, "e1")

    assert (execution["status"], execution["error"]) == ("rejected", "insufficient_balance")
    assert balance_of(db, uid) == D("100")
    assert document(db, f"users/{uid}/openPositions/e1") is None
    assert document(db, f"users/{uid}/tradeHistory/e1") is None


def test_reconciler_settles_marks_whose_handlers_never_ran(db: Any, funded_user: str) -> None:
    write_execution(db, funded_user, "open-me", spot_execution_doc())
    settled_execution(db, funded_user, "open-me")
    set_background_triggers(False)
    try:
        write_execution(db, funded_user, "e2", execution_doc())
        mark_closing(db, funded_user, "open-me", 55000)
    finally:
        set_background_triggers(True)
    assert document(db, f"users/{funded_user}/executedTriggers/e2")["status"] == "pending"
    assert balance_of(db, funded_user) == D("8999")

    database = FirestoreDatabase(db)
    young = reconcile(database, datetime.now(UTC))
    report = reconcile(database, datetime.now(UTC) + timedelta(minutes=1))

    assert young.executions.get("filled", 0) == 0
    assert report.executions.get("filled", 0) >= 1
    assert report.closes.get("settled", 0) >= 1
    assert document(db, f"users/{funded_user}/executedTriggers/e2")["status"] == "filled"
    assert document(db, f"users/{funded_user}/openPositions/open-me") is None
    # 10000 − 1001 (spot) − 100.6 (futures) + 1098.9 (spot close)
    assert balance_of(db, funded_user) == D("9997.3")


def test_ledger_identity_after_mixed_opens_and_closes(db: Any, funded_user: str) -> None:
    executions = {
        "a": execution_doc(),
        "b": spot_execution_doc(amount=250.5, executedPrice=43210.12),
        "c": execution_doc(action="short", leverage=25, amount=333.33, executedPrice=61234.5),
        "d": execution_doc(
            symbol="SOLUSDTM", amount=77.77777777, leverage=7, executedPrice=137.421
        ),
        "e": execution_doc(action="short", leverage=100, amount=12.5, executedPrice=60000),
    }
    for eid, doc in executions.items():
        write_execution(db, funded_user, eid, doc)
    for eid in executions:
        assert settled_execution(db, funded_user, eid)["status"] == "filled"
    for pid, price in (("a", 61111.11), ("c", 59999.99), ("e", 70000)):
        mark_closing(db, funded_user, pid, price)
    for pid in ("a", "c", "e"):
        closed(db, funded_user, pid)

    positions = [s.to_dict() for s in db.collection(f"users/{funded_user}/openPositions").stream()]
    history = [s.to_dict() for s in db.collection(f"users/{funded_user}/tradeHistory").stream()]
    user = document(db, f"users/{funded_user}")
    assert ledger_total(user["balance"], positions, history) == D("10000")
    assert document(db, f"users/{funded_user}/tradeHistory/e")["pnl"] == -13.25
