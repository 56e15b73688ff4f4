"""The journal audit on Cloud Tasks, on the emulators (Firestore, Functions, Cloud Tasks).

An admin asks for the audit (`runLedgerAudit`): it plans today's pages of
accounts and enqueues them on `runAuditPage`, which the Cloud Tasks emulator
dispatches to the Functions emulator; the pages write their results and the
last sums up `audits/{date}`. The drift an admin's console write planted is
reported exactly, once. Several pages at once (the test enqueues them through
the Admin SDK) sum the day up once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from cogmora_backend.audit import PAGES, audit_enqueue, audit_path, run_audit
from cogmora_backend.firestore import FirestoreDatabase
from tests.integration.test_ledger import journal, trade
from tests.support.emulator import document, functions_url, new_uid, wait_for
from tests.support.rest import id_token

pytestmark = pytest.mark.usefixtures("admin_app")


def call_audit(uid: str, admin: bool) -> httpx.Response:
    token = id_token(uid, admin=True) if admin else id_token(uid)
    return httpx.post(functions_url("runLedgerAudit"), json={"data": {"restart": True}},
                      headers={"Authorization": f"Bearer {token}"}, timeout=120)


def test_the_queued_audit_reports_a_planted_drift_exactly_once(db: Any,
                                                                funded_user: str) -> None:
    trade(db, funded_user)
    clean = new_uid()
    db.document(f"users/{clean}").set({"displayName": "Clean"})
    wait_for(lambda: "funded" in journal(db, clean) or None)
    # An admin "fixes" the balance in the console: no entry records it.
    db.document(f"users/{funded_user}").update({"balance": 10100})

    before = funded_accounts(db)
    refused = call_audit(clean, admin=False)
    answer = call_audit(new_uid("admin"), admin=True)

    assert refused.status_code == 403, refused.text
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["enqueued"] == result["planned"] >= 1 and result["busy"] is False
    day = audit_path_of(result["date"])
    state = wait_for(lambda: complete(db, day), timeout=240, every=1)
    pages = sorted((s.to_dict() for s in db.collection(f"{day}/{PAGES}").stream()
                    if s.to_dict().get("generation") == state["generation"]),
                   key=lambda page: page["index"])
    assert len(pages) == state["pages"] == result["planned"]
    assert [page["index"] for page in pages] == list(range(len(pages)))
    assert {page["status"] for page in pages} == {"done"}
    # The ranges chain from the first id to the open end: every account in exactly one.
    assert [page["after"] for page in pages] == ["", *(page["last"] for page in pages[:-1])]
    assert pages[-1]["last"] is None
    assert state["accounts"] == sum(page["accounts"] for page in pages)
    assert before <= state["accounts"] <= funded_accounts(db)
    record = document(db, f"{day}/accounts/{funded_user}")
    assert record is not None
    assert {k: record[k] for k in ("balance", "journal", "difference", "entries", "problems")} \
        == {"balance": 10100, "journal": 10018.78800388, "difference": 81.21199612,
            "entries": 3, "problems": ["balance 10100 but the journal sums to 10018.78800388"]}
    listed = [page["drift"][funded_user] for page in pages if funded_user in page["drift"]]
    assert listed == [{k: record[k] for k in ("balance", "journal", "difference", "entries",
                                              "problems")}]  # one page reported it
    assert document(db, f"{day}/accounts/{clean}") is None
    assert document(db, f"users/{funded_user}")["balance"] == 10100  # never corrected


def test_pages_finishing_at_once_sum_up_the_day_once(db: Any, funded_user: str) -> None:
    for uid in (new_uid(), new_uid()):  # at least three accounts, so three pages
        db.document(f"users/{uid}").set({"displayName": "Clean"})
        wait_for(lambda uid=uid: "funded" in journal(db, uid) or None)
    db.document(f"users/{funded_user}").update({"balance": 9999.5})
    users = len(FirestoreDatabase(db).list_ids("users"))
    size = max(1, users // 3)  # three pages (or four), whatever the database holds
    day = date(2001, 1, 2)

    plan = run_audit(FirestoreDatabase(db), day, restart=True, page=size,
                     enqueue=audit_enqueue)

    assert plan.planned == plan.enqueued >= 3
    state = wait_for(lambda: complete(db, audit_path(day)), timeout=240, every=1)
    pages = sorted((s.to_dict() for s in db.collection(f"{audit_path(day)}/{PAGES}").stream()
                    if s.to_dict().get("generation") == state["generation"]),
                   key=lambda page: page["index"])
    assert len(pages) == state["pages"] == plan.planned
    assert {page["status"] for page in pages} == {"done"}
    assert [page["after"] for page in pages] == ["", *(page["last"] for page in pages[:-1])]
    assert state["accounts"] == sum(page["accounts"] for page in pages)
    assert state["drifted"] == sum(page["drifted"] for page in pages) >= 1
    record = document(db, f"{audit_path(day)}/accounts/{funded_user}")
    assert record is not None
    assert (record["balance"], record["journal"], record["difference"]) == (9999.5, 10000, -0.5)


def funded_accounts(db: Any) -> int:
    """Users with a balance: the accounts an audit counts."""
    return sum(1 for s in db.collection("users").stream() if "balance" in (s.to_dict() or {}))


def audit_path_of(day: str) -> str:
    return audit_path(date.fromisoformat(day))


def complete(db: Any, path: str) -> dict[str, Any] | None:
    state = document(db, path)
    return state if state is not None and state.get("status") == "complete" else None
