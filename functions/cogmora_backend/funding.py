"""Perpetual funding: the worker marks a funding event, this settles it on every position.

The worker writes `fundingEvents/{venue}_{symbol}_{fundingTimeMs}` (created
once, whatever the number of workers or repeated frames) with the rate and
the mark price at the funding time T. `applyFunding` charges every futures
position of that symbol and venue that was open at T, one transaction each.

**Who pays.** A position pays iff it was open at T: opened at or before T
(`openedAt`) and not asked to close by then, i.e. no close request, or one
made after T (`details.closeRequest.at`; a settled record keeps it as
`closeRequestedAt`). A close requested at or before T pays nothing even when
it settles after the funding ran; a position held through T pays even when
its close settled before the funding reached it. A manual close the worker
has not priced yet still holds the position.

**Exactly once.** Two queries find the positions: those still open or
closing, then the history records closed after T (run second, so a position
settled in between is found by one of them). Each payment is one transaction
that re-reads the position, its history record and the user. The history
record, which outlives the position, lists every event paid
(`fundingPayments`, by event id), so a repeated application, or one racing
the close's settlement, pays once: whichever transaction commits second
re-reads what the first wrote.

**What moves.** payment = size × markPrice × rate, paid by longs and
received by shorts for a positive rate (the reverse for a negative one),
rounded once. A receipt goes to the free balance. A payment is taken from
the free balance as far as it reaches, and the rest from the position's
isolated margin (`margin` shrinks, `liquidationPrice` moves nearer by
rest / size). When the rest reaches the whole margin the position is
liquidated at the event's mark price in the same transaction: the rest is
taken out of what that close returns, and anything still unpaid is written
off (`shortfall`). A position already settled has no margin left: what the
balance cannot pay is written off. A balance never goes below zero.

**What is recorded.** An open position: `funding` {total, count,
lastEventId, lastFundingTime, fromMargin}; its settlement's pnl includes the
total. Its history record: `funding` (the same total) and each payment in
`fundingPayments` {eventId, rate, markPrice, amount, fromMargin, shortfall,
fundingTime}; a settled record's `pnl` and `pnlPercent` take in a payment
made after its settlement. When every position is done the event becomes
`applied` with `positions` and `netPaidByTraders`. An event a failed run
left `pending` is applied again by the reconciler: positions paid are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cogmora_backend import journal, paths, queries
from cogmora_backend.settlement import load_config
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_core.config import TradingConfig
from cogmora_core.contract import funding as contract
from cogmora_core.contract import ledger
from cogmora_core.contract.funding import (
    COLLECTION,
    FundingEvent,
    parse_event,
    payment_document,
    payments_of,
)
from cogmora_core.contract.history import (
    HistoryStatus,
    history_close_fields,
    history_open_document,
    is_closed,
    parse_settled_record,
)
from cogmora_core.contract.positions import LIVE, parse_position
from cogmora_core.contract.users import (
    account_balance,
    balance_fields,
    position_count_after_close,
)
from cogmora_core.errors import Rejected
from cogmora_core.events import (
    FundingApplied,
    FundingEventApplied,
    FundingLeftPending,
    FundingRejected,
    Skip,
    Skipped,
)
from cogmora_core.model import (
    CloseReason,
    CloseRequest,
    FundingCharge,
    PositionState,
    SymbolType,
)
from cogmora_core.money import PERCENT_PLACES, ZERO, to_firestore, to_firestore_price
from cogmora_core.trading import (
    CloseDetail,
    charge_funding,
    funding_liquidation,
    funding_payment,
    held_at,
    liquidation_after_margin_call,
    pnl_percent,
)

log = logging.getLogger(__name__)
#: `closeDetail` of a position liquidated because funding used up its margin.
LIQUIDATED_BY_FUNDING = CloseDetail.FUNDING.value


#: What applying one event to one position does.
PositionFunding = FundingApplied | FundingRejected | Skipped


def event_path(identifier: str) -> str:
    """Return the path of `fundingEvents/{id}`."""
    return f"{COLLECTION}/{identifier}"


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def held_through(opened_at: Any, close_requested_at: Any, funding_time: datetime) -> bool:
    """Return whether a position was open at `funding_time` (`trading.held_at`).

    A time that is not a datetime counts as unknown: an unknown opening was
    not open, an unknown close request was not made.
    """
    return held_at(_instant(opened_at), _instant(close_requested_at), funding_time)


def _paid(identifier: str, position: Mapping[str, Any] | None,
          history: Mapping[str, Any] | None) -> bool:
    """Return whether the event was paid to this position already.

    The history record lists every event paid; a position without one
    (written before records existed) knows its last event.
    """
    if any(isinstance(p, Mapping) and p.get("eventId") == identifier
           for p in payments_of(history)):
        return True
    record = position.get("funding") if position is not None else None
    return isinstance(record, Mapping) and record.get("lastEventId") == identifier


@dataclass(frozen=True)
class _Documents:
    """What one payment's transaction read, and where it writes."""

    uid: str
    position_id: str
    position: dict[str, Any] | None
    user: dict[str, Any] | None
    history: dict[str, Any] | None

    @property
    def position_path(self) -> str:
        return paths.position(self.uid, self.position_id)

    @property
    def history_path(self) -> str:
        return paths.history(self.uid, self.position_id)

    @property
    def user_path(self) -> str:
        return paths.user(self.uid)


