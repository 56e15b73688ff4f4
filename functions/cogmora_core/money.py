"""Exact numbers: reading Firestore numbers into `Decimal` and rounding for writing."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

#: Money and sizes are written with 8 decimal places (DESIGN.md §2).
MONEY_PLACES = Decimal("0.00000001")
#: Prices keep up to 12 decimal places (DESIGN.md §2): low-priced coins such as
#: PEPE trade in 1e-9 steps, which 8 places would move.
PRICE_PLACES = Decimal("0.000000000001")
#: Significant digits an IEEE double (a Firestore number) keeps through a round
#: trip: a decimal with more cannot be written exactly.
EXACT_DIGITS = 15
#: Percentages (pnlPercent) are written with 4 decimal places.
PERCENT_PLACES = Decimal("0.0001")
#: Largest magnitude accepted from a document. A Firestore number is an IEEE
#: double: 15 significant digits survive a round trip, so 8 decimals leave 7
#: integer digits for money that must stay exact to the last decimal.
MAX_MAGNITUDE = Decimal("1000000000000")

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


def quantize(value: Decimal, places: Decimal = MONEY_PLACES) -> Decimal:
    """Round `value` once, half to even, to the places it is written with."""
    return value.quantize(places, rounding=ROUND_HALF_EVEN)


def to_firestore(value: Decimal, places: Decimal = MONEY_PLACES) -> float | int:
    """Return the Firestore number for `value`, rounded to `places`.

    Whole numbers are written as integers so that they stay exact at any size.
    """
    rounded = quantize(value, places)
    if rounded == rounded.to_integral_value():
        return int(rounded)
    return float(rounded)


def to_firestore_price(value: Decimal) -> float | int:
    """Return the Firestore number for a price, rounded to `PRICE_PLACES`."""
    return to_firestore(value, PRICE_PLACES)


def writable_price(value: Decimal) -> bool:
    """Return whether `value` is a price a document can hold exactly and positive.

    It must be positive, below `MAX_MAGNITUDE`, have at most 12 decimal places
    and at most `EXACT_DIGITS` significant digits (what a Firestore number keeps).
    """
    if not value.is_finite() or value <= ZERO or value >= MAX_MAGNITUDE:
        return False
    if decimal_places(value) > 12:
        return False
    return len(value.normalize().as_tuple().digits) <= EXACT_DIGITS


def parse_number(value: object) -> Decimal | None:
    """Return `value` as an exact Decimal, or None when it is not a finite number.

    Firestore numbers arrive as `int` or `float`; a float is read through its
    shortest repr, which is the decimal the writer meant. Booleans, strings,
    NaN and infinities are not numbers here.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    return None


def parse_decimal_string(value: object) -> Decimal | None:
    """Return an exchange's decimal string (e.g. ``"87956.1"``) as a Decimal, or None."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def decimal_places(value: Decimal) -> int:
    """Return how many digits `value` has after the decimal point."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)
