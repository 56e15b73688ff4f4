"""Marks: the worker's writes that tell the functions something must execute.

Each mark is one transaction that re-reads the document and re-checks it
against the tick with the core's rules, and writes only if it still must
execute, so a level that stays crossed, a retried mark, or two workers
racing mark exactly once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cogmora_backend import paths
from cogmora_backend.funding import event_id, event_path
from cogmora_backend.records import trailing_document
from cogmora_backend.settlement import Outcome, is_priced_close
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_core.errors import Rejected
from cogmora_core.model import CloseReason, OrderRequest, PositionState, Tick
from cogmora_core.money import to_firestore, to_firestore_price
from cogmora_core.trading import (
    CloseDetail,
    better_peak,
    close_detail,
    close_fill,
    close_reason,
    open_fill,
    trailing_stop_price,
    trigger_fires,
)
from cogmora_core.validation import parse_position, parse_trigger


def _price(value: Any) -> Any:
    return to_firestore_price(value) if value is not None else None


def execution_document(order: OrderRequest, trigger_id: str, fill: Any, tick: Tick,
                       source: str) -> dict[str, Any]:
    """Return the `executedTriggers/{triggerId}` document of a fired trigger."""
    return {
        "triggerId": trigger_id,
        "symbol": order.symbol,
        "symbolType": str(order.symbol_type),
        "action": str(order.action),
        "amount": to_firestore(order.amount),
        "leverage": order.leverage,
        "stopLoss": _price(order.stop_loss),
        "takeProfit": _price(order.take_profit),
        "condition": str(order.condition),
        "targetPrice": _price(order.target_price),
        "venue": order.venue,
        "trailingStop": (trailing_document(order.trailing_stop)
                         if order.trailing_stop is not None else None),
        "ocoTriggerId": order.oco_trigger_id,
        "executedPrice": to_firestore_price(fill),
        "executedAt": SERVER_TIME,
        "tickAt": tick.time_ms,
        "source": source,
        "status": "pending",
    }


def reject_trigger(database: Database, uid: str, trigger_id: str, reason: str,
                   detail: str) -> Outcome:
    """Set an active trigger that cannot execute to `rejected` with `details.error`."""
    path = paths.trigger(uid, trigger_id)

    def work(tx: Transaction) -> Outcome:
        trigger = tx.get(path)
        details = trigger.get("details") if trigger else None
        if not isinstance(details, Mapping) or details.get("status") != "active":
            return Outcome("skipped", "not active")
        tx.update(path, {"details.status": "rejected", "details.error": reason,
                         "details.errorDetail": detail})
        return Outcome("rejected", reason)

    return database.run(work)


def _active(document: Mapping[str, Any] | None) -> bool:
    details = document.get("details") if document is not None else None
    return isinstance(details, Mapping) and details.get("status") == "active"


def mark_trigger(database: Database, uid: str, trigger_id: str, tick: Tick,
                 source: str, origin: str | None = None) -> Outcome:
    """Execute an active trigger the tick crosses: create its execution, delete it.

    A trigger linked one-cancels-other (`ocoTriggerId`) cancels its partner in
    the same transaction, so of two linked triggers crossed at once exactly one
    executes: the other's transaction re-reads it cancelled and stops.
    """
    path = paths.trigger(uid, trigger_id)
    execution_path = paths.execution(uid, trigger_id)

    def done() -> Outcome | None:  # executed, cancelled or deleted already
        seen = database.read(path)
        if seen is None:
            return Outcome("skipped", "no trigger")
        return None if _active(seen) else Outcome("skipped", "not active")

    def work(tx: Transaction) -> Outcome:
        trigger, executed = tx.get_many([path, execution_path])  # one round trip
        if trigger is None:
            return Outcome("skipped", "no trigger")
        if not _active(trigger):  # cancelled by the user or by its OCO partner
            return Outcome("skipped", "not active")
        try:
            order = parse_trigger(trigger)
        except Rejected as rejection:
            return Outcome("invalid", rejection.reason)
        if executed is not None:
            return Outcome("invalid", "already_executed")
        if order.symbol != tick.symbol or not trigger_fires(
            order.condition, order.target_price, tick.price
        ):
            return Outcome("skipped", "not crossed")
        partner_path = None
        if order.oco_trigger_id is not None and order.oco_trigger_id != trigger_id:
            partner_path = paths.trigger(uid, order.oco_trigger_id)
            if not _active(tx.get(partner_path)):
                partner_path = None
        fill = open_fill(order.position_type, tick)
        execution = execution_document(order, trigger_id, fill, tick, source)
        if origin is not None:
            execution["origin"] = origin
        if partner_path is not None:
            execution["ocoCancelled"] = order.oco_trigger_id
            tx.update(partner_path, {"details.status": "cancelled",
                                     "details.cancelledBy": trigger_id,
                                     "details.cancelReason": "oco"})
        tx.set(execution_path, execution)
        tx.delete(path)
        return Outcome("marked", "trigger")

    return database.run(work, done)


def _read_position(tx: Transaction, path: str) -> PositionState | Outcome:
    """Return the position at `path` read in `tx`, or why there is nothing to mark."""
    position = tx.get(path)
    if position is None:
        return Outcome("skipped", "no position")
    try:
        return parse_position(position)
    except Rejected as rejection:
        return Outcome("invalid", rejection.reason)


def mark_position(database: Database, uid: str, position_id: str, tick: Tick,
                  source: str, peak: Decimal | None = None,
                  origin: str | None = None) -> Outcome:
    """Mark a position `closing` with `details.closeRequest` {reason, price, at, source}.

    An `open` position is marked when the tick crosses its stop-loss,
    take-profit, trailing stop or liquidation price; a `closing` one without
    a price (a manual close) is priced at the tick. Anything else is left
    alone. `peak` is the worker's trailing high-water mark, which may be
    ahead of the persisted one; `origin` says where the price came from
    (`gap_recovery` for a price from candles), recorded on the request.
    """
    path = paths.position(uid, position_id)

    def done() -> Outcome | None:  # settled, or priced by another worker
        seen = database.read(path)
        if seen is None or is_priced_close(seen):
            return Outcome("skipped", "no position" if seen is None else "already priced")
        return None

    def work(tx: Transaction) -> Outcome:
        state = _read_position(tx, path)
        if isinstance(state, Outcome):
            return state
        if state.symbol != tick.symbol:
            return Outcome("skipped", "other symbol")
        if state.trailing_stop is not None:
            state = dataclasses.replace(
                state, peak=better_peak(state.position_type, state.peak, peak))
        detail: CloseDetail | None = None
        if state.status == "open":
            reason = close_reason(state, tick.price)
            if reason is None:
                return Outcome("skipped", "not crossed")
            detail = close_detail(state, tick.price)
        elif state.close_request is None or state.close_request.price is None:
            reason = CloseReason.MANUAL
        else:
            return Outcome("skipped", "already priced")
        fill = close_fill(state.position_type, tick)
        request: dict[str, Any] = {"reason": str(reason), "price": to_firestore_price(fill),
                                   "at": SERVER_TIME, "source": source,
                                   "tickAt": tick.time_ms}
        if detail is not None:
            request["detail"] = str(detail)
        if origin is not None:
            request["origin"] = origin
        fields: dict[str, Any] = {"details.status": "closing", "details.closeRequest": request}
        if detail is not None and state.peak is not None:
            fields["trailing"] = _trailing_state(state, state.peak, source)
        tx.update(path, fields)
        return Outcome("marked", str(detail or reason))

    return database.run(work, done)


def _trailing_state(state: PositionState, peak: Decimal, source: str) -> dict[str, Any]:
    assert state.trailing_stop is not None
    stop = trailing_stop_price(state.position_type, state.trailing_stop, peak)
    return {"highWaterMark": to_firestore_price(peak), "stopPrice": to_firestore_price(stop),
            "updatedAt": SERVER_TIME, "source": source}


def record_peak(database: Database, uid: str, position_id: str, peak: Decimal,
                source: str) -> Outcome:
    """Persist a trailing stop's high-water mark, only ever in the position's favour.

    Writes `trailing` {highWaterMark, stopPrice, updatedAt, source} when `peak`
    is better than the stored one, so a restarted worker (or another instance)
    resumes from it; a stale or lower peak from a racing writer changes nothing.
    """
    path = paths.position(uid, position_id)

    def work(tx: Transaction) -> Outcome:
        state = _read_position(tx, path)
        if isinstance(state, Outcome):
            return state
        if state.status != "open" or state.trailing_stop is None:
            return Outcome("skipped", "no trailing stop")
        best = better_peak(state.position_type, state.peak, peak)
        if best is None or best == state.peak:
            return Outcome("skipped", "not better")
        tx.update(path, {"trailing": _trailing_state(state, best, source)})
        return Outcome("marked", "peak")

    return database.run(work)


def mark_funding(database: Database, venue: str, symbol: str, rate: Decimal,
                 funding_time_ms: int, mark_price: Decimal, source: str) -> Outcome:
    """Create the `fundingEvents` document of one funding settlement, once.

    Its id is the venue, symbol and funding time, so repeated frames
    (`funding.begin` then `funding.end`) and racing workers create it once;
    `applyFunding` settles it.
    """
    identifier = event_id(venue, symbol, funding_time_ms)
    path = event_path(identifier)

    def work(tx: Transaction) -> Outcome:
        if tx.get(path) is not None:
            return Outcome("skipped", "already marked")
        tx.set(path, {"venue": venue, "symbol": symbol, "rate": to_firestore_price(rate),
                      "markPrice": to_firestore_price(mark_price), "fundingTimeMs": funding_time_ms,
                      "status": "pending", "createdAt": SERVER_TIME, "source": source})
        return Outcome("marked", identifier)

    return database.run(work)
