"""Turn watched Firestore documents into what the index arms, or a rejection."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cogmora_core.contract.positions import PositionStatus, parse_position
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.model import Condition
from worker.book import POSITION, TRIGGER, Armed


def owner_of(path: str) -> tuple[str, str]:
    """Return (uid, document id) of `users/{uid}/{collection}/{id}`."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "users":
        raise ValueError(f"not a user sub-document: {path}")
    return parts[1], parts[3]


def armed_trigger(path: str, data: Mapping[str, Any], seen: datetime | None = None) -> Armed:
    """Return the armed form of an active trigger, or raise `Rejected`.

    `seen` is the update time of the version `data` is (see `Armed.seen`).
    """
    owner_of(path)  # raises for a path outside users/{uid}/{collection}/{id}
    order = parse_trigger(data)
    return Armed(
        path=path, kind=TRIGGER, symbol=order.symbol,
        symbol_type=str(order.symbol_type), venue=order.venue, trigger=order.level,
        immediate=order.condition is Condition.MARKET, seen=seen,
    )


def armed_position(path: str, data: Mapping[str, Any],
                   seen: datetime | None = None) -> Armed | None:
    """Return the armed form of a position, None when nothing is left to watch.

    An `open` position is watched at its levels; a `closing` one without a
    price waits for the next fresh price (a manual close); a priced one is the
    functions' to settle. Raises `Rejected` for a position it cannot evaluate.
    """
    owner_of(path)  # raises for a path outside users/{uid}/{collection}/{id}
    state = parse_position(data)
    manual = state.status == PositionStatus.CLOSING
    if manual and state.close_request is not None and state.close_request.price is not None:
        return None
    if not manual and not (state.stop_loss or state.take_profit or state.liquidation_price
                          or state.trailing_stop):
        return None
    return Armed(
        path=path, kind=POSITION, symbol=state.symbol,
        symbol_type=str(state.symbol_type), venue=state.venue, position=state.levels,
        immediate=manual, seen=seen,
    )
