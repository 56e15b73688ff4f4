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

The accounts are audited in pages on a task queue (`runAuditPage`), so
that 100,000 accounts finish far within any function's time limit. A run
(`auditLedger` every 15 minutes, `runLedgerAudit` on demand) plans the
day's pages: it lists the users' ids, cuts them into ranges of
`AUDIT_QUEUE.accounts_per_page` ids (`audits/{date}/pages/{page}`: after
one id, up to and including another; the last range is open-ended, so a
user created meanwhile falls in exactly one range) and enqueues one named
task per page. A page audits the accounts of its range and writes its
result once (a transaction that finds the page done writes nothing), with
every drifted account's record; a retried or duplicated page therefore
writes nothing twice. When every page of the day is done (a count of the
done pages), the day's document is summed up from the pages, which no
longer change: no two pages ever write the same document. A page that
fails its last try is recorded `dead` (the dead letter); the day's later
runs enqueue again a page dead or stuck for `REQUEUE_AFTER`, up to
`MAX_ENQUEUES` times. Without a queue (`enqueue=None`: tests, benchmarks,
scripts) each page runs at once, in the caller.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora_backend import paths, queries
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_backend.taskqueue import Enqueue, QueuePolicy
from cogmora_core.contract import ledger
from cogmora_core.contract.history import is_closed
from cogmora_core.contract.ledger import Entry, EntryKind
from cogmora_core.errors import Rejected
from cogmora_core.money import ZERO, parse_number, to_firestore

log = logging.getLogger(__name__)

AUDITS = "audits"
#: The day's pages: `audits/{date}/pages/{page}`.
PAGES = "pages"
#: Accounts per page (one task), audited in parallel.
DEFAULT_PAGE = 200
#: Threads reading accounts at once in a page.
DEFAULT_WORKERS = 16
#: A run stops planning after this long (the function's limit is 540 s).
DEFAULT_BUDGET_SECONDS = 480.0
#: Drifted accounts listed in the day's summary document (all are in `accounts/`).
MAX_DRIFT_LISTED = 200
#: Pages planned per listing of ids (one transaction writes their documents).
PLAN_PAGES = 25
#: Enqueue calls a run makes at once.
ENQUEUE_THREADS = 8
#: A page not done this long after it was enqueued (or dead) is enqueued again by a run.
REQUEUE_AFTER = timedelta(minutes=30)
#: A page is enqueued at most this many times a day (each with the queue's retries).
MAX_ENQUEUES = 4


@dataclass(frozen=True, kw_only=True)
class AuditQueue(QueuePolicy):
    """The audit's task queue function: its pages, and (`QueuePolicy`) rate and retries."""

    function: str
    #: Accounts per page, and the threads that read them.
    accounts_per_page: int
    threads: int


#: 100,000 accounts are 500 pages of 200: dispatched in 50 s at 10 a second, 20 at once.
#: A page of 200 accounts (three listings each, 16 threads) took at most 35 s on the local
#: emulators, 4 pages at once on 2 cores (docs/BENCHMARKS.md), within its 300 s timeout;
#: a commit holds 500 writes and a page writes at most 202 (its page, its drifted accounts).
AUDIT_QUEUE = AuditQueue(
    function="runAuditPage", accounts_per_page=DEFAULT_PAGE, threads=DEFAULT_WORKERS,
    max_dispatches_per_second=10, max_concurrent_dispatches=20, max_attempts=5,
    min_backoff_seconds=10, max_backoff_seconds=300, max_doublings=4, timeout_sec=300)


def audit_enqueue(function: str, name: str, data: dict[str, Any]) -> bool:
    """Enqueue a page through the Admin SDK, its delivery allowed the function's timeout."""
    from cogmora_backend.taskqueue import enqueue

    return enqueue(function, name, data, AUDIT_QUEUE.timeout_sec)


class AuditStatus(StrEnum):
    """`status` of an `audits/{date}` document."""

    RUNNING = "running"
    COMPLETE = "complete"


class PageStatus(StrEnum):
    """`status` of an `audits/{date}/pages/{page}` document."""

    QUEUED = "queued"
    DONE = "done"
    #: Failed its last try on the queue (the dead letter): a later run enqueues it again.
    DEAD = "dead"


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


def page_path(day: date, page_id: str) -> str:
    """Return the path of `audits/{YYYY-MM-DD}/pages/{page}`."""
    return f"{audit_path(day)}/{PAGES}/{page_id}"


def page_id(generation: int, index: int) -> str:
    """Return a page's id: the day's generation (a restart makes the next), then its index."""
    return f"{generation:04d}-{index:06d}"


