"""`users/{uid}/tradeHistory/{positionId}`: one record per position (DESIGN.md §2).

Written `open` with the position, completed `closed` at settlement (or at a
liquidation by funding), and charged any funding paid after it closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import (
    CloseRequest,
    OpenedPosition,
    PositionState,
    PositionType,
    Settlement,
)
from cogmora_core.money import (
    PERCENT_PLACES,
    ZERO,
    parse_number,
    to_firestore,
    to_firestore_price,
)

COLLECTION = "tradeHistory"


class HistoryStatus(StrEnum):
    """`status` of a history record."""

    OPEN = "open"
    CLOSED = "closed"


def is_closed(record: Mapping[str, Any] | None) -> bool:
    """Return whether a history record exists and is `closed` (its position settled)."""
    return record is not None and record.get("status") == HistoryStatus.CLOSED


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
        "status": HistoryStatus.OPEN.value,
    }


def history_close_fields(
    settlement: Settlement, request: CloseRequest, closed_at: Any
) -> dict[str, Any]:
    """Return the fields that complete a `tradeHistory` record at settlement."""
    fields: dict[str, Any] = {"closeDetail": request.detail} if request.detail else {}
    if request.origin:  # e.g. `gap_recovery`: priced from the exchange's candles
        fields["closeOrigin"] = request.origin
    return fields | {
        "status": HistoryStatus.CLOSED.value,
        "closePrice": to_firestore_price(settlement.close_price),
        "closeFee": to_firestore(settlement.close_fee),
        "closedAt": closed_at,
        "closeReason": str(request.reason),
        "pnl": to_firestore(settlement.pnl),
        "pnlPercent": to_firestore(settlement.pnl_percent, PERCENT_PLACES),
        "credit": to_firestore(settlement.credit),
    }


@dataclass(frozen=True, slots=True)
class SettledRecord:
    """What funding reads from a `closed` record: its side, size and results so far."""

    position_type: PositionType
    size: Decimal
    margin: Decimal
    open_fee: Decimal
    pnl: Decimal
    #: Funding paid (negative) or received so far.
    funding: Decimal


def parse_settled_record(record: Mapping[str, Any]) -> SettledRecord:
    """Return the numbers of a closed history record, or raise `Rejected(invalid_document)`."""
    size, pnl = parse_number(record.get("size")), parse_number(record.get("pnl"))
    margin, open_fee = parse_number(record.get("margin")), parse_number(record.get("openFee"))
    total = parse_number(record.get("funding", 0))
    side = record.get("positionType")
    if (size is None or size <= ZERO or pnl is None or margin is None or open_fee is None
            or total is None or not isinstance(side, str) or side not in set(PositionType)):
        raise Rejected(Reason.INVALID_DOCUMENT, "tradeHistory record is not a settled position")
    return SettledRecord(PositionType(side), size, margin, open_fee, pnl, total)
