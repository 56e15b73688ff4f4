"""Documents into JSON answers: money as exact decimal strings, times as RFC 3339.

Every number of a document is answered as a decimal string (`"250.5"`,
`"0.00012345"`): read exactly from the Firestore number (through its shortest
repr) and never through a binary float on the client's side. `leverage`, a
whole number, stays a JSON integer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cogmora_core.markets import MARKETS
from cogmora_core.model import SymbolType
from cogmora_core.money import parse_number
from cogmora_core.validation import MAX_LEVERAGE
from cogmora_core.venues import DEFAULT_VENUE, VENUES

#: Fields answered as JSON integers rather than decimal strings.
INTEGER_FIELDS = frozenset({"leverage"})


def decimal_string(value: Decimal) -> str:
    """Return `value` in plain notation (no exponent), as written."""
    return "0" if value.is_zero() else format(value, "f")


def to_json(value: Any, key: str | None = None) -> Any:
    """Return a document value as JSON: numbers as decimal strings, times as RFC 3339."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | Decimal):
        number = parse_number(value)
        if number is None:  # NaN or an infinity slipped past the rules: say so, do not guess
            return None
        if key in INTEGER_FIELDS and number == number.to_integral_value():
            return int(number)
        return decimal_string(number)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): to_json(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item, key) for item in value]
    return str(value)  # e.g. a GeoPoint or a reference: nothing the contract writes


def document_view(doc_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a document as JSON with its id first."""
    return {"id": doc_id, **to_json(data)}


def assets_view() -> dict[str, Any]:
    """Return the listed markets and the rules every order is checked with."""
    return {
        "quoteCurrency": "USDT",
        "venues": sorted(VENUES),
        "defaultVenue": str(DEFAULT_VENUE),
        "symbolTypes": {
            "spot": {"actions": ["buy"], "leverage": {"min": 1, "max": 1},
                     **_patterns(SymbolType.SPOT)},
            "futures": {"actions": ["long", "short"],
                        "leverage": {"min": 1, "max": MAX_LEVERAGE},
                        **_patterns(SymbolType.FUTURES)},
        },
        "conditions": ["above", "below", "market"],
        "amount": {"min": "0", "minExclusive": True, "max": "1000000000000",
                   "maxExclusive": True, "maxDecimals": 8},
        "markets": [
            {"symbol": m.symbol, "symbolType": str(m.symbol_type), "base": m.base,
             "quote": m.quote, "venue": m.venue}
            for m in MARKETS
        ],
    }


def _patterns(symbol_type: SymbolType) -> dict[str, Any]:
    """Return the symbol pattern of the default venue and those of every venue."""
    by_venue = {str(venue): VENUES[venue].symbols[symbol_type].pattern.pattern
                for venue in sorted(VENUES)}
    return {"symbolPattern": by_venue[DEFAULT_VENUE], "symbolPatterns": by_venue}
