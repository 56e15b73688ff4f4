"""The account journal over HTTP: ledger pages and statements (JSON or CSV).

`GET /api/v1/account/ledger` pages a user's journal newest first (by `at`,
then id), filtered by `kind` and by time (`from` inclusive, `to`
exclusive). `GET /api/v1/account/statement?from&to` answers the balance at
`from`, every entry of [`from`, `to`) oldest first, and the balance at
`to`; with `Accept: text/csv`, the same as CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cogmora_backend import paths
from cogmora_backend.api.errors import ApiError, Code
from cogmora_backend.api.views import decimal_string, to_json
from cogmora_backend.queries import LEDGER_KIND_PAGE, LEDGER_PAGE, LEDGER_STATEMENT
from cogmora_backend.store import CursorMissing, Database
from cogmora_core.contract import ledger
from cogmora_core.contract.ledger import EntryKind
from cogmora_core.errors import Rejected
from cogmora_core.money import ZERO

#: Entries a statement may hold: a longer period answers 422 (ask for shorter ones).
STATEMENT_MAX_ENTRIES = 5000
#: Entries read per query while building a statement.
_STATEMENT_PAGE = 500
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
#: Columns of a CSV statement.
CSV_COLUMNS = ("at", "kind", "amount", "balanceAfter", "currency", "ref", "symbol", "id")


def parse_time(raw: str | None, name: str) -> datetime | None:
    """Return an RFC 3339 date-time query parameter in UTC, None when absent.

    A time outside what a timestamp holds (year 1 to 9999 in UTC) is
    clamped to its end; one without an offset, or empty, is refused (400
    `invalid_time`).
    """
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.upper())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in raw.upper():
        raise ApiError(400, Code.INVALID_TIME,
                       f"{name} must be an RFC 3339 date-time with an offset, such as "
                       "2026-01-31T00:00:00Z", name)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return _EARLIEST if moment.year == 1 else _LATEST


def check_period(since: datetime | None, before: datetime | None) -> None:
    """Raise 400 `invalid_period` unless `from` comes before `to` (when both are given)."""
    if since is not None and before is not None and since >= before:
        raise ApiError(400, Code.INVALID_PERIOD, "from must be earlier than to", "from")


def parse_kind(raw: str | None) -> EntryKind | None:
    """Return the `kind` filter, None when absent, or raise 400 `invalid_kind`."""
    if raw is None:
        return None
    if raw not in set(EntryKind):
        raise ApiError(400, Code.INVALID_KIND,
                       f"kind must be one of {', '.join(k.value for k in EntryKind)}", "kind")
    return EntryKind(raw)


def entry_view(entry_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return an entry as JSON: its id first, money as decimal strings."""
    return {"id": entry_id, **to_json(dict(data))}


def ledger_page(database: Database, uid: str, limit: int, cursor: str | None,
                kind: EntryKind | None, since: datetime | None,
                before: datetime | None) -> dict[str, Any]:
    """Return one page of the user's journal, newest first, and the cursor of the next."""
    spec, equals = (LEDGER_KIND_PAGE, (kind.value,)) if kind else (LEDGER_PAGE, ())
    try:
        rows = database.page(spec, paths.ledger_collection(uid), limit + 1, cursor,
                             equals=equals, since=since, before=before)
    except CursorMissing:
        raise ApiError(400, Code.INVALID_CURSOR, "cursor is not one this API gave",
                       "cursor") from None
    page = rows[:limit]
    return {"items": [entry_view(i, d) for i, d in page],
            "nextCursor": page[-1][0] if len(rows) > limit else None}


def _balance_before(database: Database, uid: str, moment: datetime) -> Decimal:
    """Return the balance just before `moment`: the last entry's `balanceAfter` (0 if none)."""
    rows = database.page(LEDGER_PAGE, paths.ledger_collection(uid), 20, before=moment)
    if not rows:
        return ZERO
    latest = rows[0][1].get("at")
    group = [ledger.parse_entry(i, d) for i, d in rows if d.get("at") == latest]
    return ledger.chain_order(group)[-1].balance_after


def statement(database: Database, uid: str, since: datetime, before: datetime
              ) -> tuple[Decimal, list[tuple[str, dict[str, Any]]], Decimal]:
    """Return (opening balance, entries of [since, before) oldest first, closing balance)."""
    opening = _balance_before(database, uid, since)
    rows: list[tuple[str, dict[str, Any]]] = []
    after: str | None = None
    while True:
        found = database.page(LEDGER_STATEMENT, paths.ledger_collection(uid), _STATEMENT_PAGE,
                              after, since=since, before=before)
        rows += found
        if len(rows) > STATEMENT_MAX_ENTRIES:
            raise ApiError(422, Code.STATEMENT_TOO_LARGE,
                           f"more than {STATEMENT_MAX_ENTRIES} entries in this period: ask "
                           "for shorter periods", "to")
        if len(found) < _STATEMENT_PAGE:
            break
        after = found[-1][0]
    try:
        entries = ledger.chain_order(ledger.parse_entry(i, d) for i, d in rows)
    except Rejected:
        raise RuntimeError(f"users/{uid}/ledger holds an unreadable entry") from None
    by_id = dict(rows)
    closing = opening + ledger.total(entries)
    return opening, [(e.id, by_id[e.id]) for e in entries], closing


def statement_json(since: datetime, before: datetime, opening: Decimal,
                   rows: list[tuple[str, dict[str, Any]]], closing: Decimal) -> dict[str, Any]:
    """Return a statement as JSON."""
    return {"from": to_json(since), "to": to_json(before), "currency": ledger.CURRENCY,
            "openingBalance": decimal_string(opening),
            "entries": [entry_view(i, d) for i, d in rows],
            "closingBalance": decimal_string(closing)}


def statement_csv(since: datetime, before: datetime, opening: Decimal,
                  rows: list[tuple[str, dict[str, Any]]], closing: Decimal) -> str:
    """Return a statement as CSV: a header, the opening balance, each entry, the closing balance.

    The two balance rows have the kind `opening_balance` / `closing_balance`,
    the period's bound as `at` and the balance as `balanceAfter`.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow([to_json(since), "opening_balance", "", decimal_string(opening),
                     ledger.CURRENCY, "", "", ""])
    for entry_id, data in rows:
        view = entry_view(entry_id, data)
        writer.writerow(["" if view.get(name) is None else view[name] for name in CSV_COLUMNS])
    writer.writerow([to_json(before), "closing_balance", "", decimal_string(closing),
                     ledger.CURRENCY, "", "", ""])
    return out.getvalue()
