"""`users/{uid}/ledger/{entryId}`: the account journal (DESIGN.md §2, "the account journal").

One entry for every change of `balance`, written by the backend in the same
transaction as the change: `{kind, amount, balanceAfter, currency, ref,
symbol, at}`, money rounded once here. The ids are deterministic, so a
retried or duplicated event writes the same document again, never a second
one:

- `funded` (id `funded`, ref `initializeAccount`): + the starting balance.
- `open` (id `open_{executionId}`, ref the execution): −(margin or cost +
  fee), with `margin` and `fee`.
- `close` (id `close_{positionId}`, ref the position): + the credit (zero or
  more), with `grossPnl`, `fee` (the close fee), `funding` (the position's
  funding total, paid through its own entries) and `closeReason`.
- `funding` (id `funding_{eventId}_{positionId}`, ref the funding event):
  what the free balance paid (−) or received (+), with `positionId`,
  `fromMargin` and `shortfall` (neither moves the balance).
- `adjustment` (the migration's id `opening`, ref `migration`): + the
  balance the journal of an account older than it begins at, with
  `recordedAt`.

For every account, `balance` = Σ `amount`, and each entry's `balanceAfter`
is the previous one's plus its `amount` (`chain_order`, `check_chain`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import FundingCharge, Settlement
from cogmora_core.money import ZERO, parse_number, to_firestore

COLLECTION = "ledger"
#: The quote currency of every account (DESIGN.md §2: balances are USDT).
CURRENCY = "USDT"
#: Ids of the entries an account's journal begins with.
FUNDED_ID = "funded"
OPENING_ID = "opening"
#: `ref` of the migration's opening entry.
MIGRATION_REF = "migration"
#: `ref` of the funded entry.
FUNDED_REF = "initializeAccount"


class EntryKind(StrEnum):
    """`kind` of a journal entry."""

    FUNDED = "funded"
    OPEN = "open"
    CLOSE = "close"
    FUNDING = "funding"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """An entry to write: its deterministic id and its document."""

    id: str
    document: dict[str, Any]


def _entry(entry_id: str, kind: EntryKind, amount: Decimal, balance_after: Decimal, ref: str,
           symbol: str | None, at: Any, **extra: Any) -> JournalEntry:
    return JournalEntry(entry_id, {
        "kind": kind.value, "amount": to_firestore(amount),
        "balanceAfter": to_firestore(balance_after), "currency": CURRENCY, "ref": ref,
        "symbol": symbol, "at": at, **extra})


def funded_entry(amount: Decimal, at: Any) -> JournalEntry:
    """Return the entry of an account funded with its starting balance."""
    return _entry(FUNDED_ID, EntryKind.FUNDED, amount, amount, FUNDED_REF, None, at)


def open_entry(execution_id: str, symbol: str, margin: Decimal, fee: Decimal,
               balance_after: Decimal, at: Any) -> JournalEntry:
    """Return the entry of a position opened by execution `execution_id`: −(margin + fee)."""
    return _entry(f"open_{execution_id}", EntryKind.OPEN, -(margin + fee), balance_after,
                  execution_id, symbol, at, margin=to_firestore(margin), fee=to_firestore(fee))


def close_entry(position_id: str, symbol: str, settlement: Settlement, funding: Decimal,
                close_reason: str, balance_after: Decimal, at: Any) -> JournalEntry:
    """Return the entry of a settled position: its credit, with gross P&L, fee and funding.

    `funding` is what the position paid (−) or received over its life; each
    payment moved the balance through its own `funding` entry already.
    """
    return _entry(f"close_{position_id}", EntryKind.CLOSE, settlement.credit, balance_after,
                  position_id, symbol, at, grossPnl=to_firestore(settlement.gross_pnl),
                  fee=to_firestore(settlement.close_fee), funding=to_firestore(funding),
                  closeReason=close_reason)


def funding_entry(event_id: str, position_id: str, symbol: str, charge: FundingCharge,
                  balance_after: Decimal, at: Any) -> JournalEntry:
    """Return the entry of one funding payment: what the free balance paid or received.

    What the position's margin paid (`fromMargin`) and what was written off
    (`shortfall`) are recorded beside it; neither moves the balance.
    """
    return _entry(f"funding_{event_id}_{position_id}", EntryKind.FUNDING,
                  charge.balance_change, balance_after, event_id, symbol, at,
                  positionId=position_id, fromMargin=to_firestore(charge.from_margin),
                  shortfall=to_firestore(charge.shortfall))


def opening_entry(amount: Decimal, at: Any, recorded_at: Any) -> JournalEntry:
    """Return the migration's opening entry: the balance the journal of an old account begins at.

    `at` places it before every other entry of the account; `recordedAt` is
    when the migration wrote it (the journal is complete from then on).
    """
    return _entry(OPENING_ID, EntryKind.ADJUSTMENT, amount, amount, MIGRATION_REF, None, at,
                  recordedAt=recorded_at, note="opening balance of the journal")


# ---- reading ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal entry as read (exact numbers)."""

    id: str
    kind: EntryKind
    amount: Decimal
    balance_after: Decimal
    ref: str
    symbol: str | None
    at: datetime | None
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def balance_before(self) -> Decimal:
        """Return the balance before this entry."""
        return self.balance_after - self.amount


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_entry(entry_id: str, data: Mapping[str, Any]) -> Entry:
    """Return the entry of a `ledger` document, or raise `Rejected(invalid_document)`."""
    kind, ref, symbol = data.get("kind"), data.get("ref"), data.get("symbol")
    amount = parse_number(data.get("amount"))
    after = parse_number(data.get("balanceAfter"))
    if (not isinstance(kind, str) or kind not in set(EntryKind) or amount is None
            or after is None or not isinstance(ref, str)
            or not (symbol is None or isinstance(symbol, str))):
        raise Rejected(Reason.INVALID_DOCUMENT, f"ledger entry {entry_id} is not an entry")
    return Entry(entry_id, EntryKind(kind), amount, after, ref, symbol, _instant(data.get("at")),
                 data)


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def chain_order(entries: Iterable[Entry]) -> list[Entry]:
    """Return the entries in the order they moved the balance.

    By `at` (the commit time). Entries of one transaction share it (one
    account settlement may write hundreds): among them, each follows the one
    whose `balanceAfter` it starts from, the first from the previous
    transaction's (or, when none fits, from wherever a whole chain of them
    starts); a group no order chains keeps its order by id.
    """
    ordered = sorted(entries, key=lambda e: (e.at or _EARLIEST, e.id))
    result: list[Entry] = []
    index = 0
    while index < len(ordered):
        end = index
        while end < len(ordered) and ordered[end].at == ordered[index].at:
            end += 1
        group = ordered[index:end]
        current = result[-1].balance_after if result else None
        result += _chained(group, current) if len(group) > 1 else group
        index = end
    return result