def task_name(day: date, page: str, enqueues: int) -> str:
    """Return the task name of a page's `enqueues`-th enqueue: a hash (Cloud Tasks spreads
    names by their prefix) of the day, the page and the count, then `-audit`."""
    digest = hashlib.sha256(f"audit|{day.isoformat()}|{page}|{enqueues}".encode())
    return f"{digest.hexdigest()[:40]}-audit"


@dataclass
class AuditReport:
    """What one run did (and, without a queue, what its pages found)."""

    day: date
    #: Accounts audited by this run's pages (without a queue; with one, the pages count).
    accounts: int = 0
    drifted: list[AccountAudit] = field(default_factory=list)
    complete: bool = False
    out_of_time: bool = False
    #: Another run held the day's audit: this one did nothing.
    busy: bool = False
    #: Pages this run planned, enqueued (or found queued), and enqueued again.
    planned: int = 0
    enqueued: int = 0
    requeued: int = 0
    seconds: float = 0.0


@dataclass
class PageReport:
    """What one delivery of a page did."""

    day: date
    page: str
    attempt: int
    accounts: int = 0
    drifted: list[AccountAudit] = field(default_factory=list)
    #: This delivery wrote the page's result (False: done already, or another generation).
    saved: bool = False
    #: The page failed its last try and was recorded `dead`.
    dead: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class _Lease:
    """The day's audit as a run found it when it took the lease."""

    cursor: str
    generation: int
    pages: int
    planned: bool


