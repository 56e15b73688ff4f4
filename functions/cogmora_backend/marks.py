"""Marks: the worker's writes that tell the functions something must execute.

Each mark is one transaction that re-reads the document and re-checks it
against the tick with the core's rules, and writes only if it still must
execute, so a level that stays crossed, a retried mark, or two workers
racing mark exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cogmora_backend import paths
from cogmora_backend.settlement import Outcome, is_priced_close
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_core.errors import Rejected
from cogmora_core.model import CloseReason, OrderRequest, Tick
from cogmora_core.money import to_firestore
from cogmora_core.trading import close_fill, close_reason, open_fill, trigger_fires
from cogmora_core.validation import parse_position, parse_trigger


def _number(value: Any) -> Any:
    return to_firestore(value) if value is not None else None


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
        "stopLoss": _number(order.stop_loss),
        "takeProfit": _number(order.take_profit),
        "condition": str(order.condition),
        "targetPrice": _number(order.target_price),
        "venue": order.venue,
        "executedPrice": to_firestore(fill),
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


def mark_trigger(database: Database, uid: str, trigger_id: str, tick: Tick,
                 source: str) -> Outcome:
    """Execute an active trigger the tick crosses: create its execution, delete it."""
    path = paths.trigger(uid, trigger_id)
    execution_path = paths.execution(uid, trigger_id)

    def done() -> Outcome | None:  # executed or deleted already
        return Outcome("skipped", "no trigger") if database.read(path) is None else None

    def work(tx: Transaction) -> Outcome:
        trigger, executed = tx.get_many([path, execution_path])  # one round trip
        if trigger is None:
            return Outcome("skipped", "no trigger")
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
        fill = open_fill(order.position_type, tick)
        tx.set(execution_path, execution_document(order, trigger_id, fill, tick, source))
        tx.delete(path)
        return Outcome("marked", "trigger")

    return database.run(work, done)


def mark_position(database: Database, uid: str, position_id: str, tick: Tick,
                  source: str) -> Outcome:
    """Mark a position `closing` with `details.closeRequest` {reason, price, at, source}.

    An `open` position is marked when the tick crosses its stop-loss,
    take-profit or liquidation price; a `closing` one without a price (a
    manual close) is priced at the tick. Anything else is left alone.
    """
    path = paths.position(uid, position_id)

    def done() -> Outcome | None:  # settled, or priced by another worker
        seen = database.read(path)
        if seen is None or is_priced_close(seen):
            return Outcome("skipped", "no position" if seen is None else "already priced")
        return None

    def work(tx: Transaction) -> Outcome:
        position = tx.get(path)
        if position is None:
            return Outcome("skipped", "no position")
        try:
            state = parse_position(position)
        except Rejected as rejection:
            return Outcome("invalid", rejection.reason)
        if state.symbol != tick.symbol:
            return Outcome("skipped", "other symbol")
        if state.status == "open":
            reason = close_reason(state, tick.price)
            if reason is None:
                return Outcome("skipped", "not crossed")
        elif state.close_request is None or state.close_request.price is None:
            reason = CloseReason.MANUAL
        else:
            return Outcome("skipped", "already priced")
        fill = close_fill(state.position_type, tick)
        tx.update(path, {
            "details.status": "closing",
            "details.closeRequest": {"reason": str(reason), "price": to_firestore(fill),
                                     "at": SERVER_TIME, "source": source,
                                     "tickAt": tick.time_ms},
        })
        return Outcome("marked", str(reason))

    return database.run(work, done)
