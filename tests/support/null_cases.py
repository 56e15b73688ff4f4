"""Trigger documents with null fields, and what the contract says of each.

The web app writes through the Firebase JS SDK, which writes `null` for a
field a form left empty. The contract (docs/contract.md, "What a client may write"):
null is absent for an optional field (`venue`: KuCoin; spot `leverage`: 1;
`stopLoss`, `takeProfit`, `trailingStop` and a trailing stop's `distance`,
`percent`, `activationPrice`: none), and a required one stays required
(futures `leverage` null is `invalid_leverage`, as absent is). Three places
must agree on it, and each is tested with this one table: the security rules
(`tests/integration/test_rules.py` over REST; `tests/rules-js/` mirrors the
cases through the JS SDK), the core's validation and the HTTP API
(`tests/unit/test_null_fields.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FUTURES: dict[str, Any] = {
    "symbol": "XBTUSDTM", "symbolType": "futures", "condition": "below", "targetPrice": 60000,
    "action": "long", "amount": 100, "leverage": 3, "stopLoss": 58000, "takeProfit": 65000,
    "details": {"status": "active"}}
SPOT: dict[str, Any] = {
    "symbol": "BTC-USDT", "symbolType": "spot", "condition": "above", "targetPrice": 90000,
    "action": "buy", "amount": 250.5, "details": {"status": "active"}}


@dataclass(frozen=True)
class NullCase:
    """A trigger document, and the core's rejection reason for it (None: accepted)."""

    name: str
    document: dict[str, Any] = field(hash=False)
    reason: str | None = None


NULL_CASES = [
    NullCase("futures, venue null", {**FUTURES, "venue": None}),
    NullCase("spot, venue null", {**SPOT, "venue": None}),
    NullCase("spot, leverage null", {**SPOT, "leverage": None}),
    NullCase("spot, leverage 1, venue null", {**SPOT, "leverage": 1, "venue": None}),
    NullCase("spot, every optional field null", {
        **SPOT, "leverage": None, "venue": None, "stopLoss": None, "takeProfit": None,
        "trailingStop": None}),
    NullCase("backpack spot, leverage null", {
        **SPOT, "venue": "backpack", "symbol": "SOL_USDC", "leverage": None}),
    NullCase("trailing distance, percent and activation null", {
        **FUTURES, "trailingStop": {"distance": 500, "percent": None, "activationPrice": None}}),
    NullCase("futures, leverage null", {**FUTURES, "leverage": None}, "invalid_leverage"),
    NullCase("backpack perp symbol, venue null", {
        **FUTURES, "venue": None, "symbol": "SOL_USDC_PERP", "targetPrice": 140,
        "stopLoss": 130, "takeProfit": 160}, "invalid_symbol"),
    NullCase("venue empty", {**FUTURES, "venue": ""}, "invalid_venue"),
    NullCase("trailing stop, both offsets null", {
        **FUTURES, "trailingStop": {"distance": None, "percent": None}}, "invalid_trailing_stop"),
    NullCase("trailing percent 80, distance null", {
        **FUTURES, "trailingStop": {"distance": None, "percent": 80}}, "invalid_trailing_stop"),
]