def apply_to_position(database: Database, uid: str, position_id: str, identifier: str,
                      event: Mapping[str, Any], config: TradingConfig | None = None
                      ) -> PositionFunding:
    """Apply one funding event to one position, exactly once (one transaction).

    The position may be open, closing, or already settled (then its closed
    history record is charged); see the module's docstring for the rule.
    """
    funding = parse_event(identifier, event)
    if funding is None:
        return FundingRejected("invalid funding event")
    settings = config if config is not None else load_config(database)

    def work(tx: Transaction) -> PositionFunding:
        position, user, history = tx.get_many([paths.position(uid, position_id),
                                               paths.user(uid), paths.history(uid, position_id)])
        documents = _Documents(uid, position_id, position, user, history)
        if position is not None:
            return _charge_position(tx, documents, funding, settings)
        if is_closed(history):
            return _charge_settled(tx, documents, funding)
        return Skipped(Skip.NO_POSITION)

    return database.run(work)


def _charge_position(tx: Transaction, documents: _Documents, funding: FundingEvent,
                     config: TradingConfig) -> PositionFunding:
    """Charge a position that is still open or closing."""
    position = documents.position
    assert position is not None
    try:
        state = parse_position(position)
    except Rejected as rejection:
        return FundingRejected(rejection.reason, rejection.detail)
    if state.symbol_type is not SymbolType.FUTURES or not funding.concerns(state.symbol,
                                                                            state.venue):
        return Skipped(Skip.NOT_THIS_MARKET)
    if _paid(funding.identifier, position, documents.history):
        return Skipped(Skip.ALREADY_APPLIED)
    request = position["details"].get("closeRequest")
    requested_at = request.get("at") if isinstance(request, Mapping) else None
    if not held_through(position.get("openedAt"), requested_at, funding.time):
        return Skipped(Skip.NOT_OPEN_AT_FUNDING_TIME)
    balance = account_balance(documents.user)
    due = funding_payment(state.position_type, state.size, funding.mark_price, funding.rate)
    charge = charge_funding(due, balance, state.margin)
    if charge.liquidates:
        return _liquidate(tx, documents, state, balance, charge, funding, config)
    total = state.funding + charge.amount
    fields: dict[str, Any] = {"funding": contract.position_funding_fields(
        position, funding, total, state.funding_from_margin + charge.from_margin)}
    if charge.from_margin > ZERO:
        fields["margin"] = to_firestore(state.margin - charge.from_margin)
        moved = liquidation_after_margin_call(state, charge.from_margin)
        if moved is not None:
            fields["liquidationPrice"] = to_firestore_price(moved)
    tx.update(documents.position_path, fields)
    tx.update(documents.user_path, balance_fields(balance + charge.balance_change))
    journal.record(tx, documents.uid, ledger.funding_entry(
        funding.identifier, documents.position_id, state.symbol, charge,
        balance + charge.balance_change, SERVER_TIME))
    record = {"funding": to_firestore(total),
              "fundingPayments": [*payments_of(documents.history),
                                  payment_document(funding, charge)]}
    if documents.history is None:
        tx.set(documents.history_path, {**_history_of(state, documents), **record})
    else:
        tx.update(documents.history_path, record)
    return FundingApplied(charge.amount)


def _history_of(state: PositionState, documents: _Documents) -> dict[str, Any]:
    """Return the open history record of a position that has none (written before records)."""
    assert documents.position is not None
    opened_at = documents.position.get("openedAt") or SERVER_TIME
    return history_open_document(state, documents.position_id, opened_at)


def _liquidate(tx: Transaction, documents: _Documents, state: PositionState, balance: Decimal,
               charge: FundingCharge, funding: FundingEvent, config: TradingConfig
               ) -> FundingApplied:
    """Close a position whose margin the payment used up, at the funding's mark price."""
    charge, settlement = funding_liquidation(state, charge, funding.mark_price, config)
    request = CloseRequest(reason=CloseReason.LIQUIDATION, price=funding.mark_price,
                           source="funding", detail=LIQUIDATED_BY_FUNDING)
    record = {
        **history_close_fields(settlement, request, SERVER_TIME),
        # The position ended at the funding time: later events do not concern it.
        "closeRequestedAt": funding.time,
        "funding": to_firestore(state.funding + charge.amount),
        "fundingPayments": [*payments_of(documents.history), payment_document(funding, charge)],
    }
    if documents.history is None:
        record = {**_history_of(state, documents), **record}
    tx.set(documents.history_path, record, merge=True)
    tx.update(documents.user_path, {
        **balance_fields(balance + charge.balance_change + settlement.credit),
        **position_count_after_close(documents.user)})
    # Two entries of one transaction: the payment, then the close's credit.
    journal.record(tx, documents.uid, ledger.funding_entry(
        funding.identifier, documents.position_id, state.symbol, charge,
        balance + charge.balance_change, SERVER_TIME))
    journal.record(tx, documents.uid, ledger.close_entry(
        documents.position_id, state.symbol, settlement, state.funding + charge.amount,
        str(request.reason), balance + charge.balance_change + settlement.credit, SERVER_TIME))
    tx.delete(documents.position_path)
    log.warning("funding used up a position's margin: liquidated",
                extra={"uid": documents.uid, "positionId": documents.position_id,
                       "event": funding.identifier, "shortfall": str(charge.shortfall)})
    return FundingApplied(charge.amount)


