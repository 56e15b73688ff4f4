"""`users/{uid}/executedTriggers/{triggerId}`: a fired trigger (DESIGN.md §2).

The worker creates it `pending` (its id is the trigger's, so a trigger
executes once) and deletes the trigger in the same transaction; settlement
moves it to `filled` with `positionId`, or `rejected` with `error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora_core.contract.common import price_or_none, trailing_document
from cogmora_core.errors import Reason
from cogmora_core.model import OrderRequest, Tick
from cogmora_core.money import to_firestore, to_firestore_price
from cogmora_core.validation import parse_order, positive

COLLECTION = "executedTriggers"


class ExecutionStatus(StrEnum):
    """`status` of an execution."""

    PENDING = "pending"
    FILLED = "filled"
    REJECTED = "rejected"


def is_pending(document: Mapping[str, Any] | None) -> bool:
    """Return whether an execution document exists and waits to be settled."""
    return document is not None and document.get("status") == ExecutionStatus.PENDING


def parse_execution(data: Mapping[str, object]) -> tuple[OrderRequest, Decimal]:
    """Return (order, executedPrice) of an `executedTriggers` document, or raise `Rejected`."""
    order = parse_order(data, check_target_levels=False)
    price = positive(data, "executedPrice", Reason.INVALID_PRICE)
    return order, price


def execution_document(order: OrderRequest, trigger_id: str, fill: Decimal, tick: Tick,
                       source: str, executed_at: Any) -> dict[str, Any]:
    """Return the `pending` execution of a fired trigger, filled at `fill`."""
    return {
        "triggerId": trigger_id,
        "symbol": order.symbol,
        "symbolType": str(order.symbol_type),
        "action": str(order.action),
        "amount": to_firestore(order.amount),
        "leverage": order.leverage,
        "stopLoss": price_or_none(order.stop_loss),
        "takeProfit": price_or_none(order.take_profit),
        "condition": str(order.condition),
        "targetPrice": price_or_none(order.target_price),
        "venue": order.venue,
        "trailingStop": (trailing_document(order.trailing_stop)
                         if order.trailing_stop is not None else None),
        "ocoTriggerId": order.oco_trigger_id,
        "executedPrice": to_firestore_price(fill),
        "executedAt": executed_at,
        "tickAt": tick.time_ms,
        "source": source,
        "status": ExecutionStatus.PENDING.value,
    }


def filled_fields(position_id: str, settled_at: Any) -> dict[str, Any]:
    """Return the update of an execution that opened position `position_id`."""
    return {"status": ExecutionStatus.FILLED.value, "positionId": position_id,
            "settledAt": settled_at}


def rejected_fields(reason: str, detail: str, settled_at: Any) -> dict[str, Any]:
    """Return the update of an execution rejected with `reason` (nothing was debited)."""
    return {"status": ExecutionStatus.REJECTED.value, "error": reason, "errorDetail": detail,
            "settledAt": settled_at}
