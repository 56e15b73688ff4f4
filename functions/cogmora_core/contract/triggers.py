"""`users/{uid}/tradeTriggers/{triggerId}`: what the user arms (DESIGN.md §2).

`details.status` moves `active` → executed (the worker deletes the document
as it creates the execution) · `cancelled` (by the user, or by its
one-cancels-other partner) · `rejected` (with `details.error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from cogmora_core.contract.common import details_status
from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import OrderRequest
from cogmora_core.validation import parse_order

COLLECTION = "tradeTriggers"


class TriggerStatus(StrEnum):
    """`details.status` of a trigger."""

    ACTIVE = "active"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


#: `details.cancelReason` of a trigger its OCO partner cancelled by executing.
CANCELLED_BY_OCO = "oco"


def is_active(document: Mapping[str, Any] | None) -> bool:
    """Return whether a trigger document exists and is `active`."""
    return details_status(document) == TriggerStatus.ACTIVE


def parse_trigger(data: Mapping[str, object]) -> OrderRequest:
    """Return the order of an active `tradeTriggers` document, or raise `Rejected`."""
    details = data.get("details")
    if not isinstance(details, Mapping) or details.get("status") != TriggerStatus.ACTIVE:
        raise Rejected(Reason.INVALID_STATUS, "details.status is not 'active'")
    return parse_order(data, check_target_levels=True)


def trigger_document(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new trigger document: `fields` as written, `details: {status: 'active'}`."""
    return {**fields, "details": {"status": TriggerStatus.ACTIVE.value}}


def rejected_fields(reason: str, detail: str) -> dict[str, Any]:
    """Return the update that sets an active trigger `rejected` with `details.error`."""
    return {"details.status": TriggerStatus.REJECTED.value, "details.error": reason,
            "details.errorDetail": detail}


def cancelled_by_partner_fields(partner_id: str) -> dict[str, Any]:
    """Return the update that cancels a trigger whose OCO partner `partner_id` executed."""
    return {"details.status": TriggerStatus.CANCELLED.value, "details.cancelledBy": partner_id,
            "details.cancelReason": CANCELLED_BY_OCO}
