"""The journal audit on the in-memory database: it finds drift exactly and corrects nothing."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from cogmora_backend.audit import audit_path, check_account, run_audit
from cogmora_backend.journal import migrate_all
from cogmora_backend.settlement import initialize_account, settle_close, settle_execution
from cogmora_core import TradingConfig
from tests.support.builders import execution_doc, spot_execution_doc
from tests.support.memory import MemoryDatabase

CONFIG = TradingConfig()
DAY = date(2026, 1, 1)


def traded_accounts(count: int) -> MemoryDatabase:
    """Return `count` funded accounts, each with a futures position open and a spot one closed."""
    db = MemoryDatabase({f"users/u{n}": {"displayName": "T"} for n in range(count)})
    for n in range(count):
        uid = f"u{n}"
        initialize_account(db, uid, CONFIG)
        db.documents[f"users/{uid}/executedTriggers/f1"] = execution_doc()
        db.documents[f"users/{uid}/executedTriggers/s1"] = spot_execution_doc()
        db.now += timedelta(seconds=1)
        settle_execution(db, uid, "f1", CONFIG)
        settle_execution(db, uid, "s1", CONFIG)
        db.documents[f"users/{uid}/openPositions/s1"]["details"] = {
            "status": "closing", "closeRequest": {"reason": "manual", "price": 51000,
                                                  "source": "worker"}}
        db.now += timedelta(seconds=1)
        settle_close(db, uid, "s1", CONFIG)
    return db


def test_consistent_accounts_have_no_drift_and_the_day_completes() -> None:
    db = traded_accounts(7)

    report = run_audit(db, DAY, page=3, workers=2)

    assert (report.accounts, report.drifted, report.complete) == (7, [], True)
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["accounts"], state["drifted"], state["drift"]) == (
        "complete", 7, 0, {})


def test_a_balance_changed_by_hand_is_reported_exactly_and_left_as_it_is(
        caplog: pytest.LogCaptureFixture) -> None:
    db = traded_accounts(4)
    before = db.documents["users/u2"]["balance"]  # 10000 − 100.6 − 1001 + 1018.98
    assert before == 9917.38
    db.documents["users/u2"]["balance"] = 9999.99  # an admin's write in the console

    with caplog.at_level(logging.ERROR, logger="cogmora_backend.audit"):
        report = run_audit(db, DAY, page=2, workers=2)

    assert [found.uid for found in report.drifted] == ["u2"]
    assert str(report.drifted[0].difference) == "82.61"
    state = db.documents[audit_path(DAY)]
    assert state["drifted"] == 1 and state["totalDifference"] == 82.61
    assert state["drift"]["u2"] == {
        "balance": 9999.99, "journal": 9917.38, "difference": 82.61, "entries": 4,
        "problems": ["balance 9999.99 but the journal sums to 9917.38"]}
    assert db.documents[f"{audit_path(DAY)}/accounts/u2"]["difference"] == 82.61
    assert db.documents["users/u2"]["balance"] == 9999.99  # never corrected
    drift_logs = [r for r in caplog.records if r.getMessage() == "ledger drift"]
    assert [(r.levelno, r.uid) for r in drift_logs] == [(logging.ERROR, "u2")]
    assert drift_logs[0].metric == "ledger_drift_accounts"


def test_a_missing_or_altered_entry_is_named() -> None:
    db = traded_accounts(1)
    del db.documents["users/u0/ledger/close_s1"]
    db.documents["users/u0/ledger/open_f1"]["amount"] = -100

    report = run_audit(db, DAY)

    assert report.drifted[0].problems == [
        "balance 9917.38 but the journal sums to 8899",
        "balanceAfter of open_f1 does not follow the previous entry",
        "open entry of f1 is -100, the position cost 100.6",
        "closed record s1 has no close entry",
    ]


def test_an_account_never_migrated_has_no_beginning_until_the_migration() -> None:
    db = MemoryDatabase({"users/old": {"balance": 500}})

    assert run_audit(db, DAY).drifted[0].problems == [
        "balance 500 but the journal sums to 0",
        "the journal has no beginning (no funded or opening entry)"]
    migrate_all(db)
    assert run_audit(db, DAY, restart=True).drifted == []


def test_a_run_out_of_time_stops_and_the_next_goes_on_from_its_cursor() -> None:
    db = traded_accounts(5)

    first = run_audit(db, DAY, page=2, budget_seconds=0)
    assert (first.accounts, first.out_of_time, first.complete) == (0, True, False)
    state = db.documents[audit_path(DAY)]
    assert (state["status"], state["cursor"]) == ("running", None)

    second = run_audit(db, DAY, page=2)
    assert (second.accounts, second.complete) == (5, True)
    assert run_audit(db, DAY).accounts == 0  # the day is done: later runs do nothing


def test_check_account_is_pure_and_exact() -> None:
    entries = [("funded", {"kind": "funded", "amount": 10000, "balanceAfter": 10000,
                           "ref": "initializeAccount", "symbol": None, "at": None}),
               ("open_a", {"kind": "open", "amount": -0.1, "balanceAfter": 9999.9, "ref": "a",
                           "symbol": "X", "at": None})]
    assert check_account("u", D("9999.9"), entries, [], []).problems == []
    assert check_account("u", D("9999.90000001"), entries, [], []).difference == D("1E-8")


def test_a_run_while_another_pages_the_day_does_nothing() -> None:
    db = traded_accounts(2)
    run_audit(db, DAY, budget_seconds=0)
    db.documents[audit_path(DAY)]["leaseUntil"] = datetime.now(UTC) + timedelta(minutes=5)

    held = run_audit(db, DAY)
    assert (held.busy, held.accounts) == (True, 0)

    db.documents[audit_path(DAY)]["leaseUntil"] = datetime.now(UTC) - timedelta(seconds=1)
    done = run_audit(db, DAY)
    assert (done.busy, done.accounts, done.complete) == (False, 2, True)
    assert db.documents[audit_path(DAY)]["leaseUntil"] is None
