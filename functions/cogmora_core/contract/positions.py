"""`users/{uid}/openPositions/{positionId}`: a position the backend opened (DESIGN.md §2).

`details.status` moves `open` → `closing` → settled (the document is
deleted). The user asks for a manual close by setting `closing` without a
price; the worker writes `details.closeRequest` {reason, price, at, source}
with the fill price, which the functions settle.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora_core.contract.common import details_status, trailing_document
from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import (
    CloseReason,
    CloseRequest,
    OpenedPosition,
    PositionLevels,
    PositionState,
    PositionType,
    SymbolType,
)
from cogmora_core.money import (
    MAX_MAGNITUDE,
    ZERO,
    parse_number,
    to_firestore,
    to_firestore_price,
)
from cogmora_core.trading import trailing_stop_price
from cogmora_core.validation import (
    enum_member,
    optional_positive,
    parse_leverage,
    parse_symbol,
    parse_trailing_stop,
    positive,
)

COLLECTION = "openPositions"


class PositionStatus(StrEnum):
    """`details.status` of a position."""

    OPEN = "open"
    CLOSING = "closing"


#: The statuses of a position that is still held (what the worker watches).
LIVE = (PositionStatus.OPEN, PositionStatus.CLOSING)


def is_live(document: Mapping[str, Any] | None) -> bool:
    """Return whether a position document is `open` or `closing`."""
    return details_status(document) in LIVE


def is_priced_close(position: Mapping[str, Any] | None) -> bool:
    """Return whether a position document is `closing` with a fill price (ready to settle)."""
    if not isinstance(position, Mapping):
        return False
    details = position.get("details")
    if not isinstance(details, Mapping) or details.get("status") != PositionStatus.CLOSING:
        return False
    request = details.get("closeRequest")
    return isinstance(request, Mapping) and request.get("price") is not None


def parse_position(data: Mapping[str, object]) -> PositionState:
    """Return the state of an `openPositions` document, or raise `Rejected`."""
    if not isinstance(data, Mapping):
        raise Rejected(Reason.INVALID_DOCUMENT, "document is not a map")
    symbol, symbol_type, venue = parse_symbol(data)
    raw_side = data.get("positionType")
    side = enum_member(PositionType, raw_side)
    if side is None or (symbol_type is SymbolType.SPOT and side is not PositionType.LONG):
        raise Rejected(Reason.INVALID_POSITION_TYPE, f"positionType {raw_side!r}")
    size = positive(data, "size", Reason.INVALID_SIZE)
    entry = positive(data, "averageEntryPrice", Reason.INVALID_PRICE)
    leverage = parse_leverage(data, symbol_type)
    margin = positive(data, "margin", Reason.INVALID_AMOUNT)
    open_fee = parse_number(data.get("openFee", 0))
    if open_fee is None or open_fee < ZERO or open_fee > MAX_MAGNITUDE:
        raise Rejected(Reason.INVALID_AMOUNT, f"openFee {data.get('openFee')!r}")
    liquidation = optional_positive(data, "liquidationPrice", Reason.INVALID_PRICE)
    details = data.get("details")
    if not isinstance(details, Mapping):
        raise Rejected(Reason.INVALID_STATUS, "details is not a map")
    status = details.get("status")
    if status not in LIVE:
        raise Rejected(Reason.INVALID_STATUS, f"details.status {status!r}")
    stop_loss = optional_positive(details, "stopLoss", Reason.INVALID_STOP_LOSS)
    take_profit = optional_positive(details, "takeProfit", Reason.INVALID_TAKE_PROFIT)
    trailing = parse_trailing_stop(details.get("trailingStop"))
    state = data.get("trailing")
    peak = (optional_positive(state, "highWaterMark", Reason.INVALID_TRAILING_STOP)
            if isinstance(state, Mapping) else None)
    funding_state = data.get("funding")
    funding = (parse_number(funding_state.get("total", 0))
               if isinstance(funding_state, Mapping) else ZERO)
    if funding is None or abs(funding) > MAX_MAGNITUDE:
        raise Rejected(Reason.INVALID_AMOUNT, f"funding {funding_state!r}")
    from_margin = (parse_number(funding_state.get("fromMargin", 0))
                   if isinstance(funding_state, Mapping) else ZERO)
    if from_margin is None or from_margin < ZERO or from_margin > MAX_MAGNITUDE:
        raise Rejected(Reason.INVALID_AMOUNT, f"funding {funding_state!r}")
    return PositionState(
        symbol=symbol,
        symbol_type=symbol_type,
        position_type=side,
        size=size,
        entry_price=entry,
        leverage=leverage,
        margin=margin,
        open_fee=open_fee,
        liquidation_price=liquidation,
        stop_loss=stop_loss,
        take_profit=take_profit,
        status=str(status),
        close_request=parse_close_request(details.get("closeRequest")),
        venue=venue,
        trailing_stop=trailing,
        peak=peak,
        funding=funding,
        funding_from_margin=from_margin,
    )


def parse_close_request(raw: object) -> CloseRequest | None:
    """Return a position's `details.closeRequest`, None when absent, or raise `Rejected`."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise Rejected(Reason.INVALID_CLOSE_REQUEST, "closeRequest is not a map")
    reason = raw.get("reason")
    if not isinstance(reason, str) or reason not in set(CloseReason):
        raise Rejected(Reason.INVALID_CLOSE_REQUEST, f"closeRequest.reason {reason!r}")
    price = optional_positive(raw, "price", Reason.INVALID_CLOSE_REQUEST)
    source = raw.get("source")
    detail, origin = raw.get("detail"), raw.get("origin")
    return CloseRequest(
        reason=CloseReason(str(reason)),
        price=price,
        source=source if isinstance(source, str) else None,
        detail=detail if isinstance(detail, str) else None,
        origin=origin if isinstance(origin, str) else None,
    )


def position_document(opened: OpenedPosition, position_id: str, opened_at: Any) -> dict[str, Any]:
    """Return the `openPositions/{id}` document of a newly opened position."""
    details: dict[str, Any] = {"status": PositionStatus.OPEN.value}
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


def closing_fields(request: CloseRequest, at: Any, tick_at: int | None) -> dict[str, Any]:
    """Return the update that marks a position `closing` with its priced close request.

    `request` says why, at what fill price, who priced it (`source`) and,
    when they say more, the detail and where the price came from; `at` is
    the request's time (the server's), `tick_at` the exchange time of the
    tick that priced it.
    """
    if request.price is None:
        raise ValueError("a close request is written with its fill price")
    fields: dict[str, Any] = {"reason": str(request.reason),
                              "price": to_firestore_price(request.price),
                              "at": at, "source": request.source, "tickAt": tick_at}
    if request.detail is not None:
        fields["detail"] = str(request.detail)
    if request.origin is not None:
        fields["origin"] = request.origin
    return {"details.status": PositionStatus.CLOSING.value, "details.closeRequest": fields}


def trailing_state_document(state: PositionState | PositionLevels, peak: Decimal,
                            updated_at: Any, source: str) -> dict[str, Any]:
    """Return a position's `trailing` {highWaterMark, stopPrice, updatedAt, source} at `peak`."""
    assert state.trailing_stop is not None
    stop = trailing_stop_price(state.position_type, state.trailing_stop, peak)
    return {"highWaterMark": to_firestore_price(peak), "stopPrice": to_firestore_price(stop),
            "updatedAt": updated_at, "source": source}
