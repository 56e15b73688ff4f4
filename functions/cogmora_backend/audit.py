"""The journal audit: every account's balance against its journal, daily and on demand.

For every funded account it checks that
- `balance` = Σ `amount` of its journal entries (exact);
- each entry's `balanceAfter` is the previous one's plus its `amount`;
- the journal has a beginning (`funded`, or the migration's `opening`);
- each open position opened since the journal began has its `open_{id}`
  entry for margin + fee (margin as opened: what funding took from it since
  is added back);
- each history record closed since then has its `close_{id}` entry, equal
  to the record's `credit`.

It never corrects anything. An account that differs is recorded in
`audits/{date}` (`drift`: uid → {balance, journal, difference, problems},
the first `MAX_DRIFT_LISTED`) and `audits/{date}/accounts/{uid}` (every
one), logged at error level (`ledger drift`, the log-based metric
`ledger_drift_accounts` counts them) and summed up in the run's log.

Accounts are read in pages by id, each page audited by a pool of threads
(three reads per account: the journal, the positions, the history), and
the cursor is saved after every page: a run that reaches its time budget
stops, and the next run of the same day goes on from the cursor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora_backend import paths
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_core.contract import ledger
from cogmora_core.contract.history import is_closed
from cogmora_core.contract.ledger import Entry, EntryKind
from cogmora_core.errors import Rejected
from cogmora_core.money import ZERO, parse_number, to_firestore

log = logging.getLogger(__name__)

AUDITS = "audits"
#: Accounts read per page (one listing), audited in parallel.
DEFAULT_PAGE = 200
#: Threads reading accounts at once.
DEFAULT_WORKERS = 16
#: A run stops after this long (the function's limit is 540 s).
DEFAULT_BUDGET_SECONDS = 480.0
#: Drifted accounts listed in the day's summary document (all are in `accounts/`).
MAX_DRIFT_LISTED = 200


class AuditStatus(StrEnum):
    """`status` of an `audits/{date}` document."""

    RUNNING = "running"
    COMPLETE = "complete"


def audit_path(day: date) -> str:
    """Return the path of `audits/{YYYY-MM-DD}`."""
    return f"{AUDITS}/{day.isoformat()}"


@dataclass
class AccountAudit:
    """What the audit found for one account."""

    uid: str
    balance: Decimal
    journal: Decimal
    entries: int
    problems: list[str] = field(default_factory=list)

    @property
    def difference(self) -> Decimal:
        """Return balance − Σ journal (positive: the balance holds more than recorded)."""
        return self.balance - self.journal

    def document(self) -> dict[str, Any]:
        """Return the account's drift record."""
        return {"uid": self.uid, "balance": to_firestore(self.balance),
                "journal": to_firestore(self.journal),
                "difference": to_firestore(self.difference), "entries": self.entries,
                "problems": self.problems}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_account(uid: str, balance: Decimal, documents: list[tuple[str, dict[str, Any]]],
                  positions: list[tuple[str, dict[str, Any]]],
                  history: list[tuple[str, dict[str, Any]]]) -> AccountAudit:
    """Return the audit of one account from its balance and documents (pure)."""
    problems: list[str] = []
    entries: dict[str, Entry] = {}
    for entry_id, data in documents:
        try:
            entries[entry_id] = ledger.parse_entry(entry_id, data)
        except Rejected:
            problems.append(f"entry {entry_id} is unreadable")
    ordered = ledger.chain_order(entries.values())
    journal = ledger.total(ordered)
    if journal != balance:
        problems.append(f"balance {balance} but the journal sums to {journal}")
    for broken in ledger.check_chain(ordered):
        problems.append(f"balanceAfter of {broken} does not follow the previous entry")
    start = _journal_start(entries)
    if start is None:
        problems.append("the journal has no beginning (no funded or opening entry)")
    else:
        problems += _positions_problems(entries, positions, start)
        problems += _history_problems(entries, history, start)
    return AccountAudit(uid, balance, journal, len(entries), problems)


