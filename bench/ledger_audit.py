"""Measure the journal audit's throughput on the emulators and extrapolate to 100,000 accounts.

Run it inside the emulators (scripts/bench.sh ledger_audit). It writes
`--accounts` consistent accounts (background triggers off), each with a
funded entry, `--open` open positions and `--closed` closed records with
their entries, then runs the audit (`run_audit`, its page size and threads)
over all of them and reports accounts per second, the time 100,000 accounts
of that shape would take, and how many runs of the 480 s budget that is.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.results import record, tee
from cogmora_backend.audit import DEFAULT_BUDGET_SECONDS, run_audit
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_core.contract import ledger
from cogmora_core.model import Settlement
from tests.support.emulator import firestore_client, set_background_triggers

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--open", type=int, default=2, help="open positions per account")
    parser.add_argument("--closed", type=int, default=5, help="closed records per account")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--page", type=int, default=200)
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
