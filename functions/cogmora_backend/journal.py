"""The account journal's storage side: writing entries, the migration, reading pages.

Every service that moves a balance writes its entry with `record`, in the
transaction that moves it (the entry builders are in
`cogmora_core.contract.ledger`). `migrate_account` gives an account that
existed before the journal its opening entry, once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import partial

from cogmora_backend import paths
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_core.contract import ledger
from cogmora_core.contract.ledger import Entry, JournalEntry
from cogmora_core.contract.users import account_balance
from cogmora_core.errors import RetryableError

log = logging.getLogger(__name__)
#: Users read per page by the migration.
MIGRATION_PAGE = 300


def record(tx: Transaction, uid: str, entry: JournalEntry) -> None:
    """Write `entry` into the user's journal, in the transaction that moves the balance."""
    tx.set(paths.ledger(uid, entry.id), entry.document)


class _JournalMoved(RetryableError):
    """An entry was written between the listing and the transaction: list again."""


def migrate_account(database: Database, uid: str) -> Decimal | None:
    """Write the opening entry of an account whose journal has no beginning; return its amount.

    Idempotent: an account with a `funded` or an `opening` entry, or without
    a balance, is left alone (None). The opening amount is the balance less
    the entries written since the journal was deployed, so that Σ amount =
    balance; it is dated just before the first of them. Entries written
    while it runs are caught by comparing the journal's last `balanceAfter`
    with the balance the transaction reads (then it lists again).
    """
    for _attempt in range(5):
        listed = database.list(paths.ledger_collection(uid))
        if any(entry_id in (ledger.FUNDED_ID, ledger.OPENING_ID) for entry_id, _ in listed):
            return None
        try:
            return database.run(partial(_open_journal, uid, ledger.chain_order(
                ledger.parse_entry(i, d) for i, d in listed)))
        except _JournalMoved:
            continue
    raise _JournalMoved(f"the journal of {uid} kept moving during its migration")


def _open_journal(uid: str, entries: list[Entry], tx: Transaction) -> Decimal | None:
    """Write the opening entry that makes Σ amount = balance, given the entries listed."""
    user, opening = tx.get_many([paths.user(uid), paths.ledger(uid, ledger.OPENING_ID)])
    if opening is not None or user is None or "balance" not in user:
        return None
    balance = account_balance(user)
    if entries and entries[-1].balance_after != balance:
        raise _JournalMoved
    amount = balance - ledger.total(entries)
    first = entries[0].at if entries else None
    at = first - timedelta(milliseconds=1) if first is not None else SERVER_TIME
    record(tx, uid, ledger.opening_entry(amount, at, SERVER_TIME))
    return amount


@dataclass
class MigrationReport:
    """What one migration run did."""

    accounts: int = 0
    migrated: int = 0
    failures: list[str] = field(default_factory=list)


def migrate_all(database: Database, page: int = MIGRATION_PAGE) -> MigrationReport:
    """Give every account without a journal beginning its opening entry (idempotent)."""
    report = MigrationReport()
    for uid in _user_ids(database, page):
        report.accounts += 1
        try:
            if migrate_account(database, uid) is not None:
                report.migrated += 1
        except Exception as error:  # one account must not stop the others
            log.exception("ledger migration failed for an account", extra={"uid": uid})
            report.failures.append(f"{uid}: {error!r}"[:300])
    log.info("ledger migration", extra={"accounts": report.accounts,
                                        "migrated": report.migrated,
                                        "failures": len(report.failures)})
    return report


def _user_ids(database: Database, page: int) -> Iterator[str]:
    """Yield every user id, `page` at a time, by id."""
    after: str | None = None
    while True:
        rows = database.list("users", limit=page, after_id=after)
        yield from (uid for uid, _ in rows)
        if len(rows) < page:
            return
        after = rows[-1][0]