def _charge_settled(tx: Transaction, documents: _Documents, funding: FundingEvent
                    ) -> PositionFunding:
    """Charge a position settled before the funding reached it, through its history record.

    Its margin is back in the balance, so the balance pays as far as it
    reaches and the rest is written off; the record's pnl takes the payment in.
    """
    history = documents.history
    assert history is not None
    if history.get("symbolType") != SymbolType.FUTURES or not funding.concerns(
            history.get("symbol"), history.get("venue")):
        return Skipped(Skip.NOT_THIS_MARKET)
    if _paid(funding.identifier, None, history):
        return Skipped(Skip.ALREADY_APPLIED)
    # Records settled before `closeRequestedAt` was kept: their settlement time bounds it.
    requested_at = history.get("closeRequestedAt") or history.get("closedAt")
    if not held_through(history.get("openedAt"), requested_at, funding.time):
        return Skipped(Skip.NOT_OPEN_AT_FUNDING_TIME)
    try:
        record = parse_settled_record(history)
    except Rejected as rejection:
        return FundingRejected(rejection.reason)
    balance = account_balance(documents.user)
    due = funding_payment(record.position_type, record.size, funding.mark_price, funding.rate)
    charge = charge_funding(due, balance, None)
    pnl = record.pnl + charge.amount
    tx.update(documents.user_path, balance_fields(balance + charge.balance_change))
    journal.record(tx, documents.uid, ledger.funding_entry(
        funding.identifier, documents.position_id, str(history.get("symbol")), charge,
        balance + charge.balance_change, SERVER_TIME))
    tx.update(documents.history_path, {
        "funding": to_firestore(record.funding + charge.amount),
        "fundingPayments": [*payments_of(history), payment_document(funding, charge)],
        "pnl": to_firestore(pnl),
        "pnlPercent": to_firestore(pnl_percent(pnl, record.margin + record.open_fee),
                                   PERCENT_PLACES),
    })
    return FundingApplied(charge.amount)


def _owner(path: str) -> tuple[str, str]:
    """Return (uid, document id) of `users/{uid}/{collection}/{id}`."""
    parts = path.split("/")
    return parts[1], parts[3]


def apply_event(database: Database, identifier: str
                ) -> FundingEventApplied | FundingLeftPending | Skipped:
    """Apply a pending funding event to every position open at its time; mark it `applied`.

    Positions still open or closing are listed first, then the records
    closed after the funding time: a position settled in between is in the
    second list (and one in both is paid once).
    """
    path = event_path(identifier)
    event = database.read(path)
    if event is None or not contract.is_pending(event):
        return Skipped(Skip.NOT_PENDING)
    funding = parse_event(identifier, event)
    targets: list[str] = []
    if funding is None:
        log.warning("funding event unusable: nothing to apply", extra={"event": identifier})
    else:
        for spec, equals, bound in (
                (queries.POSITIONS_BY_SYMBOL, (funding.symbol, [s.value for s in LIVE]), None),
                (queries.CLOSED_AFTER, (funding.symbol, HistoryStatus.CLOSED.value),
                 funding.time)):
            targets += [found.path for found in database.query(spec, equals, bound)
                        if funding.concerns(found.data.get("symbol"), found.data.get("venue"))]
    config = load_config(database)
    applied, total, failures = 0, Decimal(0), 0
    for target in targets:
        uid, position_id = _owner(target)
        try:
            outcome = apply_to_position(database, uid, position_id, identifier, event, config)
        except Exception:  # one position must not stop the others; the reconciler retries
            failures += 1
            log.exception("funding failed for a position",
                          extra={"path": target, "event": identifier})
            continue
        if isinstance(outcome, FundingApplied):
            applied += 1
            total += outcome.amount
        elif isinstance(outcome, FundingRejected):
            log.warning("funding not applied", extra={"path": target, "reason": outcome.reason})
    _record_run(database, path, applied, total, complete=not failures)
    if failures:
        return FundingLeftPending(failures)
    log.info("funding applied", extra={"event": identifier, "positions": applied})
    return FundingEventApplied(applied)


def _record_run(database: Database, path: str, applied: int, total: Decimal,
                complete: bool) -> None:
    """Add one run's payments to the event's `positions` and `netPaidByTraders`.

    Each payment is made by exactly one run, so the sums stay exact when a
    run is repeated, races another, or left the event `pending` for the
    reconciler; a complete run marks it `applied`.
    """

    def work(tx: Transaction) -> None:
        event = tx.get(path)
        if event is None or not (applied or complete):
            return
        tx.update(path, contract.run_fields(event, applied, total, complete, SERVER_TIME))

    database.run(work)
