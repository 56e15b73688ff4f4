"""The ledger identity: balance + Σ open (margin + openFee − funding) − Σ closed pnl = start.

An open position's funding total is already in the balance (or, when taken
from the margin, out of `margin`), and not yet in any pnl.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from cogmora_core.money import parse_number


def _number(value: Any) -> Decimal:
    number = parse_number(value)
    assert number is not None, f"not a number: {value!r}"
    return number


def ledger_total(balance: Any, positions: Iterable[Mapping[str, Any]],
                 history: Iterable[Mapping[str, Any]]) -> Decimal:
    """Return what the identity says the account started with (exact)."""
    open_cost = sum((_number(p["margin"]) + _number(p["openFee"])
                     - _number((p.get("funding") or {}).get("total", 0)) for p in positions),
                    Decimal(0))
    closed_pnl = sum((_number(h["pnl"]) for h in history if h.get("status") == "closed"),
                     Decimal(0))
    return _number(balance) + open_cost - closed_pnl