def _journal_start(entries: Mapping[str, Entry]) -> datetime | None:
    """Return when the journal began to record every change (None: it never did)."""
    funded = entries.get(ledger.FUNDED_ID)
    if funded is not None:
        return funded.at or datetime.min.replace(tzinfo=UTC)
    opening = entries.get(ledger.OPENING_ID)
    if opening is not None:
        return _time(opening.data.get("recordedAt")) or opening.at
    return None


def _number(data: Mapping[str, Any], *names: str) -> Decimal | None:
    value: Any = data
    for name in names:
        value = value.get(name) if isinstance(value, Mapping) else None
    return parse_number(value) if value is not None else ZERO


def _positions_problems(entries: Mapping[str, Entry], positions: list[tuple[str, dict[str, Any]]],
                        start: datetime) -> list[str]:
    problems = []
    for position_id, position in positions:
        opened = _time(position.get("openedAt"))
        if opened is None or opened < start:
            continue
        entry = entries.get(f"open_{position_id}")
        margin, fee = _number(position, "margin"), _number(position, "openFee")
        taken = _number(position, "funding", "fromMargin")
        if entry is None:
            problems.append(f"open position {position_id} has no open entry")
        elif margin is None or fee is None or taken is None:
            problems.append(f"open position {position_id} is unreadable")
        elif entry.kind is not EntryKind.OPEN or entry.amount != -(margin + taken + fee):
            problems.append(f"open entry of {position_id} is {entry.amount}, the position "
                            f"cost {margin + taken + fee}")
    return problems


def _history_problems(entries: Mapping[str, Entry], history: list[tuple[str, dict[str, Any]]],
                      start: datetime) -> list[str]:
    problems = []
    for position_id, record in history:
        closed = _time(record.get("closedAt"))
        if not is_closed(record) or closed is None or closed < start or "credit" not in record:
            continue
        entry = entries.get(f"close_{position_id}")
        credit = parse_number(record.get("credit"))
        if entry is None:
            problems.append(f"closed record {position_id} has no close entry")
        elif entry.kind is not EntryKind.CLOSE or entry.amount != credit:
            problems.append(f"close entry of {position_id} is {entry.amount}, the record "
                            f"credited {credit}")
    return problems


def audit_account(database: Database, uid: str, user: Mapping[str, Any]) -> AccountAudit | None:
    """Return the audit of one account (None when it has no balance yet)."""
    balance = parse_number(user.get("balance")) if "balance" in user else None
    if "balance" not in user:
        return None
    documents = database.list(paths.ledger_collection(uid))
    positions = database.list(f"{paths.user(uid)}/openPositions")
    history = database.list(f"{paths.user(uid)}/tradeHistory")
    if balance is None:
        result = check_account(uid, ZERO, documents, positions, history)
        result.problems.insert(0, f"balance {user.get('balance')!r} is not a number")
        return result
    return check_account(uid, balance, documents, positions, history)


@dataclass
class AuditReport:
    """What one run did (and the day's totals so far)."""

    day: date
    accounts: int = 0
    drifted: list[AccountAudit] = field(default_factory=list)
    complete: bool = False
    out_of_time: bool = False
    #: Another run held the day's audit: this one did nothing.
    busy: bool = False
    seconds: float = 0.0


def run_audit(database: Database, day: date, *, restart: bool = False,
              budget_seconds: float = DEFAULT_BUDGET_SECONDS, page: int = DEFAULT_PAGE,
              workers: int = DEFAULT_WORKERS) -> AuditReport:
    """Audit every account for `day`, going on from where the day's last run stopped.

    `restart` audits the day again from the first account. A day already
    complete is left alone (the scheduler asks often; it runs once a day).
    """
    started = time.monotonic()
    path = audit_path(day)
    report = AuditReport(day)
    state = database.read(path)
    if state is not None and state.get("status") == AuditStatus.COMPLETE and not restart:
        report.complete = True
        return report
    taken = _take_lease(database, path, restart, budget_seconds)
    if taken is None:  # another run of the day is paging now
        report.busy = True
        return report
    cursor = taken
    try:
        _audit_pages(database, report, path, cursor, started, budget_seconds, page, workers)
    finally:  # the next run may go on at once
        database.write(lambda batch: batch.update(path, {"leaseUntil": None}))
    report.seconds = time.monotonic() - started
    summary = log.error if report.drifted else log.info
    summary("ledger audit", extra={
        "date": day.isoformat(), "accounts": report.accounts, "drifted": len(report.drifted),
        "complete": report.complete, "outOfTime": report.out_of_time,
        "seconds": round(report.seconds, 3)})
    return report


