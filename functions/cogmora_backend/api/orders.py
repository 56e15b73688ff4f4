"""Request bodies into the `tradeTriggers` documents the app writes (pure, no I/O).

A body is read with every JSON number as an exact `Decimal`, checked with the
core's validation (the same checks as the security rules), and turned into
the document the rules accept: the fields the app may write, numbers as
Firestore numbers (whole numbers as integers), `details: {status: 'active'}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cogmora_backend.api.errors import ApiError, Code
from cogmora_core.contract import triggers
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.errors import ContractViolation, Reason, Rejected
from cogmora_core.markets import listed_market
from cogmora_core.model import Condition
from cogmora_core.money import MAX_MAGNITUDE, decimal_places, to_firestore, to_firestore_price

#: Fields of `POST /api/v1/trade/create`: every field the rules let the app write
#: on a trigger, except `details` (the API sets it to `{status: 'active'}`).
TRIGGER_FIELDS = ("symbol", "symbolType", "condition", "targetPrice", "action", "amount",
                  "leverage", "stopLoss", "takeProfit", "venue", "trailingStop")
TRIGGER_REQUIRED = ("symbol", "symbolType", "condition", "targetPrice", "action", "amount")
#: Fields of `POST /api/v1/trade/order` (a market order: no condition, no target).
ORDER_FIELDS = tuple(f for f in TRIGGER_FIELDS if f not in ("condition", "targetPrice"))
ORDER_REQUIRED = ("symbol", "symbolType", "action", "amount")

#: Fields of a trigger's `trailingStop` (exactly one of distance and percent).
TRAILING_FIELDS = ("distance", "percent", "activationPrice")
#: Triggers of `POST /api/v1/trade/oco`: one pair, each cancelling the other.
OCO_SIZE = 2

#: Numeric fields and the reason a bad value of each is rejected with.
NUMERIC_FIELDS = {
    "targetPrice": Reason.INVALID_TARGET_PRICE,
    "amount": Reason.INVALID_AMOUNT,
    "leverage": Reason.INVALID_LEVERAGE,
    "stopLoss": Reason.INVALID_STOP_LOSS,
    "takeProfit": Reason.INVALID_TAKE_PROFIT,
}
#: The field each core rejection reason is about (for the error's `field`).
_REASON_FIELDS = {
    Reason.UNKNOWN_SYMBOL_TYPE: "symbolType",
    Reason.INVALID_SYMBOL: "symbol",
    Reason.INVALID_VENUE: "venue",
    Reason.INVALID_ACTION: "action",
    Reason.INVALID_CONDITION: "condition",
    Reason.INVALID_TRAILING_STOP: "trailingStop",
    **{reason: name for name, reason in NUMERIC_FIELDS.items()},
}
#: Decimal places an amount (or a trailing percent) may have: documents hold 8 (DESIGN.md §2).
MAX_PLACES = 8
#: Decimal places a price may have: 12 (DESIGN.md §2; PEPE trades in 1e-9 steps).
PRICE_MAX_PLACES = 12
#: Significant digits a Firestore number (an IEEE double) keeps exactly, whatever they are.
MAX_DIGITS = 15
#: Integer digits of any number: below 10^12 (`MAX_MAGNITUDE`).
MAX_INTEGER_DIGITS = 12
#: The largest trailing-stop percent (the core's and the rules' cap).
MAX_TRAILING_PERCENT = 50


def _fraction(places: int) -> str:
    """Return the alternatives of a fraction `0.xxx` above zero with at most `places` digits."""
    return "|".join(f"0\\.{'0' * zeros}[1-9][0-9]{{0,{places - 1 - zeros}}}"
                    for zeros in range(places))


def _decimal_pattern(places: int) -> str:
    """Return the pattern of a positive decimal string below 10^12.

    At most `places` decimals and `MAX_DIGITS` digits from the first nonzero
    one: every such decimal is a Firestore number exactly. No sign, exponent,
    leading zero, or lone point. docs/openapi.yaml holds the same patterns.
    """
    whole = MAX_DIGITS - places  # integer digits that still leave room for every decimal
    alternatives = [f"[1-9][0-9]{{0,{whole - 1}}}(\\.[0-9]{{1,{places}}})?"]
    for digits in range(whole + 1, MAX_INTEGER_DIGITS + 1):
        alternatives.append(f"[1-9][0-9]{{{digits - 1}}}(\\.[0-9]{{1,{MAX_DIGITS - digits}}})?")
    alternatives.append(_fraction(places))
    return f"^({'|'.join(alternatives)})$"


#: Decimal strings the API reads, by kind of number (the patterns of docs/openapi.yaml).
AMOUNT_PATTERN = re.compile(_decimal_pattern(MAX_PLACES))
PRICE_PATTERN = re.compile(_decimal_pattern(PRICE_MAX_PLACES))
PERCENT_PATTERN = re.compile(
    f"^(([1-9]|[1-4][0-9])(\\.[0-9]{{1,{MAX_PLACES}}})?|50(\\.0{{1,{MAX_PLACES}}})?|"
    f"{_fraction(MAX_PLACES)})$")
LEVERAGE_PATTERN = re.compile("^([1-9]|[1-9][0-9]|100)$")
_EIGHT_PLACE_FIELDS = ("amount", "trailingStop.percent")
_STRING_PATTERNS = {"amount": AMOUNT_PATTERN, "trailingStop.percent": PERCENT_PATTERN,
                    "leverage": LEVERAGE_PATTERN}


def load_json(raw: bytes) -> object:
    """Return the JSON value of a body, numbers as exact `Decimal`/`int`, or raise `ApiError`.

    NaN and the infinities, which Python's json accepts, are refused.
    """

    def refuse_constant(name: str) -> object:
        raise ValueError(f"{name} is not a number")

    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_float=Decimal, parse_constant=refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(400, Code.INVALID_JSON, f"the body is not valid JSON: {error}") from None


def _number(name: str, value: object, reason: str | None = None) -> Decimal:
    """Return a body's number (a JSON number or a decimal string) exactly, or raise.

    A decimal string must match its documented pattern. A JSON number is read
    from its text: below 10^12 in size, with at most 8 decimals (amounts,
    percents) or 12 (prices), and, with a fraction, exactly the decimal a
    double holds (the shortest form, which JSON writers print; any number of
    at most 15 significant digits is). Signs and ranges are the core's to check.
    """
    reason = reason or NUMERIC_FIELDS[name]
    if isinstance(value, bool):
        raise ApiError(400, reason, f"{name} must be a number, not a boolean", name)
    if isinstance(value, str):
        pattern = _STRING_PATTERNS.get(name, PRICE_PATTERN)
        if not pattern.fullmatch(value):
            raise ApiError(400, reason, f"{name} {value[:40]!r} is not a decimal string the API "
                           f"reads (pattern {pattern.pattern})", name)
        return Decimal(value)
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    else:
        raise ApiError(400, reason, f"{name} must be a number or a decimal string", name)
    if abs(number) >= MAX_MAGNITUDE:
        raise ApiError(400, reason, f"{name} must be below {MAX_MAGNITUDE}", name)
    places = MAX_PLACES if name in _EIGHT_PLACE_FIELDS else PRICE_MAX_PLACES
    if decimal_places(number) > places:
        raise ApiError(400, reason, f"{name} {number} has more than {places} decimals", name)
    if number != number.to_integral_value() and Decimal(repr(float(number))) != number:
        raise ApiError(400, reason, f"{name} {number} is not a number a Firestore number (a "
                       "double) holds exactly; send at most 15 significant digits", name)
    return number


def _check_fields(body: object, allowed: tuple[str, ...], required: tuple[str, ...]
                  ) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, Code.INVALID_BODY, "the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(400, Code.UNKNOWN_FIELDS,
                       f"unknown fields: {', '.join(unknown)}; allowed: {', '.join(allowed)}",
                       unknown[0])
    for name in required:
        if body.get(name) is None:
            raise ApiError(400, Code.MISSING_FIELD, f"{name} is required", name)
    # null means absent, as for the app's optional levels.
    return {name: value for name, value in body.items() if value is not None}


def trigger_document(body: object, market: bool) -> dict[str, Any]:
    """Return the `tradeTriggers` document a create (or market order) body asks for.

    Raise `ApiError` (400) with a stable code when the body is not one the
    security rules would let the app write, or names an unlisted market.
    """
    if market:
        data = _check_fields(body, ORDER_FIELDS, ORDER_REQUIRED)
        data["condition"] = str(Condition.MARKET)
    else:
        data = _check_fields(body, TRIGGER_FIELDS, TRIGGER_REQUIRED)
        if data.get("condition") == Condition.MARKET:
            raise ApiError(400, Reason.INVALID_CONDITION,
                           "condition is 'above' or 'below'; send a market order to "
                           "POST /api/v1/trade/order", "condition")
    numbers = {name: _number(name, data[name]) for name in NUMERIC_FIELDS if name in data}
    trailing = _trailing_stop(data["trailingStop"]) if "trailingStop" in data else None
    candidate = triggers.trigger_document({**data, **numbers})
    if trailing is not None:
        candidate["trailingStop"] = trailing
    try:
        order = parse_trigger(candidate)
    except Rejected as rejected:
        raise ApiError(400, rejected.reason, rejected.detail or rejected.reason,
                       _REASON_FIELDS.get(rejected.reason)) from None
    if listed_market(order.symbol, order.symbol_type, order.venue) is None:
        raise ApiError(400, Code.UNSUPPORTED_SYMBOL,
                       f"{order.symbol} ({order.symbol_type}) is not listed on {order.venue}; "
                       "see GET /api/v1/account/assets", "symbol")
    document: dict[str, Any] = {}
    for name in ("symbol", "symbolType", "condition", "targetPrice", "action", "amount",
                 "leverage", "stopLoss", "takeProfit", "venue", "trailingStop"):
        if name not in data:
            continue
        if name == "trailingStop" and trailing is not None:
            document[name] = {k: to_firestore(v) if k == "percent" else to_firestore_price(v)
                              for k, v in trailing.items()}
        elif name == "leverage":
            document[name] = int(numbers[name])
        elif name == "amount":
            document[name] = to_firestore(numbers[name])
        elif name in numbers:
            document[name] = to_firestore_price(numbers[name])
        else:
            document[name] = data[name]
    document = triggers.trigger_document(document)
    if parse_trigger(document) != order:  # what is written is exactly what was checked
        raise ContractViolation(f"trigger document {document} differs from {order}")
    return document


def _trailing_stop(value: object) -> dict[str, Decimal]:
    """Return a body's `trailingStop` as exact numbers (the core checks the rest)."""
    reason = Reason.INVALID_TRAILING_STOP
    if not isinstance(value, dict):
        raise ApiError(400, reason, "trailingStop must be an object with distance or percent "
                       "and, optionally, activationPrice", "trailingStop")
    unknown = sorted(set(value) - set(TRAILING_FIELDS))
    if unknown:
        raise ApiError(400, reason, f"trailingStop has unknown fields: {', '.join(unknown)}; "
                       f"allowed: {', '.join(TRAILING_FIELDS)}", "trailingStop")
    return {name: _number(f"trailingStop.{name}", raw, reason)
            for name, raw in value.items() if raw is not None}


