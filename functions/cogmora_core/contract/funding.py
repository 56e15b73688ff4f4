"""`fundingEvents/{venue}_{symbol}_{fundingTimeMs}`: one funding settlement of a perpetual.

The worker creates it `pending` (once, whatever the number of workers or
repeated frames) with the rate and the mark price at the funding time;
`applyFunding` charges every position it concerns and sets it `applied`
with `positions` and `netPaidByTraders`. Each payment is recorded on the
position (`funding`) and its history record (`fundingPayments`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cogmora_core.model import FundingCharge
from cogmora_core.money import ZERO, parse_number, to_firestore, to_firestore_price
from cogmora_core.venues import DEFAULT_VENUE

COLLECTION = "fundingEvents"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FundingStatus(StrEnum):
    """`status` of a funding event."""

    PENDING = "pending"
    APPLIED = "applied"


def event_id(venue: str, symbol: str, funding_time_ms: int) -> str:
    """Return the id of a funding event: one per venue, symbol and funding time."""
    return f"{venue}_{symbol}_{funding_time_ms}"


@dataclass(frozen=True)
class FundingEvent:
    """A validated `fundingEvents` document."""

    identifier: str
    venue: str
    symbol: str
    rate: Decimal
    mark_price: Decimal
    time_ms: int

    @property
    def time(self) -> datetime:
        """Return the funding time as an exact UTC datetime."""
        return EPOCH + timedelta(milliseconds=self.time_ms)

    def concerns(self, symbol: object, venue: object) -> bool:
        """Return whether a position of `symbol` on `venue` (None: KuCoin) is in this market."""
        return symbol == self.symbol and (venue or DEFAULT_VENUE) == self.venue


def parse_event(identifier: str, event: Mapping[str, Any]) -> FundingEvent | None:
    """Return the funding event of a `fundingEvents` document, or None when it is unusable."""
    rate = parse_number(event.get("rate"))
    mark = parse_number(event.get("markPrice"))
    time_ms = event.get("fundingTimeMs")
    symbol, venue = event.get("symbol"), event.get("venue") or DEFAULT_VENUE
    if (rate is None or mark is None or mark <= ZERO or isinstance(time_ms, bool)
            or not isinstance(time_ms, int) or not isinstance(symbol, str)
            or not isinstance(venue, str)):
        return None
    return FundingEvent(identifier, venue, symbol, rate, mark, time_ms)


def is_pending(event: Mapping[str, Any] | None) -> bool:
    """Return whether a funding event exists and waits to be applied."""
    return event is not None and event.get("status") == FundingStatus.PENDING


def event_document(venue: str, symbol: str, rate: Decimal, mark_price: Decimal,
                   funding_time_ms: int, source: str, created_at: Any) -> dict[str, Any]:
    """Return a new `pending` funding event."""
    return {"venue": venue, "symbol": symbol, "rate": to_firestore_price(rate),
            "markPrice": to_firestore_price(mark_price), "fundingTimeMs": funding_time_ms,
            "status": FundingStatus.PENDING.value, "createdAt": created_at, "source": source}


def run_fields(event: Mapping[str, Any], applied: int, total: Decimal, complete: bool,
               applied_at: Any) -> dict[str, Any]:
    """Return the update that adds one run's payments to an event (and ends it when complete).

    `applied` positions paid or received `total` (traders' view: negative is
    paid): `positions` grows by `applied`, `netPaidByTraders` by −`total`; a
    complete run sets a `pending` event `applied`.
    """
    positions = event.get("positions", 0)
    paid = parse_number(event.get("netPaidByTraders", 0))
    fields: dict[str, Any] = {
        "positions": (positions if isinstance(positions, int) else 0) + applied,
        "netPaidByTraders": to_firestore((paid if paid is not None else ZERO) - total)}
    if complete and is_pending(event):
        fields.update({"status": FundingStatus.APPLIED.value, "appliedAt": applied_at})
    return fields


def payments_of(record: Mapping[str, Any] | None) -> list[Any]:
    """Return the `fundingPayments` of a history record (empty when it has none)."""
    payments = record.get("fundingPayments") if record is not None else None
    return list(payments) if isinstance(payments, list) else []


def payment_document(funding: FundingEvent, charge: FundingCharge) -> dict[str, Any]:
    """Return one entry of a history record's `fundingPayments`."""
    return {"eventId": funding.identifier, "rate": to_firestore_price(funding.rate),
            "markPrice": to_firestore_price(funding.mark_price),
            "amount": to_firestore(charge.amount),
            "fromMargin": to_firestore(charge.from_margin),
            "shortfall": to_firestore(charge.shortfall), "fundingTime": funding.time_ms}


def position_funding_fields(position: Mapping[str, Any], funding: FundingEvent,
                            total: Decimal, from_margin: Decimal) -> dict[str, Any]:
    """Return a position's `funding` {total, count, lastEventId, lastFundingTime, fromMargin}.

    `total` and `from_margin` are the sums after this payment; the count goes up by one.
    """
    record = position.get("funding")
    count = record.get("count", 0) if isinstance(record, Mapping) else 0
    return {"total": to_firestore(total),
            "count": (count if isinstance(count, int) else 0) + 1,
            "lastEventId": funding.identifier, "lastFundingTime": funding.time_ms,
            "fromMargin": to_firestore(from_margin)}
