"""Validation of the fields of trigger, execution and position documents into typed values.

The collections' own parsers (`parse_trigger`, `parse_execution`,
`parse_position`) live beside their builders in `cogmora_core.contract`
and read their fields with the functions here.

Every function here takes a document's data as Firestore gives it (a mapping
of plain values) and returns a typed value or raises `Rejected` with one of
the stable reasons of `errors.Reason`. Nothing here trusts the document: it
may have been written by an old app, an admin tool or an attacker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import (
    Action,
    Condition,
    OrderRequest,
    PositionType,
    SymbolType,
    TrailingStop,
)
from cogmora_core.money import MAX_MAGNITUDE, ZERO, decimal_places, parse_number
from cogmora_core.venues import VENUES, venue_of

E = TypeVar("E", bound=StrEnum)
MAX_LEVERAGE = 100
#: A Firestore document id as the app writes them (ids of triggers linked OCO).
DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
TRAILING_KEYS = frozenset({"distance", "percent", "activationPrice"})
MAX_TRAILING_PERCENT = Decimal(50)
#: Amounts are quote money written with 8 decimals; more would be rounded away.
AMOUNT_MAX_PLACES = 8

def _enum(cls: type[E], raw: object) -> E | None:
    """Return `raw` as a member of `cls`, or None (never raises, whatever `raw` is)."""
    if not isinstance(raw, str):
        return None
    try:
        return cls(raw)
    except ValueError:
        return None


_ACTIONS = {
    SymbolType.SPOT: frozenset({Action.BUY}),
    SymbolType.FUTURES: frozenset({Action.LONG, Action.SHORT}),
}


def parse_symbol(data: Mapping[str, object]) -> tuple[str, SymbolType, str]:
    """Return (symbol, symbolType, venue) of a document, checked against each other."""
    raw_type = data.get("symbolType")
    symbol_type = _enum(SymbolType, raw_type)
    if symbol_type is None:
        raise Rejected(Reason.UNKNOWN_SYMBOL_TYPE, f"symbolType {raw_type!r}")
    raw_venue = data.get("venue")
    venue = venue_of(raw_venue)
    if venue is None:
        raise Rejected(Reason.INVALID_VENUE, f"venue {raw_venue!r}")
    symbol = data.get("symbol")
    form = VENUES[venue].symbols[symbol_type]
    if not isinstance(symbol, str) or not form.pattern.match(symbol):
        raise Rejected(Reason.INVALID_SYMBOL,
                       f"{repr(symbol)[:40]} is not a {venue} {symbol_type} symbol ({form.form})")
    return symbol, symbol_type, str(venue)


def _positive(data: Mapping[str, object], name: str, reason: str) -> Decimal:
    value = parse_number(data.get(name))
    if value is None or value <= ZERO or value > MAX_MAGNITUDE:
        raise Rejected(reason, f"{name} {data.get(name)!r} is not a positive number")
    return value


def _optional_positive(data: Mapping[str, object], name: str, reason: str) -> Decimal | None:
    if data.get(name) is None:
        return None
    return _positive(data, name, reason)


def _leverage(data: Mapping[str, object], symbol_type: SymbolType) -> int:
    raw = data.get("leverage")
    if raw is None and symbol_type is SymbolType.SPOT:
        return 1
    value = parse_number(raw)
    if value is None or value != value.to_integral_value():
        raise Rejected(Reason.INVALID_LEVERAGE, f"leverage {raw!r} is not a whole number")
    leverage = int(value)
    top = MAX_LEVERAGE if symbol_type is SymbolType.FUTURES else 1
    if not 1 <= leverage <= top:
        raise Rejected(Reason.INVALID_LEVERAGE, f"leverage {leverage} outside 1..{top}")
    return leverage


def check_levels(
    position_type: PositionType,
    reference: Decimal | None,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
) -> None:
    """Raise `Rejected` unless the stop-loss and take-profit are on the correct side.

    Long: stopLoss < reference < takeProfit; short: the reverse. Without a
    reference (a market order), only the two levels are checked against each other.
    """
    long = position_type is PositionType.LONG
    side = "below" if long else "above"
    other = "above" if long else "below"
    if stop_loss is not None and reference is not None and (
        (stop_loss >= reference) if long else (stop_loss <= reference)
    ):
        raise Rejected(Reason.INVALID_STOP_LOSS, f"stopLoss {stop_loss} must be {side} {reference}")
    if take_profit is not None and reference is not None and (
        (take_profit <= reference) if long else (take_profit >= reference)
    ):
        raise Rejected(
            Reason.INVALID_TAKE_PROFIT, f"takeProfit {take_profit} must be {other} {reference}"
        )
    if stop_loss is not None and take_profit is not None and (
        (stop_loss >= take_profit) if long else (stop_loss <= take_profit)
    ):
        raise Rejected(
            Reason.INVALID_STOP_LOSS,
            f"stopLoss {stop_loss} and takeProfit {take_profit} are inverted",
        )


def parse_trailing_stop(raw: object, reference: Decimal | None = None,
                        position_type: PositionType | None = None) -> TrailingStop | None:
    """Return a trailing stop spec `{distance | percent, activationPrice?}`, or None.

    Exactly one of `distance` (a price offset > 0) and `percent` (0 < p <= 50)
    is set. With a `reference` price (the target, or the entry), the distance
    must be below it for a long (the stop would otherwise start at or below 0).
    """
    if raw is None:
        return None
    reason = Reason.INVALID_TRAILING_STOP
    if not isinstance(raw, Mapping):
        raise Rejected(reason, "trailingStop is not a map")
    unknown = set(raw) - TRAILING_KEYS
    if unknown:
        raise Rejected(reason, f"trailingStop has unknown fields {sorted(map(str, unknown))}")
    distance = _optional_positive(raw, "distance", reason)
    percent = _optional_positive(raw, "percent", reason)
    if (distance is None) == (percent is None):
        raise Rejected(reason, "trailingStop needs exactly one of distance and percent")
    if percent is not None and percent > MAX_TRAILING_PERCENT:
        raise Rejected(reason, f"trailingStop.percent {percent} is above {MAX_TRAILING_PERCENT}")
    activation = _optional_positive(raw, "activationPrice", reason)
    if (distance is not None and reference is not None
            and position_type is PositionType.LONG and distance >= reference):
        raise Rejected(reason, f"trailingStop.distance {distance} is not below {reference}")
    return TrailingStop(distance=distance, percent=percent, activation_price=activation)


def _oco_trigger_id(data: Mapping[str, object]) -> str | None:
    raw = data.get("ocoTriggerId")
    if raw is None:
        return None
    if not isinstance(raw, str) or not DOCUMENT_ID.match(raw):
        raise Rejected(Reason.INVALID_OCO, f"ocoTriggerId {raw!r} is not a trigger id")
    return raw


def parse_order(data: Mapping[str, object], check_target_levels: bool = True) -> OrderRequest:
    """Return the order a trigger or execution document describes, or raise `Rejected`.

    With `check_target_levels`, stop-loss and take-profit must sit on the
    correct side of `targetPrice` (what a user may arm). An execution passes
    False: its levels were checked when armed, and a fill that gapped past a
    level opens the position all the same, to be closed on the next tick, as
    an exchange's bracket order would.
    """
    if not isinstance(data, Mapping):
        raise Rejected(Reason.INVALID_DOCUMENT, "document is not a map")
    symbol, symbol_type, venue = parse_symbol(data)
    raw_action = data.get("action")
    action = _enum(Action, raw_action)
    if action is None or action not in _ACTIONS[symbol_type]:
        raise Rejected(Reason.INVALID_ACTION, f"action {raw_action!r} for {symbol_type}")
    amount = _positive(data, "amount", Reason.INVALID_AMOUNT)
    if decimal_places(amount) > AMOUNT_MAX_PLACES:
        raise Rejected(Reason.INVALID_AMOUNT, f"amount {amount} has more than 8 decimals")
    leverage = _leverage(data, symbol_type)
    raw_condition = data.get("condition")
    condition = _enum(Condition, raw_condition)
    if condition is None:
        raise Rejected(Reason.INVALID_CONDITION, f"condition {raw_condition!r}")
    target: Decimal | None = None
    if condition is Condition.MARKET:
        if data.get("targetPrice") is not None:
            raise Rejected(Reason.INVALID_TARGET_PRICE, "a market order has no targetPrice")
    else:
        target = _positive(data, "targetPrice", Reason.INVALID_TARGET_PRICE)
    stop_loss = _optional_positive(data, "stopLoss", Reason.INVALID_STOP_LOSS)
    take_profit = _optional_positive(data, "takeProfit", Reason.INVALID_TAKE_PROFIT)
    check_levels(
        action.position_type, target if check_target_levels else None, stop_loss, take_profit
    )
    trailing = parse_trailing_stop(data.get("trailingStop"),
                                   target if check_target_levels else None,
                                   action.position_type)
    return OrderRequest(
        symbol=symbol,
        symbol_type=symbol_type,
        action=action,
        amount=amount,
        leverage=leverage,
        condition=condition,
        target_price=target,
        stop_loss=stop_loss,
        take_profit=take_profit,
        venue=venue,
        trailing_stop=trailing,
        oco_trigger_id=_oco_trigger_id(data),
    )


# The field readers the collections' parsers share (`cogmora_core.contract`).
positive = _positive
optional_positive = _optional_positive
parse_leverage = _leverage
enum_member = _enum
