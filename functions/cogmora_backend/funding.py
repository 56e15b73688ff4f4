"""Perpetual funding: the worker marks a funding event, this settles it on every position.

The worker writes `fundingEvents/{venue}_{symbol}_{fundingTimeMs}` (created
once, whatever the number of workers or repeated frames) with the rate and
the mark price at the funding time. `applyFunding` then moves money for each
open or closing futures position of that symbol and venue opened before the
funding time, one transaction per position:

- payment = size × markPrice × rate, paid by longs and received by shorts
  for a positive rate (the reverse for a negative one), rounded once;
- the balance moves by the payment (the account's free balance: isolated
  margin stays as it was);
- the position records `funding` {total, count, lastEventId, lastFundingTime},
  which makes the payment happen once per event and position, and the
  settlement's pnl includes the total;
- the history record gets the same total and the payment in `fundingPayments`.

When every position is done the event becomes `applied` with the count and
sum. An event a failed run left `pending` is applied again by the reconciler:
positions already paid are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora_backend import paths, queries
from cogmora_backend.settlement import Outcome, account_balance
from cogmora_backend.store import SERVER_TIME, Database, FirestoreDatabase, Transaction
from cogmora_core.errors import Rejected
from cogmora_core.model import SymbolType
from cogmora_core.money import ZERO, parse_number, to_firestore
from cogmora_core.trading import funding_payment
from cogmora_core.validation import parse_position

log = logging.getLogger(__name__)
COLLECTION = "fundingEvents"


def event_id(venue: str, symbol: str, funding_time_ms: int) -> str:
    """Return the id of a funding event: one per venue, symbol and funding time."""
    return f"{venue}_{symbol}_{funding_time_ms}"


def event_path(identifier: str) -> str:
    """Return the path of `fundingEvents/{id}`."""
    return f"{COLLECTION}/{identifier}"


def _time_ms(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return None


def apply_to_position(database: Database, uid: str, position_id: str, identifier: str,
                      event: Mapping[str, Any]) -> Outcome:
    """Apply one funding event to one position, exactly once (a transaction)."""
    path = paths.position(uid, position_id)
    history_path = paths.history(uid, position_id)
    rate = parse_number(event.get("rate"))
    mark = parse_number(event.get("markPrice"))
    funding_ms = event.get("fundingTimeMs")
    if rate is None or mark is None or mark <= ZERO or not isinstance(funding_ms, int):
        return Outcome("rejected", "invalid funding event")

    def work(tx: Transaction) -> Outcome:
        position, user, history = tx.get_many([path, paths.user(uid), history_path])
        if position is None:
            return Outcome("skipped", "no position")
        try:
            state = parse_position(position)
        except Rejected as rejection:
            return Outcome("rejected", rejection.reason)
        if state.symbol_type is not SymbolType.FUTURES:
            return Outcome("skipped", "not futures")
        record = position.get("funding") if isinstance(position.get("funding"), Mapping) else {}
        last = record.get("lastFundingTime")
        if record.get("lastEventId") == identifier or (isinstance(last, int)
                                                       and last >= funding_ms):
            return Outcome("skipped", "already applied")
        opened_ms = _time_ms(position.get("openedAt"))
        if opened_ms is None or opened_ms >= funding_ms:
            return Outcome("skipped", "opened after the funding time")
        payment = funding_payment(state.position_type, state.size, mark, rate)
        balance = account_balance(user)
        total = state.funding + payment
        count = record.get("count", 0)
        tx.update(path, {"funding": {
            "total": to_firestore(total), "count": (count if isinstance(count, int) else 0) + 1,
            "lastEventId": identifier, "lastFundingTime": funding_ms}})
        tx.update(paths.user(uid), {"balance": to_firestore(balance + payment)})
        if history is not None:
            payments = history.get("fundingPayments")
            payments = list(payments) if isinstance(payments, list) else []
            payments.append({"eventId": identifier, "rate": to_firestore(rate),
                             "markPrice": to_firestore(mark), "amount": to_firestore(payment),
                             "fundingTime": funding_ms})
            tx.update(history_path, {"funding": to_firestore(total),
                                     "fundingPayments": payments})
        return Outcome("applied", str(payment))

    return database.run(work)


def apply_event(database: FirestoreDatabase, identifier: str) -> Outcome:
    """Apply a pending funding event to every position it concerns; mark it `applied`."""
    path = event_path(identifier)
    event = database.read(path)
    if event is None or event.get("status") != "pending":
        return Outcome("skipped", "not pending")
    symbol, venue = event.get("symbol"), event.get("venue", "kucoin")
    applied, total, failures = 0, Decimal(0), 0
    query = queries.POSITIONS_BY_SYMBOL.build(database.client, (symbol, ["open", "closing"]))
    for snapshot in query.stream():
        data = snapshot.to_dict() or {}
        if data.get("venue", "kucoin") != venue:
            continue
        uid = str(snapshot.reference.parent.parent.id)
        try:
            outcome = apply_to_position(database, uid, snapshot.id, identifier, event)
        except Exception:  # one position must not stop the others; the reconciler retries
            failures += 1
            log.exception("funding failed for a position",
                          extra={"path": snapshot.reference.path, "event": identifier})
            continue
        if outcome.kind == "applied":
            applied += 1
            total += Decimal(outcome.reason)
        elif outcome.kind == "rejected":
            log.warning("funding not applied", extra={"path": snapshot.reference.path,
                                                      "reason": outcome.reason})
    if failures:
        return Outcome("skipped", f"{failures} positions failed; left pending")
    database.write(lambda batch: batch.update(path, {
        "status": "applied", "appliedAt": SERVER_TIME, "positions": applied,
        "netPaidByTraders": to_firestore(-total)}))
    log.info("funding applied", extra={"event": identifier, "positions": applied})
    return Outcome("applied", str(applied))
