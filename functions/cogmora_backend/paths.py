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
