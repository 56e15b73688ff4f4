"""Document paths of the data contract (DESIGN.md §2)."""

from __future__ import annotations

CONFIG_TRADING = "config/trading"
CONFIG_LIMITS = "config/limits"


def user(uid: str) -> str:
    """Return the path of `users/{uid}`."""
    return f"users/{uid}"


def execution(uid: str, execution_id: str) -> str:
    """Return the path of `users/{uid}/executedTriggers/{id}`."""
    return f"users/{uid}/executedTriggers/{execution_id}"


def position(uid: str, position_id: str) -> str:
    """Return the path of `users/{uid}/openPositions/{id}`."""
    return f"users/{uid}/openPositions/{position_id}"


def history(uid: str, position_id: str) -> str:
    """Return the path of `users/{uid}/tradeHistory/{id}`."""
    return f"users/{uid}/tradeHistory/{position_id}"


def trigger(uid: str, trigger_id: str) -> str:
    """Return the path of `users/{uid}/tradeTriggers/{id}`."""
    return f"users/{uid}/tradeTriggers/{trigger_id}"


def idempotency_key(uid: str, key_hash: str) -> str:
    """Return the path of `users/{uid}/idempotencyKeys/{hash}` (the HTTP API's retries)."""
    return f"users/{uid}/idempotencyKeys/{key_hash}"


def api_usage(uid: str) -> str:
    """Return the path of `users/{uid}/apiUsage/window` (the HTTP API's rate limit)."""
    return f"users/{uid}/apiUsage/window"


def ledger(uid: str, entry_id: str) -> str:
    """Return the path of `users/{uid}/ledger/{entryId}` (the account journal)."""
    return f"users/{uid}/ledger/{entry_id}"


def ledger_collection(uid: str) -> str:
    """Return the path of a user's journal, `users/{uid}/ledger`."""
    return f"users/{uid}/ledger"