def _audit_pages(database: Database, report: AuditReport, path: str, cursor: str,
                 started: float, budget_seconds: float, page: int, workers: int) -> None:
    """Audit page after page from `cursor` until the last account or the budget."""
    day = report.day
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            if time.monotonic() - started >= budget_seconds:
                report.out_of_time = True
                break
            rows = database.list("users", limit=page, after_id=cursor or None)
            audits = [found for found in pool.map(
                lambda row: audit_account(database, row[0], row[1]), rows) if found is not None]
            drifted = [found for found in audits if found.problems]
            cursor = rows[-1][0] if rows else cursor
            last = len(rows) < page
            _save_page(database, path, cursor, len(audits), drifted, complete=last)
            report.accounts += len(audits)
            report.drifted += drifted
            for found in drifted:
                log.error("ledger drift", extra={
                    "metric": "ledger_drift_accounts", "uid": found.uid, "date": day.isoformat(),
                    "balance": str(found.balance), "journal": str(found.journal),
                    "difference": str(found.difference), "problems": found.problems[:20]})
            if last:
                report.complete = True
                break


#: A run holds the day's audit this long past its budget (a crashed run's lease lapses).
LEASE_MARGIN = timedelta(seconds=60)


def _take_lease(database: Database, path: str, restart: bool,
                budget_seconds: float) -> str | None:
    """Take the day's audit for one run; return its cursor ("" from the start), None if held.

    The scheduled run and an on-demand one must not page at once: each would
    count the same accounts. A lease (`leaseUntil`) bounds a crashed run's hold.
    """
    now = datetime.now(UTC)

    def work(tx: Transaction) -> str | None:
        state = tx.get(path)
        until = _time(state.get("leaseUntil")) if state is not None else None
        if until is not None and until > now:
            return None
        lease = now + timedelta(seconds=budget_seconds) + LEASE_MARGIN
        if state is None or restart:
            tx.set(path, {"date": path.rsplit("/", 1)[-1],
                          "status": AuditStatus.RUNNING.value, "startedAt": SERVER_TIME,
                          "cursor": None, "accounts": 0, "drifted": 0, "totalDifference": 0,
                          "drift": {}, "leaseUntil": lease})
            return ""
        tx.update(path, {"leaseUntil": lease})
        cursor = state.get("cursor")
        return cursor if isinstance(cursor, str) else ""

    return database.run(work)


def _save_page(database: Database, path: str, cursor: str | None, accounts: int,
               drifted: list[AccountAudit], complete: bool) -> None:
    """Add one page's results to the day's audit and move its cursor (one transaction)."""

    def work(tx: Transaction) -> None:
        state = tx.get(path) or {}
        listed = dict(state.get("drift") or {})
        for found in drifted:
            if len(listed) < MAX_DRIFT_LISTED or found.uid in listed:
                listed[found.uid] = {k: v for k, v in found.document().items() if k != "uid"}
        total = parse_number(state.get("totalDifference", 0)) or ZERO
        count = state.get("accounts", 0)
        runs_drifted = state.get("drifted", 0)
        fields: dict[str, Any] = {
            "cursor": cursor, "updatedAt": SERVER_TIME, "drift": listed,
            "accounts": (count if isinstance(count, int) else 0) + accounts,
            "drifted": (runs_drifted if isinstance(runs_drifted, int) else 0) + len(drifted),
            "totalDifference": to_firestore(total + sum((d.difference for d in drifted), ZERO)),
        }
        if complete:
            fields |= {"status": AuditStatus.COMPLETE.value, "finishedAt": SERVER_TIME,
                       "leaseUntil": None}
        tx.set(path, fields, merge=True)
        for found in drifted:
            tx.set(f"{path}/accounts/{found.uid}", {**found.document(), "at": SERVER_TIME})

    database.run(work)
