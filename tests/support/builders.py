"""Builders of test documents, shared by every test module."""

from __future__ import annotations

from typing import Any


def execution_doc(**overrides: Any) -> dict[str, Any]:
    """Return a valid pending futures execution (10x long XBTUSDTM, 100 USDT at 60,000)."""
    doc: dict[str, Any] = {
        "triggerId": "t1",
        "symbol": "XBTUSDTM",
        "symbolType": "futures",
        "action": "long",
        "amount": 100,
        "leverage": 10,
        "condition": "below",
        "targetPrice": 60000,
        "executedPrice": 60000,
        "status": "pending",
    }
    doc.update(overrides)
    return {key: value for key, value in doc.items() if value is not _DROP}


def spot_execution_doc(**overrides: Any) -> dict[str, Any]:
    """Return a valid pending spot execution (buy 1,000 USDT of BTC-USDT at 50,000)."""
    base = {
        "symbol": "BTC-USDT",
        "symbolType": "spot",
        "action": "buy",
        "amount": 1000,
        "leverage": DROP,
        "condition": "above",
        "targetPrice": 49000,
        "executedPrice": 50000,
    }
    base.update(overrides)
    return execution_doc(**base)


def trigger_doc(**overrides: Any) -> dict[str, Any]:
    """Return a valid active trigger (3x long XBTUSDTM below 60,000)."""
    doc: dict[str, Any] = {
        "symbol": "XBTUSDTM",
        "symbolType": "futures",
        "condition": "below",
        "targetPrice": 60000,
        "action": "long",
        "amount": 100,
        "leverage": 3,
        "details": {"status": "active"},
    }
    doc.update(overrides)
    return {key: value for key, value in doc.items() if value is not _DROP}


def position_doc(**overrides: Any) -> dict[str, Any]:
    """Return an open 10x long SOLUSDTM position: 500 USDT margin at 100, size 50."""
    doc: dict[str, Any] = {
        "symbol": "SOLUSDTM",
        "symbolType": "futures",
        "positionType": "long",
        "size": 50,
        "averageEntryPrice": 100,
        "leverage": 10,
        "margin": 500,
        "openFee": 3,
        "liquidationPrice": 90.5,
        "sourceTriggerId": "t1",
        "details": {"status": "open"},
    }
    details = overrides.pop("details", None)
    doc.update(overrides)
    if details is not None:
        doc["details"] = details
    return {key: value for key, value in doc.items() if value is not _DROP}


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


_DROP = _Drop()
#: Pass as a value to remove that field from the built document.
DROP: Any = _DROP
