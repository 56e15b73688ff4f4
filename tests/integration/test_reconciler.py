"""The reconciler cannot be starved (issue 13, item 2), on the emulators.

It once took the 500 oldest pending executions only: an execution whose user
had no `balance` raised a retryable error forever, and marks it could not
settle held back every mark behind them. Now it pages past them, funds
accounts whose initialisation was lost, and parks what keeps failing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.reconcile import PARK_AFTER, reconcile
from tests.support.builders import execution_doc, position_doc
from tests.support.emulator import balance_of, document, new_uid, set_background_triggers

LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


def closing(**overrides: Any) -> dict:
    return position_doc(details={"status": "closing", "closeRequest": {
        "reason": "take_profit", "price": 110, "at": LONG_AGO, "source": "test"}}, **overrides)


def test_the_reconciler_pages_past_what_it_cannot_settle_funds_lost_accounts_and_parks(
        db: Any) -> None:
    never, lost, poisoned, good = (new_uid(p) for p in ("never", "lost", "poison", "good"))
    set_background_triggers(False)  # as if every handler had failed
    try:
        # No users/{uid} at all (the rules allow triggers without one), and a user
        # document whose initializeAccount never ran.
        db.document(f"users/{lost}").set({"displayName": "lost"})
        for uid in (never, lost):
            db.document(f"users/{uid}/executedTriggers/e").set(
                {**execution_doc(), "executedAt": LONG_AGO - timedelta(minutes=5)})
        # Older than the good close: marks that cannot settle (an unreadable size).
        db.document(f"users/{poisoned}").set({"balance": 9497})
        for n in range(3):
            db.document(f"users/{poisoned}/openPositions/p{n}").set(closing(size="lots"))
        db.document(f"users/{good}").set({"balance": 9497})
        good_close = closing()
        good_close["details"]["closeRequest"]["at"] = LONG_AGO + timedelta(minutes=1)
        db.document(f"users/{good}/openPositions/p").set(good_close)
    finally:
        set_background_triggers(True)

    database = FirestoreDatabase(db)
    start = datetime.now(UTC) + timedelta(minutes=5)
    report = reconcile(database, start, batch=2)

    # Funded with the starting balance, then filled: 100 + 1,000 × 0.0006 debited.
    for uid in (never, lost):
        assert document(db, f"users/{uid}/executedTriggers/e")["status"] == "filled", uid
        assert balance_of(db, uid) == D("9899.4"), uid
    assert report.funded >= 2
    # Paged past the three poisoned marks: the good close settled.
    assert document(db, f"users/{good}/openPositions/p") is None
    assert balance_of(db, good) == D("9497") + D("996.7")  # 500 + 50 × 10 − 3.3
    for n in range(3):
        state = document(db, f"users/{poisoned}/openPositions/p{n}")["reconcile"]
        assert (state["attempts"], state.get("parkedAt")) == (1, None)
        assert state["lastError"] == "invalid_size"

    # Failing for ten runs over more than ten minutes parks them, with the reason.
    for run in range(1, PARK_AFTER):
        report = reconcile(database, start + timedelta(minutes=2 * run), batch=2)
    paths = {f"users/{poisoned}/openPositions/p{n}" for n in range(3)}
    assert paths <= set(report.newly_parked)
    for path in paths:
        state = document(db, path)["reconcile"]
        assert state["attempts"] == PARK_AFTER and state["parkedAt"] is not None
        assert state["reason"] == f"failed {PARK_AFTER} reconciler runs: invalid_size"
    # Parked: skipped and reported by every later run, never counted again.
    later = reconcile(database, start + timedelta(hours=1), batch=2)
    assert paths <= set(later.parked)
    assert document(db, f"users/{poisoned}/openPositions/p0")["reconcile"]["attempts"] == (
        PARK_AFTER)
    assert balance_of(db, poisoned) == D("9497")