def run_audit(database: Database, day: date, *, restart: bool = False,
              budget_seconds: float = DEFAULT_BUDGET_SECONDS, page: int = DEFAULT_PAGE,
              workers: int = DEFAULT_WORKERS, enqueue: Enqueue | None = None,
              now: datetime | None = None) -> AuditReport:
    """Plan the day's audit in pages and enqueue them; go on from the day's last run.

    `enqueue` puts each page on the `runAuditPage` queue; without it each page
    runs here at once (its accounts and drift are then in the report).
    `restart` audits the day again from the first account (the pages already
    queued find themselves of an older generation and do nothing). A day
    already complete is left alone (the scheduler asks often; it runs once a
    day). A later run of the day enqueues again the pages dead or stuck. `now`
    (the clock's when absent) dates the lease and finds the stuck pages.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    path = audit_path(day)
    report = AuditReport(day)
    state = database.read(path)
    if state is not None and state.get("status") == AuditStatus.COMPLETE and not restart:
        report.complete = True
        return report
    lease = _take_lease(database, path, restart, budget_seconds, now)
    if lease is None:  # another run of the day is planning now
        report.busy = True
        return report
    send = _sender(database, report, day, lease.generation, page, workers, enqueue)
    try:
        if not lease.planned:
            # Pages run here one after the other; enqueues go out several at once.
            _plan(database, report, day, lease, started, budget_seconds, page, send,
                  ENQUEUE_THREADS if enqueue is not None else 1)
        if not report.out_of_time:
            _requeue(database, report, day, lease.generation, send, now)
            report.complete = finish_day(database, day)
    finally:  # the next run may go on at once
        database.write(lambda batch: batch.update(path, {"leaseUntil": None}))
    report.seconds = time.monotonic() - started
    summary = log.error if report.drifted else log.info
    summary("ledger audit", extra={
        "date": day.isoformat(), "accounts": report.accounts, "drifted": len(report.drifted),
        "complete": report.complete, "outOfTime": report.out_of_time,
        "planned": report.planned, "enqueued": report.enqueued,
        "requeued": report.requeued, "seconds": round(report.seconds, 3)})
    return report


def _sender(database: Database, report: AuditReport, day: date, generation: int,
            page: int, workers: int, enqueue: Enqueue | None) -> Callable[[str, int], None]:
    """Return how this run sends a page: on the queue, or run here at once."""
    counting = threading.Lock()

    def send(page_id: str, enqueues: int) -> None:
        data = {"date": day.isoformat(), "page": page_id, "generation": generation}
        if enqueue is None:
            found = run_page(database, data, 0, accounts_per_page=page, workers=workers)
            report.accounts += found.accounts
            report.drifted += found.drifted
            report.enqueued += 1
            return
        try:
            enqueue(AUDIT_QUEUE.function, task_name(day, page_id, enqueues), data)
        except Exception as failure:  # the page stays queued: a later run sends it again
            log.error("audit page not enqueued; a later run enqueues it again", extra={
                "date": day.isoformat(), "page": page_id,
                "error": f"{type(failure).__name__}: {failure}"[:500]})
            return
        with counting:
            report.enqueued += 1

    return send


#: A run holds the day's audit this long past its budget (a crashed run's lease lapses).
LEASE_MARGIN = timedelta(seconds=60)


def _take_lease(database: Database, path: str, restart: bool, budget_seconds: float,
                now: datetime) -> _Lease | None:
    """Take the day's audit for one run; return where it stands, None if held.

    The scheduled run and an on-demand one must not plan at once: each would
    plan the same accounts. A lease (`leaseUntil`) bounds a crashed run's hold.
    """

    def work(tx: Transaction) -> _Lease | None:
        state = tx.get(path)
        until = _time(state.get("leaseUntil")) if state is not None else None
        if until is not None and until > now:
            return None
        lease = now + timedelta(seconds=budget_seconds) + LEASE_MARGIN
        if state is None or restart or not isinstance(state.get("generation"), int):
            # (a day's document from before the queue starts again, as a restart)
            before = (state or {}).get("generation")
            generation = before + 1 if isinstance(before, int) else 1
            tx.set(path, {"date": path.rsplit("/", 1)[-1],
                          "status": AuditStatus.RUNNING.value, "startedAt": SERVER_TIME,
                          "cursor": None, "accounts": 0, "drifted": 0, "totalDifference": 0,
                          "drift": {}, "leaseUntil": lease, "generation": generation,
                          "pages": 0, "planned": False})
            return _Lease("", generation, 0, False)
        tx.update(path, {"leaseUntil": lease})
        cursor, held, pages = (state.get(k) for k in ("cursor", "generation", "pages"))
        return _Lease(cursor if isinstance(cursor, str) else "",
                      held if isinstance(held, int) else 1,
                      pages if isinstance(pages, int) else 0, state.get("planned") is True)

    return database.run(work)


def _plan(database: Database, report: AuditReport, day: date, lease: _Lease, started: float,
          budget_seconds: float, page: int, send: Callable[[str, int], None],
          threads: int) -> None:
    """Cut the users' ids into pages from the lease's cursor, save each batch, send it
    (`threads` at once)."""
    cursor, index = lease.cursor, lease.pages
    with ThreadPoolExecutor(max_workers=threads) as pool:
        while True:
            if time.monotonic() - started >= budget_seconds:
                report.out_of_time = True
                return
            limit = page * PLAN_PAGES
            ids = database.list_ids("users", limit=limit, after_id=cursor or None)
            final = len(ids) < limit
            parts = [ids[i:i + page] for i in range(0, len(ids), page)] or [[]]
            ranges: list[tuple[str, str | None]] = []
            after = cursor
            for n, part in enumerate(parts):
                last = None if final and n == len(parts) - 1 else part[-1]
                ranges.append((after, last))
                after = part[-1] if part else after
            new = _save_plan(database, day, lease.generation, index, ranges, after, final)
            report.planned += len(new)
            list(pool.map(lambda page_id: send(page_id, 1), new))
            index += len(ranges)
            cursor = after
            if final:
                return


def _save_plan(database: Database, day: date, generation: int, index: int,
               ranges: list[tuple[str, str | None]], cursor: str, final: bool) -> list[str]:
    """Write the pages of `ranges` (from `index`) and move the day's cursor, at once.

    Returns the pages written: none when a restart began another generation, or
    when another run planned these pages meanwhile (a run whose lease lapsed).
    """
    path = audit_path(day)

    def work(tx: Transaction) -> list[str]:
        state = tx.get(path) or {}
        if state.get("generation") != generation or state.get("pages", 0) != index:
            return []
        written = []
        for n, (after, last) in enumerate(ranges):
            page = page_id(generation, index + n)
            tx.set(page_path(day, page), {
                "date": day.isoformat(), "generation": generation, "index": index + n,
                "after": after, "last": last, "status": PageStatus.QUEUED.value,
                "queuedAt": SERVER_TIME, "enqueues": 1})
            written.append(page)
        tx.update(path, {"cursor": cursor or None, "pages": index + len(ranges),
                         "planned": final, "updatedAt": SERVER_TIME})
        return written

    return database.run(work)


def _requeue(database: Database, report: AuditReport, day: date, generation: int,
             send: Callable[[str, int], None], now: datetime) -> None:
    """Send again the day's pages that are dead, or queued for longer than REQUEUE_AFTER."""
    for page, state in database.list(f"{audit_path(day)}/{PAGES}"):
        if state.get("generation") != generation or state.get("status") == PageStatus.DONE:
            continue
        enqueues = state.get("enqueues")
        count = enqueues if isinstance(enqueues, int) else 1
        queued = _time(state.get("queuedAt"))
        stuck = queued is None or queued <= now - REQUEUE_AFTER
        if count >= MAX_ENQUEUES or not (state.get("status") == PageStatus.DEAD or stuck):
            continue
        if _mark_requeued(database, day, page, count):
            report.requeued += 1
            send(page, count + 1)


