"""`users/{uid}`: the account (DESIGN.md §2).

`balance` (free quote money) is written only by the backend; a new user
document gets `balance = startingBalance` and `createdAt` once. The backend
also keeps `openPositionCount`, the count of open and closing positions,
in every transaction that creates or deletes one (`maxOpenPositions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cogmora_core.errors import Reason, Rejected, RetryableError
from cogmora_core.money import parse_number, to_firestore

COLLECTION = "users"
#: The user document's count of open (and closing) positions.
POSITION_COUNT = "openPositionCount"


def account_balance(user: Mapping[str, Any] | None) -> Decimal:
    """Return a user document's balance; retryable until the account is funded."""
    if user is None or "balance" not in user:
        raise RetryableError("account not initialized yet")
    balance = parse_number(user["balance"])
    if balance is None:
        raise Rejected(Reason.INVALID_BALANCE, f"balance {user['balance']!r} is not a number")
    return balance


def position_count(user: Mapping[str, Any] | None) -> int | None:
    """Return the user's `openPositionCount`, None while it has not been counted."""
    count = (user or {}).get(POSITION_COUNT)
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    return None


def position_count_after_close(user: Mapping[str, Any] | None) -> dict[str, int]:
    """Return the user field update for one position fewer (none while uncounted)."""
    count = position_count(user)
    return {POSITION_COUNT: max(0, count - 1)} if count is not None else {}


def balance_fields(balance: Decimal) -> dict[str, Any]:
    """Return the update that sets the balance, rounded once."""
    return {"balance": to_firestore(balance)}


def funded_account(starting_balance: Decimal, created_at: Any) -> dict[str, Any]:
    """Return a new user document with the starting balance (the reconciler creates it)."""
    return {"balance": to_firestore(starting_balance), "createdAt": created_at}


def missing_account_fields(user: Mapping[str, Any], starting_balance: Decimal,
                           created_at: Any) -> dict[str, Any]:
    """Return what initialising an account adds: a missing balance and `createdAt` only."""
    fields: dict[str, Any] = {}
    if "balance" not in user:
        fields["balance"] = to_firestore(starting_balance)
    if "createdAt" not in user:
        fields["createdAt"] = created_at
    return fields
