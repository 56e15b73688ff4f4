"""Marks: the worker's writes that tell the functions something must execute.

Each mark is one transaction that re-reads the document and writes only if
the document is still in the state the mark expects, so a level that stays
crossed, a retried mark, or two workers racing mark exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cogmora_backend import paths
from cogmora_backend.settlement import Outcome
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_core.model import CloseReason
from cogmora_core.money import to_firestore


def mark_close(
    database: Database,
    uid: str,
    position_id: str,
    reason: CloseReason,
    price: Decimal,
    source: str,
    at: Any = SERVER_TIME,
) -> Outcome:
    """Mark a position `closing` with `details.closeRequest` {reason, price, at, source}.

    Marks an `open` position, or prices a manual close (`closing` without a
    price) when `reason` is `manual`. Anything else is left alone.
    """
    path = paths.position(uid, position_id)

    def work(tx: Transaction) -> Outcome:
        position = tx.get(path)
        details = position.get("details") if position else None
        if not isinstance(details, Mapping):
            return Outcome("skipped", "no position")
        status = details.get("status")
        request = details.get("closeRequest")
        unpriced = not isinstance(request, Mapping) or request.get("price") is None
        if not (
            status == "open" or (status == "closing" and unpriced and reason is CloseReason.MANUAL)
        ):
            return Outcome("skipped", f"position is {status}")
        tx.update(
            path,
            {
                "details.status": "closing",
                "details.closeRequest": {
                    "reason": str(reason),
                    "price": to_firestore(price),
                    "at": at,
                    "source": source,
                },
            },
        )
        return Outcome("marked", str(reason))

    return database.run(work)
