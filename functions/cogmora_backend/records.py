"""Documents the backend writes, built from the core's decisions.

This is the one place where Decimal values become Firestore numbers, each
rounded once to its written precision.
"""

from __future__ import annotations

from typing import Any

from cogmora_core.model import (
    CloseReason,
    CloseRequest,
    OpenedPosition,
    PositionState,
    Settlement,
    TrailingStop,
)
from cogmora_core.money import PERCENT_PLACES, to_firestore, to_firestore_price


def position_document(opened: OpenedPosition, position_id: str, opened_at: Any) -> dict[str, Any]:
    """Return the `openPositions/{id}` document of a newly opened position."""
    details: dict[str, Any] = {"status": "open"}
    if opened.stop_loss is not None:
        details["stopLoss"] = to_firestore_price(opened.stop_loss)
    if opened.take_profit is not None:
        details["takeProfit"] = to_firestore_price(opened.take_profit)
    if opened.trailing_stop is not None:
        details["trailingStop"] = trailing_document(opened.trailing_stop)
    document: dict[str, Any] = {
        "symbol": opened.symbol,
        "symbolType": str(opened.symbol_type),
        "positionType": str(opened.position_type),
        "size": to_firestore(opened.size),
        "averageEntryPrice": to_firestore_price(opened.entry_price),
        "leverage": opened.leverage,
        "margin": to_firestore(opened.margin),
        "openFee": to_firestore(opened.open_fee),
        "openedAt": opened_at,
        "sourceTriggerId": position_id,
        "venue": opened.venue,
        "details": details,
    }
    if opened.liquidation_price is not None:
        document["liquidationPrice"] = to_firestore_price(opened.liquidation_price)
    return document


def trailing_document(trailing: TrailingStop) -> dict[str, Any]:
    """Return the `trailingStop` map of a trigger or a position's details."""
    fields = {"distance": trailing.distance, "percent": trailing.percent,
              "activationPrice": trailing.activation_price}
    return {name: (to_firestore(value) if name == "percent" else to_firestore_price(value))
            for name, value in fields.items() if value is not None}


def history_open_document(
    opened: OpenedPosition | PositionState, position_id: str, opened_at: Any
) -> dict[str, Any]:
    """Return the `tradeHistory/{id}` record of a position, status `open`."""
    return {
        "positionId": position_id,
        "symbol": opened.symbol,
        "symbolType": str(opened.symbol_type),
        "positionType": str(opened.position_type),
        "size": to_firestore(opened.size),
        "entryPrice": to_firestore_price(opened.entry_price),
        "leverage": opened.leverage,
        "margin": to_firestore(opened.margin),
        "openFee": to_firestore(opened.open_fee),
        "openedAt": opened_at,
        "venue": opened.venue,
        "status": "open",
    }


def history_close_fields(
    settlement: Settlement, request: CloseRequest, closed_at: Any
) -> dict[str, Any]:
    """Return the fields that complete a `tradeHistory` record at settlement."""
    reason: CloseReason = request.reason
    fields: dict[str, Any] = {"closeDetail": request.detail} if request.detail else {}
    if request.origin:  # e.g. `gap_recovery`: priced from the exchange's candles
        fields["closeOrigin"] = request.origin
    return fields | {
        "status": "closed",
        "closePrice": to_firestore_price(settlement.close_price),
        "closeFee": to_firestore(settlement.close_fee),
        "closedAt": closed_at,
        "closeReason": str(reason),
        "pnl": to_firestore(settlement.pnl),
        "pnlPercent": to_firestore(settlement.pnl_percent, PERCENT_PLACES),
        "credit": to_firestore(settlement.credit),
    }