def _mark_requeued(database: Database, day: date, page: str, enqueues: int) -> bool:
    """Record a page's next enqueue, unless it was done or re-enqueued meanwhile."""
    path = page_path(day, page)

    def work(tx: Transaction) -> bool:
        state = tx.get(path)
        if state is None or state.get("status") == PageStatus.DONE or (
                state.get("enqueues", 1) != enqueues):
            return False
        tx.update(path, {"status": PageStatus.QUEUED.value, "queuedAt": SERVER_TIME,
                         "enqueues": enqueues + 1})
        return True

    return database.run(work)


@dataclass(frozen=True)
class PageRequest:
    """An enqueued page as the queue function receives it."""

    day: date
    page: str
    generation: int

    @classmethod
    def of(cls, data: Any) -> PageRequest:
        """Read a task's payload; raise ValueError when it is not an audit page."""
        if not isinstance(data, dict):
            raise ValueError("an audit page is an object")
        page, generation = data.get("page"), data.get("generation")
        if not isinstance(page, str) or not page or "/" in page:
            raise ValueError(f"not an audit page: {page!r}")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
            raise ValueError(f"not a generation: {generation!r}")
        return cls(date.fromisoformat(str(data.get("date"))), page, generation)


def run_page(database: Database, data: Any, retry_count: int, *,
             accounts_per_page: int = AUDIT_QUEUE.accounts_per_page,
             workers: int = AUDIT_QUEUE.threads, max_attempts: int = AUDIT_QUEUE.max_attempts,
             audit: Callable[[Database, str, Mapping[str, Any]], AccountAudit | None] | None
             = None) -> PageReport:
    """Run one delivery of a page: audit its accounts, write its result once.

    `retry_count` is the queue's (0 on the first attempt). A failure before
    the last attempt raises, so the queue retries; on the last one the page
    is recorded `dead` and the delivery ends. When every page of the day is
    done, the day is summed up (`finish_day`).
    """
    started = time.monotonic()
    request = PageRequest.of(data)
    report = PageReport(request.day, request.page, retry_count + 1)
    try:
        _audit_page(database, request, report, accounts_per_page, workers,
                    audit or audit_account, started)
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
        if retry_count + 1 < max_attempts:
            log.exception("audit page failed; the queue retries it", extra={
                "date": request.day.isoformat(), "page": request.page,
                "attempt": retry_count + 1})
            raise
        log.error("audit page dead-lettered after its last attempt", extra={
            "date": request.day.isoformat(), "page": request.page,
            "attempt": retry_count + 1, "error": error[:500]})
        report.dead = _dead_letter(database, request, error, retry_count + 1)
    report.seconds = time.monotonic() - started
    log.info("audit page", extra={
        "date": request.day.isoformat(), "page": request.page, "attempt": report.attempt,
        "accounts": report.accounts, "drifted": len(report.drifted), "saved": report.saved,
        "result": "dead-lettered" if report.dead else "ok",
        "seconds": round(report.seconds, 3)})
    return report


def _audit_page(database: Database, request: PageRequest, report: PageReport,
                accounts_per_page: int, workers: int,
                audit: Callable[[Database, str, Mapping[str, Any]], AccountAudit | None],
                started: float) -> None:
    day = request.day
    state = database.read(page_path(day, request.page))
    summary = database.read(audit_path(day)) or {}
    if state is None or state.get("status") == PageStatus.DONE or (
            state.get("generation") != request.generation
            or summary.get("generation") != request.generation):
        return  # done already, or a restart made it an older generation's
    after, last = state.get("after") or "", state.get("last")
    rows = _accounts_in(database, after, last if isinstance(last, str) else None,
                        accounts_per_page)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        audits = [found for found in pool.map(lambda row: audit(database, row[0], row[1]),
                                              rows) if found is not None]
    drifted = [found for found in audits if found.problems]
    report.saved = _save_page(database, request, len(audits), drifted, report.attempt,
                              time.monotonic() - started)
    if not report.saved:
        return
    report.accounts, report.drifted = len(audits), drifted
    for found in drifted:
        log.error("ledger drift", extra={
            "metric": "ledger_drift_accounts", "uid": found.uid, "date": day.isoformat(),
            "balance": str(found.balance), "journal": str(found.journal),
            "difference": str(found.difference), "problems": found.problems[:20]})
    finish_day(database, day)


