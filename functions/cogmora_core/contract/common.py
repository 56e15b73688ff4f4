"""Field shapes several collections share."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cogmora_core.model import TrailingStop
from cogmora_core.money import to_firestore, to_firestore_price


def price_or_none(value: Decimal | None) -> float | int | None:
    """Return a price as written (12 decimal places), or None."""
    return to_firestore_price(value) if value is not None else None


def trailing_document(trailing: TrailingStop) -> dict[str, Any]:
    """Return the `trailingStop` map of a trigger, an execution or a position's details."""
    fields = {"distance": trailing.distance, "percent": trailing.percent,
              "activationPrice": trailing.activation_price}
    return {name: (to_firestore(value) if name == "percent" else to_firestore_price(value))
            for name, value in fields.items() if value is not None}


def details_status(document: Mapping[str, Any] | None) -> object:
    """Return `details.status` of a document (None when it has no details map)."""
    details = document.get("details") if document is not None else None
    return details.get("status") if isinstance(details, Mapping) else None
