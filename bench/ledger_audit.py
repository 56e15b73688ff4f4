"""Measure the journal audit's throughput on the emulators and extrapolate to 100,000 accounts.

Run it inside the emulators (scripts/bench.sh ledger_audit). It writes
`--accounts` consistent accounts (background triggers off), each with a
funded entry, `--open` open positions and `--closed` closed records with
their entries, then audits all of them.

`--mode queue` (the default) audits as production does: `run_audit` plans
the pages and enqueues them through the Admin SDK on the Cloud Tasks
emulator, which dispatches them to `runAuditPage` in the Functions emulator
(`--emulator-concurrency` pages at once: the emulator runs one Python
process per concurrent dispatch, on this machine's cores); it reports the
planning time, each page's accounts per second (from the pages' own
`seconds`), accounts per second end to end (planning until the day is
complete), and what that makes of 100,000 accounts. `--mode inline` runs
every page one after the other in this process (the audit before the queue).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.results import record, tee
from cogmora_backend.audit import (
    AUDIT_QUEUE,
    DEFAULT_BUDGET_SECONDS,
    PAGES,
    audit_enqueue,
    audit_path,
    run_audit,
)
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_core.contract import ledger
from cogmora_core.model import Settlement
from tests.support.emulator import (
    firestore_client,
    project,
    recreate_task_queue,
    set_background_triggers,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET = 100_000


def account_documents(uid: str, opens: int, closes: int) -> dict[str, dict[str, Any]]:
    """Return the documents of one consistent account: user, journal, positions, history."""
    docs: dict[str, dict[str, Any]] = {}
    balance = Decimal(10000)
    at = T0
    funded = ledger.funded_entry(balance, at)
    docs[f"users/{uid}/ledger/{funded.id}"] = funded.document
    for n in range(opens + closes):
        at += timedelta(seconds=1)
        pid = f"p{n}"
        balance -= Decimal("100.6")
        entry = ledger.open_entry(pid, "XBTUSDTM", Decimal(100), Decimal("0.6"), balance, at)
        docs[f"users/{uid}/ledger/{entry.id}"] = entry.document
        record_doc = {"positionId": pid, "symbol": "XBTUSDTM", "symbolType": "futures",
                      "positionType": "long", "size": 0.01666667, "entryPrice": 60000,
                      "leverage": 10, "margin": 100, "openFee": 0.6, "openedAt": at,
                      "status": "open"}
        if n < opens:
            docs[f"users/{uid}/openPositions/{pid}"] = {
                **record_doc, "averageEntryPrice": 60000, "details": {"status": "open"}}
            docs[f"users/{uid}/tradeHistory/{pid}"] = record_doc
            continue
        at += timedelta(seconds=1)
        credit = Decimal("119.38800388")
        balance += credit
        settled = Settlement(Decimal(61200), Decimal("0.61200012"), Decimal("20.000004"),
                             credit, Decimal("18.78800388"), Decimal("18.6759"))
        entry = ledger.close_entry(pid, "XBTUSDTM", settled, Decimal(0), "take_profit",
                                   balance, at)
        docs[f"users/{uid}/ledger/{entry.id}"] = entry.document
        docs[f"users/{uid}/tradeHistory/{pid}"] = {
            **record_doc, "status": "closed", "closedAt": at, "credit": 119.38800388,
            "closePrice": 61200, "pnl": 18.78800388}
    docs[f"users/{uid}"] = {"balance": float(balance), "createdAt": T0}
    return docs


def seed(db: Any, accounts: int, opens: int, closes: int) -> int:
    """Write the accounts in batches; return how many documents were written."""
    written, batch, pending = 0, db.batch(), 0
    for n in range(accounts):
        for path, data in account_documents(f"audit{n:06d}", opens, closes).items():
            batch.set(db.document(path), data)
            pending += 1
            if pending == 450:
                batch.commit()
                written, batch, pending = written + pending, db.batch(), 0
    if pending:
        batch.commit()
        written += pending
    return written


def set_audit_queue(concurrency: int, rate: int = AUDIT_QUEUE.max_dispatches_per_second) -> None:
    """Create runAuditPage's queue again on the Cloud Tasks emulator (rate 0: held)."""
    recreate_task_queue(AUDIT_QUEUE.function, AUDIT_QUEUE, rate, concurrency)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def queued(db: Any, accounts: int, page: int, concurrency: int,
           timeout: float) -> dict[str, Any]:
    """Audit on the queue; return the figures (printed as they come)."""
    import firebase_admin

    if not firebase_admin._apps:  # the Admin SDK enqueues on the Cloud Tasks emulator
        firebase_admin.initialize_app(options={"projectId": project()})
    set_audit_queue(concurrency)
    day = date(2001, 2, 3)
    started = time.perf_counter()
    plan = run_audit(FirestoreDatabase(db), day, restart=True, page=page,
                     enqueue=audit_enqueue)
    planned = time.perf_counter() - started
    state: dict[str, Any] = {}
    while time.perf_counter() - started < timeout:
        state = db.document(audit_path(day)).get().to_dict() or {}
        if state.get("status") == "complete":
            break
        time.sleep(1)
    seconds = time.perf_counter() - started
    pages = [s.to_dict() for s in db.collection(f"{audit_path(day)}/{PAGES}").stream()]
    pages = [p for p in pages if p.get("generation") == state.get("generation")]
    done = [p for p in pages if p.get("status") == "done"]
    rates = [p["accounts"] / p["seconds"] for p in done if p.get("seconds")]
    page_seconds = [float(p["seconds"]) for p in done if "seconds" in p]
    complete = state.get("status") == "complete"
    audited = int(state.get("accounts", 0)) if complete else sum(p["accounts"] for p in done)
    rate = audited / seconds
    print(f"  planned {plan.planned} pages of {page} in {planned:.1f} s "
          f"({plan.enqueued} enqueued); the emulator's queue at {concurrency} pages at once")
    print(f"  a page: {percentile(page_seconds, 0.5):.1f} s median, "
          f"{max(page_seconds):.1f} s at most (timeout {AUDIT_QUEUE.timeout_sec} s); "
          f"{percentile(rates, 0.5):.1f} accounts/s median per page")
    print(f"  end to end: {audited} accounts in {seconds:.1f} s = {rate:.1f} accounts/s; "
          f"complete: {complete}; drifted {state.get('drifted')}")
    target_pages = -(-TARGET // page)
    plan_100k = planned * TARGET / accounts
    local_100k = TARGET / rate
    production = max(target_pages / AUDIT_QUEUE.max_dispatches_per_second,
                     target_pages * percentile(page_seconds, 0.5)
                     / AUDIT_QUEUE.max_concurrent_dispatches)
    print(f"  100,000 such accounts: {target_pages} pages; planning {plan_100k:.0f} s "
          f"(auditLedger's limit 540 s); on these emulators {local_100k:.0f} s end to end "
          f"({concurrency} pages at once); with the production queue "
          f"({AUDIT_QUEUE.max_concurrent_dispatches} at once, "
          f"{AUDIT_QUEUE.max_dispatches_per_second}/s) and pages as slow as here: "
          f"{production:.0f} s")
    return {"accounts": audited, "seconds": seconds, "accounts_per_second": rate,
            "plan_seconds": planned, "pages": plan.planned,
            "page_seconds_median": percentile(page_seconds, 0.5),
            "page_seconds_max": max(page_seconds),
            "page_accounts_per_second_median": percentile(rates, 0.5),
            "projected_100k_plan_seconds": plan_100k,
            "projected_100k_local_seconds": local_100k,
            "projected_100k_production_seconds": production,
            "emulator_concurrency": concurrency, "complete": complete,
            "drifted": state.get("drifted")}


def plan_only(db: Any, users: int) -> dict[str, Any]:
    """Time planning alone for `users` more users (bare documents; the queue held)."""
    set_audit_queue(1, rate=0)
    started = time.perf_counter()
    set_background_triggers(False)
    try:
        batch, pending = db.batch(), 0
        for n in range(users):
            batch.set(db.document(f"users/plan{n:06d}"), {"balance": 10000, "createdAt": T0})
            pending += 1
            if pending == 500:
                batch.commit()
                batch, pending = db.batch(), 0
        if pending:
            batch.commit()
    finally:
        set_background_triggers(True)
    seeded = time.perf_counter() - started
    total = len(FirestoreDatabase(db).list_ids("users"))
    plan = run_audit(FirestoreDatabase(db), date(2001, 2, 4), restart=True,
                     enqueue=audit_enqueue)
    print(f"planning alone, {total:,} users ({users:,} bare ones seeded in {seeded:.0f} s; "
          f"the queue held): {plan.planned} pages planned and {plan.enqueued} enqueued in "
          f"{plan.seconds:.1f} s (auditLedger's limit 540 s, its budget "
          f"{DEFAULT_BUDGET_SECONDS:.0f} s); complete planning: {not plan.out_of_time}")
    return {"plan_users": total, "plan_pages": plan.planned,
            "plan_enqueued": plan.enqueued, "plan_seconds_measured": plan.seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--open", type=int, default=2, help="open positions per account")
    parser.add_argument("--closed", type=int, default=5, help="closed records per account")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--page", type=int, default=200)
    parser.add_argument("--mode", choices=("queue", "inline"), default="queue")
    parser.add_argument("--emulator-concurrency", type=int, default=4)
    parser.add_argument("--plan-users", type=int, default=100_000,
                        help="queue mode: then time planning alone over this many more users")
    args = parser.parse_args()
    db = firestore_client()
    set_background_triggers(False)
    try:
        started = time.perf_counter()
        documents = seed(db, args.accounts, args.open, args.closed)
        seeded = time.perf_counter() - started
    finally:
        set_background_triggers(True)
    entries = 1 + args.open + 2 * args.closed
    if args.mode == "queue":
        with tee() as out:
            print(f"journal audit on Cloud Tasks (emulators): {args.accounts} accounts "
                  f"({entries} entries, {args.open} open positions, "
                  f"{args.closed + args.open} history records each; {documents} documents "
                  f"seeded in {seeded:.0f} s)")
            figures = queued(db, args.accounts, args.page, args.emulator_concurrency, 3600)
            if args.plan_users:
                figures |= plan_only(db, args.plan_users)
        record("ledger_audit_queue", {**figures, "entries_per_account": entries},
               out.getvalue())
        return 0 if figures["complete"] and not figures["drifted"] else 1
    with tee() as out:
        report = run_audit(FirestoreDatabase(db), date(2001, 2, 3), restart=True,
                           page=args.page, workers=args.workers, budget_seconds=3600)
        rate = report.accounts / report.seconds
        projected = TARGET / rate
        print(f"journal audit on the emulators: {report.accounts} accounts "
              f"({entries} entries, {args.open} open positions, {args.closed + args.open} "
              f"history records each; {documents} documents seeded in {seeded:.0f} s)")
        print(f"  {args.workers} threads, pages of {args.page}: {report.seconds:.1f} s, "
              f"{rate:.0f} accounts/s, {len(report.drifted)} drifted")
        budget = DEFAULT_BUDGET_SECONDS
        print(f"  100,000 such accounts: {projected:.0f} s = {projected / budget:.1f} runs "
              f"of the {budget:.0f} s budget (each run goes on from the last one's cursor)")
    record("ledger_audit", {"accounts": report.accounts, "seconds": report.seconds,
                            "accounts_per_second": rate, "projected_100k_seconds": projected,
                            "entries_per_account": entries, "workers": args.workers,
                            "drifted": len(report.drifted)}, out.getvalue())
    return 0 if report.complete and not report.drifted else 1


if __name__ == "__main__":
    sys.exit(main())