def oco_documents(body: object, ids: tuple[str, str]) -> list[dict[str, Any]]:
    """Return the two `tradeTriggers` documents of a one-cancels-other pair, linked.

    Each trigger is checked as by `POST /api/v1/trade/create`; an error names
    the trigger it is about (`triggers[1].stopLoss`). The first document gets
    id `ids[0]`, the second `ids[1]`, and each names the other in `ocoTriggerId`.
    """
    data = _check_fields(body, ("triggers",), ("triggers",))
    triggers = data["triggers"]
    if not isinstance(triggers, list) or len(triggers) != OCO_SIZE:
        raise ApiError(400, Code.INVALID_BODY,
                       f"triggers must be a list of {OCO_SIZE} triggers", "triggers")
    documents = []
    for index, (item, partner) in enumerate(zip(triggers, reversed(ids), strict=True)):
        try:
            document = trigger_document(item, market=False)
        except ApiError as error:
            where = f"triggers[{index}]"
            raise ApiError(error.status, error.code, f"{where}: {error.message}",
                           f"{where}.{error.field}" if error.field else where) from None
        document["ocoTriggerId"] = partner
        parse_trigger(document)  # the link is a valid trigger id
        documents.append(document)
    return documents


def check_document_id(value: object) -> str | None:
    """Return `value` when it can name a document of a collection, else None.

    Firestore ids hold no `/`, are not `.` or `..`, nor `__…__`, and take at
    most 1,500 bytes.
    """
    if not isinstance(value, str) or not value or "/" in value or value in (".", ".."):
        return None
    if len(value.encode()) > 1500 or (value.startswith("__") and value.endswith("__")):
        return None
    return value


def as_mapping(value: object) -> Mapping[str, Any]:
    """Return a body that must be a JSON object, or raise `ApiError`."""
    if not isinstance(value, dict):
        raise ApiError(400, Code.INVALID_BODY, "the body must be a JSON object")
    return value