def _accounts_in(database: Database, after: str, last: str | None,
                 limit: int) -> list[tuple[str, dict[str, Any]]]:
    """Return the users with an id after `after`, up to and including `last` (None: all)."""
    rows: list[tuple[str, dict[str, Any]]] = []
    cursor = after or None
    while True:
        found = database.list("users", limit=limit, after_id=cursor)
        for uid, data in found:
            if last is not None and uid > last:
                return rows
            rows.append((uid, data))
        if len(found) < limit:
            return rows
        cursor = found[-1][0]


def _save_page(database: Database, request: PageRequest, accounts: int,
               drifted: list[AccountAudit], attempt: int, seconds: float) -> bool:
    """Write a page's result and its drifted accounts, unless it is done (one transaction)."""
    day = request.day
    path = page_path(day, request.page)

    def work(tx: Transaction) -> bool:
        summary, state = tx.get_many([audit_path(day), path])
        if state is None or state.get("status") == PageStatus.DONE or (
                (summary or {}).get("generation") != request.generation):
            return False
        tx.update(path, {
            "status": PageStatus.DONE.value, "accounts": accounts, "drifted": len(drifted),
            "totalDifference": to_firestore(sum((d.difference for d in drifted), ZERO)),
            "drift": {d.uid: {k: v for k, v in d.document().items() if k != "uid"}
                      for d in drifted},
            "finishedAt": SERVER_TIME, "attempts": attempt, "seconds": round(seconds, 3)})
        for found in drifted:
            tx.set(f"{audit_path(day)}/accounts/{found.uid}", {**found.document(),
                                                               "at": SERVER_TIME})
        return True

    return database.run(work)


def _dead_letter(database: Database, request: PageRequest, error: str, attempts: int) -> bool:
    """Record a page that failed its last try `dead` (unless done meanwhile)."""
    path = page_path(request.day, request.page)

    def work(tx: Transaction) -> bool:
        state = tx.get(path)
        if state is None or state.get("status") == PageStatus.DONE:
            return False
        tx.update(path, {"status": PageStatus.DEAD.value, "error": error[:1000],
                         "attempts": attempts, "deadAt": SERVER_TIME})
        return True

    return database.run(work)


def finish_day(database: Database, day: date) -> bool:
    """Sum the day up once every page is done; return whether the day is complete.

    The done pages are counted (an aggregation); when all are, their results
    (which no longer change) are summed into `audits/{date}` in a transaction
    that does nothing if the day is complete already, so two last pages
    finishing at once write the same summary once.
    """
    path = audit_path(day)
    state = database.read(path)
    if state is None:
        return False
    if state.get("status") == AuditStatus.COMPLETE:
        return True
    generation, pages = state.get("generation"), state.get("pages")
    if state.get("planned") is not True or not isinstance(pages, int):
        return False
    done = database.count(queries.AUDIT_PAGES, (day.isoformat(), generation,
                                                 PageStatus.DONE.value))
    if done < pages:
        return False
    results = sorted((found for _, found in database.list(f"{path}/{PAGES}")
                      if found.get("generation") == generation
                      and found.get("status") == PageStatus.DONE),
                     key=lambda found: int(found.get("index", 0)))
    accounts = sum(int(found.get("accounts", 0)) for found in results)
    drifted = sum(int(found.get("drifted", 0)) for found in results)
    total = sum((parse_number(found.get("totalDifference", 0)) or ZERO for found in results),
                ZERO)
    listed: dict[str, Any] = {}
    for found in results:
        for uid, record in sorted((found.get("drift") or {}).items()):
            if len(listed) < MAX_DRIFT_LISTED:
                listed[uid] = record

    def work(tx: Transaction) -> bool:
        now = tx.get(path) or {}
        if now.get("status") == AuditStatus.COMPLETE:
            return False
        if now.get("generation") != generation:
            return False
        tx.update(path, {"status": AuditStatus.COMPLETE.value, "finishedAt": SERVER_TIME,
                         "updatedAt": SERVER_TIME, "accounts": accounts, "drifted": drifted,
                         "totalDifference": to_firestore(total), "drift": listed})
        return True

    if database.run(work):
        (log.error if drifted else log.info)("ledger audit complete", extra={
            "date": day.isoformat(), "generation": generation, "pages": pages,
            "accounts": accounts, "drifted": drifted, "totalDifference": str(total)})
        return True
    return (database.read(path) or {}).get("status") == AuditStatus.COMPLETE
