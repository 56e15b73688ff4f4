"""The account journal on the emulators: written by the functions, migrated, audited, served."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import httpx
from google.cloud import firestore

from cogmora_backend.audit import audit_path, run_audit
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.journal import migrate_account
from tests.support.auth import register_user
from tests.support.builders import execution_doc
from tests.support.emulator import document, functions_url, new_uid, wait_for
from tests.support.rest import id_token
from tests.support.system import closed_history, execution_of

#: The audit's day in these tests: one no real run uses.
DAY = date(2001, 1, 1)


def journal(db: Any, uid: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() for s in db.collection(f"users/{uid}/ledger").stream()}


def trade(db: Any, uid: str) -> None:
    """Open a 10x long of 100 at 60,000 and close it at 61,200, through the functions."""
    db.document(f"users/{uid}/executedTriggers/e1").set(
        {**execution_doc(), "executedAt": firestore.SERVER_TIMESTAMP})
    wait_for(lambda: execution_of(db, uid, "e1"))
    db.document(f"users/{uid}/openPositions/e1").update({
        "details.status": "closing",
        "details.closeRequest": {"reason": "take_profit", "price": 61200,
                                 "at": firestore.SERVER_TIMESTAMP, "source": "test"}})
    wait_for(lambda: closed_history(db, uid, "e1"))


def test_the_functions_write_one_entry_per_balance_change(db: Any, funded_user: str) -> None:
    trade(db, funded_user)

    entries = journal(db, funded_user)
    assert sorted(entries) == ["close_e1", "funded", "open_e1"]
    # Size 1000 / 60000; close fee = size × 61200 × 0.06 %; gross = size × 1200.
    assert {k: v for k, v in entries["open_e1"].items() if k != "at"} == {
        "kind": "open", "amount": -100.6, "balanceAfter": 9899.4, "currency": "USDT",
        "ref": "e1", "symbol": "XBTUSDTM", "margin": 100, "fee": 0.6}
    close = entries["close_e1"]
    assert (close["amount"], close["balanceAfter"], close["grossPnl"], close["fee"]) == (
        119.38800388, 10018.78800388, 20.000004, 0.61200012)
    assert document(db, f"users/{funded_user}")["balance"] == 10018.78800388


def test_the_audit_reports_a_balance_an_admin_changed_exactly(db: Any, funded_user: str) -> None:
    trade(db, funded_user)
    clean = new_uid()
    db.document(f"users/{clean}").set({"displayName": "Clean"})
    wait_for(lambda: "funded" in journal(db, clean) or None)
    # An admin "fixes" the balance in the console: no entry records it.
    db.document(f"users/{funded_user}").update({"balance": 10100})

    report = run_audit(FirestoreDatabase(db), DAY, restart=True)

    assert report.complete and funded_user in [found.uid for found in report.drifted]
    assert clean not in [found.uid for found in report.drifted]
    record = document(db, f"{audit_path(DAY)}/accounts/{funded_user}")
    assert record is not None
    assert {k: record[k] for k in ("balance", "journal", "difference", "entries", "problems")} \
        == {"balance": 10100, "journal": 10018.78800388, "difference": 81.21199612,
            "entries": 3, "problems": ["balance 10100 but the journal sums to 10018.78800388"]}
    assert document(db, f"users/{funded_user}")["balance"] == 10100  # never corrected
    assert document(db, audit_path(DAY))["status"] == "complete"


def test_the_migration_opens_an_old_account_once(db: Any) -> None:
    uid = new_uid("old")
    # An account from before the journal: its balance set, no entry, nothing fires.
    db.document(f"users/{uid}").set({"balance": 4321.5, "createdAt": firestore.SERVER_TIMESTAMP})
    database = FirestoreDatabase(db)

    assert migrate_account(database, uid) == D("4321.5")
    assert migrate_account(database, uid) is None

    entries = journal(db, uid)
    assert list(entries) == ["opening"]
    assert (entries["opening"]["kind"], entries["opening"]["amount"]) == ("adjustment", 4321.5)


def test_the_statement_over_http(db: Any, funded_user: str) -> None:
    trade(db, funded_user)
    register_user(funded_user)
    headers = {"Authorization": f"Bearer {id_token(funded_user)}"}
    base = functions_url("api")

    ledger = httpx.get(f"{base}/api/v1/account/ledger", headers=headers, timeout=30).json()
    statement = httpx.get(f"{base}/api/v1/account/statement", headers=headers, timeout=30,
                          params={"from": "2000-01-01T00:00:00Z",
                                  "to": "2100-01-01T00:00:00Z"}).json()
    csv = httpx.get(f"{base}/api/v1/account/statement", timeout=30,
                    headers={**headers, "Accept": "text/csv"},
                    params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})

    assert [e["id"] for e in ledger["items"]] == ["close_e1", "open_e1", "funded"]
    assert (statement["openingBalance"], statement["closingBalance"]) == ("0", "10018.78800388")
    assert [e["amount"] for e in statement["entries"]] == ["10000", "-100.6", "119.38800388"]
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[-1].startswith("2100-01-01T00:00:00Z,closing_balance,,"
                                                "10018.78800388,")