def _chained(group: list[Entry], current: Decimal | None) -> list[Entry]:
    """Return `group` in an order whose `balanceAfter` chain holds, if there is one.

    Each entry is an edge from the balance before it to the balance after
    it, so a chaining order is a trail through every edge (an Euler trail,
    found in linear time), started from the previous balance if it can be.
    """
    starts = [current] if current is not None else []
    starts += sorted({e.balance_before for e in group} - set(starts))
    for start in starts:
        found = _trail_from(group, start)
        if found is not None:
            return found
    return group


def _trail_from(group: list[Entry], start: Decimal) -> list[Entry] | None:
    """Return an order of all of `group` chaining from `start` (Hierholzer), or None."""
    leaving: dict[Decimal, list[Entry]] = {}
    for entry in sorted(group, key=lambda e: e.id, reverse=True):
        leaving.setdefault(entry.balance_before, []).append(entry)
    trail: list[Entry] = []
    stack: list[tuple[Decimal, Entry | None]] = [(start, None)]
    while stack:
        balance, via = stack[-1]
        out = leaving.get(balance)
        if out:
            entry = out.pop()
            stack.append((entry.balance_after, entry))
        else:
            stack.pop()
            if via is not None:
                trail.append(via)
    trail.reverse()
    before = start
    for entry in trail:
        if entry.balance_before != before:
            return None
        before = entry.balance_after
    return trail if len(trail) == len(group) else None


def total(entries: Iterable[Entry]) -> Decimal:
    """Return Σ amount (exact)."""
    return sum((e.amount for e in entries), ZERO)


def check_chain(ordered: Sequence[Entry]) -> list[str]:
    """Return the ids of entries whose `balanceAfter` is not the previous one's plus `amount`."""
    broken, before = [], ZERO
    for entry in ordered:
        if entry.balance_before != before:
            broken.append(entry.id)
        before = entry.balance_after
    return broken
