"""Marks: the worker's writes that tell the functions something must execute.

Two ways to write a mark, with the same result and the same guarantee:

- `mark_trigger` / `mark_position`: one transaction that re-reads the
  document and re-checks it against the tick with the core's rules, and
  writes only if it still must execute;
- `plan_read_trigger_mark` / `plan_position_mark` + `write_marks`: the mark
  is decided from the document as just read (a trigger, many in one read) or
  as the worker's listener delivered it (a position: the levels are all it
  needs), and written many in one batch, each write conditioned on that version
  (the execution created only if none exists, the trigger deleted and the
  position updated only if their update time is still the one seen). Any
  later write (a cancel, an edit, another worker's mark) fails the batch with
  `StaleWrite`, and nothing is written: the caller then marks through the
  transaction, which decides anew from what is there.

Either way a level that stays crossed, a retried mark, or two workers racing
mark exactly once, and a cancelled or edited document is never marked from
a stale snapshot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora_backend import paths
from cogmora_backend.funding import event_path
from cogmora_backend.store import SERVER_TIME, Database, Snapshot, Transaction
from cogmora_core.contract import triggers
from cogmora_core.contract.executions import execution_document
from cogmora_core.contract.funding import event_document, event_id
from cogmora_core.contract.positions import (
    PositionStatus,
    closing_fields,
    is_priced_close,
    parse_position,
    trailing_state_document,
)
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.errors import Rejected
from cogmora_core.events import (
    CloseRequested,
    FundingMarked,
    InvalidDocument,
    PeakRecorded,
    Skip,
    Skipped,
    TriggerFired,
    TriggerRejected,
)
from cogmora_core.model import (
    CloseReason,
    CloseRequest,
    OrderRequest,
    PositionLevels,
    PositionState,
    Tick,
)
from cogmora_core.trading import (
    CloseDetail,
    better_peak,
    close_detail,
    close_fill,
    close_reason,
    open_fill,
    trigger_fires,
)


def reject_trigger(database: Database, uid: str, trigger_id: str, reason: str,
                   detail: str) -> TriggerRejected | Skipped:
    """Set an active trigger that cannot execute to `rejected` with `details.error`."""
    path = paths.trigger(uid, trigger_id)

    def work(tx: Transaction) -> TriggerRejected | Skipped:
        if not triggers.is_active(tx.get(path)):
            return Skipped(Skip.NOT_ACTIVE)
        tx.update(path, triggers.rejected_fields(reason, detail))
        return TriggerRejected(reason, detail)

    return database.run(work)


def mark_trigger(database: Database, uid: str, trigger_id: str, tick: Tick,
                 source: str, origin: str | None = None
                 ) -> TriggerFired | InvalidDocument | Skipped:
    """Execute an active trigger the tick crosses: create its execution, delete it.

    A trigger linked one-cancels-other (`ocoTriggerId`) cancels its partner in
    the same transaction, so of two linked triggers crossed at once exactly one
    executes: the other's transaction re-reads it cancelled and stops.
    """
    path = paths.trigger(uid, trigger_id)
    execution_path = paths.execution(uid, trigger_id)

    def done() -> Skipped | None:  # executed, cancelled or deleted already
        seen = database.read(path)
        if seen is None:
            return Skipped(Skip.NO_TRIGGER)
        return None if triggers.is_active(seen) else Skipped(Skip.NOT_ACTIVE)

    def work(tx: Transaction) -> TriggerFired | InvalidDocument | Skipped:
        trigger, executed = tx.get_many([path, execution_path])  # one round trip
        if trigger is None:
            return Skipped(Skip.NO_TRIGGER)
        if not triggers.is_active(trigger):  # cancelled by the user or by its OCO partner
            return Skipped(Skip.NOT_ACTIVE)
        try:
            order = parse_trigger(trigger)
        except Rejected as rejection:
            return InvalidDocument(rejection.reason)
        if executed is not None:
            return InvalidDocument("already_executed")
        if order.symbol != tick.symbol or not trigger_fires(
            order.condition, order.target_price, tick.price
        ):
            return Skipped(Skip.NOT_CROSSED)
        partner_path = None
        if order.oco_trigger_id is not None and order.oco_trigger_id != trigger_id:
            partner_path = paths.trigger(uid, order.oco_trigger_id)
            if not triggers.is_active(tx.get(partner_path)):
                partner_path = None
        fill = open_fill(order.position_type, tick)
        execution = execution_document(order, trigger_id, fill, tick, source, SERVER_TIME)
        if origin is not None:
            execution["origin"] = origin
        if partner_path is not None:
            execution["ocoCancelled"] = order.oco_trigger_id
            tx.update(partner_path, triggers.cancelled_by_partner_fields(trigger_id))
        tx.set(execution_path, execution)
        tx.delete(path)
        return TriggerFired(fill)

    return database.run(work, done)


def _read_position(tx: Transaction, path: str) -> PositionState | InvalidDocument | Skipped:
    """Return the position at `path` read in `tx`, or why there is nothing to mark."""
    position = tx.get(path)
    if position is None:
        return Skipped(Skip.NO_POSITION)
    try:
        return parse_position(position)
    except Rejected as rejection:
        return InvalidDocument(rejection.reason)


def mark_position(database: Database, uid: str, position_id: str, tick: Tick,
                  source: str, peak: Decimal | None = None,
                  origin: str | None = None) -> CloseRequested | InvalidDocument | Skipped:
    """Mark a position `closing` with `details.closeRequest` {reason, price, at, source}.

    An `open` position is marked when the tick crosses its stop-loss,
    take-profit, trailing stop or liquidation price; a `closing` one without
    a price (a manual close) is priced at the tick. Anything else is left
    alone. `peak` is the worker's trailing high-water mark, which may be
    ahead of the persisted one; `origin` says where the price came from
    (`gap_recovery` for a price from candles), recorded on the request.
    """
    path = paths.position(uid, position_id)

    def done() -> Skipped | None:  # settled, or priced by another worker
        seen = database.read(path)
        if seen is None or is_priced_close(seen):
            return Skipped(Skip.NO_POSITION if seen is None else Skip.ALREADY_PRICED)
        return None

    def work(tx: Transaction) -> CloseRequested | InvalidDocument | Skipped:
        state = _read_position(tx, path)
        if not isinstance(state, PositionState):
            return state
        if state.symbol != tick.symbol:
            return Skipped(Skip.OTHER_SYMBOL)
        if state.trailing_stop is not None:
            state = dataclasses.replace(
                state, peak=better_peak(state.position_type, state.peak, peak))
        detail: CloseDetail | None = None
        if state.status == PositionStatus.OPEN:
            reason = close_reason(state, tick.price)
            if reason is None:
                return Skipped(Skip.NOT_CROSSED)
            detail = close_detail(state, tick.price)
        elif state.close_request is None or state.close_request.price is None:
            reason = CloseReason.MANUAL
        else:
            return Skipped(Skip.ALREADY_PRICED)
        fill = close_fill(state.position_type, tick)
        request = CloseRequest(reason, fill, source, detail, origin)
        fields = closing_fields(request, SERVER_TIME, tick.time_ms)
        if detail is not None and state.peak is not None:
            fields["trailing"] = _trailing_state(state, state.peak, source)
        tx.update(path, fields)
        return CloseRequested(reason, fill, detail)

    return database.run(work, done)


def _trailing_state(state: PositionState | PositionLevels, peak: Decimal,
                    source: str) -> dict[str, Any]:
    return trailing_state_document(state, peak, SERVER_TIME, source)


@dataclasses.dataclass(frozen=True)
class PlannedMark:
    """A mark decided from a snapshot: its writes, valid only while that version stands."""

    path: str
    outcome: TriggerFired | CloseRequested
    writes: Callable[[Transaction], None]


def plan_trigger_mark(uid: str, trigger_id: str, order: OrderRequest, seen: datetime,
                      tick: Tick, source: str, origin: str | None = None
                      ) -> PlannedMark | None:
    """Return the mark of an active trigger as read at update time `seen`, to write blind.

    The same writes as `mark_trigger`: its execution created (only if none
    exists) and the trigger deleted (only if still the version seen). None when
    the tick does not cross it, or when it is linked one-cancels-other: its
    partner must be read, so it is marked through the transaction.
    """
    if order.oco_trigger_id is not None and order.oco_trigger_id != trigger_id:
        return None
    if order.symbol != tick.symbol or not trigger_fires(
            order.condition, order.target_price, tick.price):
        return None
    path = paths.trigger(uid, trigger_id)
    fill = open_fill(order.position_type, tick)
    execution = execution_document(order, trigger_id, fill, tick, source, SERVER_TIME)
    if origin is not None:
        execution["origin"] = origin
    execution_path = paths.execution(uid, trigger_id)

    def writes(batch: Transaction) -> None:
        batch.create(execution_path, execution)
        batch.delete(path, if_update_time=seen)

    return PlannedMark(path, TriggerFired(fill), writes)


def plan_read_trigger_mark(read: Snapshot | None, uid: str, trigger_id: str, tick: Tick,
                           source: str, origin: str | None = None
                           ) -> PlannedMark | Skipped | None:
    """Return the mark of a trigger as just read (`Database.read_many`), to write blind.

    Skipped when it is gone or no longer active; None when the transaction
    must decide (it cannot be parsed, is linked one-cancels-other, or the
    tick does not cross it as it stands).
    """
    if read is None:
        return Skipped(Skip.NO_TRIGGER)
    if not triggers.is_active(read.data):
        return Skipped(Skip.NOT_ACTIVE)
    if read.update_time is None:
        return None
    try:
        order = parse_trigger(read.data)
    except Rejected:
        return None
    return plan_trigger_mark(uid, trigger_id, order, read.update_time, tick, source, origin)


def plan_position_mark(uid: str, position_id: str, levels: PositionLevels, manual: bool,
                       seen: datetime, tick: Tick, source: str,
                       peak: Decimal | None = None, origin: str | None = None
                       ) -> PlannedMark | None:
    """Return the mark of a position as read at update time `seen`, to write blind.

    `levels` are the position's as read then; `manual` says it was `closing`
    without a price (a manual close, priced at the tick). The same update as
    `mark_position`, made only if the position is still the version seen.
    None when the tick crosses none of its levels.
    """
    if levels.trailing_stop is not None:
        levels = dataclasses.replace(
            levels, peak=better_peak(levels.position_type, levels.peak, peak))
    detail: CloseDetail | None = None
    if manual:
        reason = CloseReason.MANUAL
    else:
        found = close_reason(levels, tick.price)
        if found is None:
            return None
        reason, detail = found, close_detail(levels, tick.price)
    fill = close_fill(levels.position_type, tick)
    request = CloseRequest(reason, fill, source, detail, origin)
    fields = closing_fields(request, SERVER_TIME, tick.time_ms)
    if detail is not None and levels.peak is not None:
        fields["trailing"] = _trailing_state(levels, levels.peak, source)
    path = paths.position(uid, position_id)

    def writes(batch: Transaction) -> None:
        batch.update(path, fields, if_update_time=seen)

    return PlannedMark(path, CloseRequested(reason, fill, detail), writes)


def write_marks(database: Database, marks: Sequence[PlannedMark]) -> None:
    """Write planned marks in one atomic batch (at most 500 writes: a trigger's mark
    writes two documents, a position's one).

    Raises `StaleWrite` when any document changed since it was seen, and then
    nothing is written.
    """

    def writes(batch: Transaction) -> None:
        for mark in marks:
            mark.writes(batch)

    database.write(writes)


def record_peak(database: Database, uid: str, position_id: str, peak: Decimal,
                source: str) -> PeakRecorded | InvalidDocument | Skipped:
    """Persist a trailing stop's high-water mark, only ever in the position's favour.

    Writes `trailing` {highWaterMark, stopPrice, updatedAt, source} when `peak`
    is better than the stored one, so a restarted worker (or another instance)
    resumes from it; a stale or lower peak from a racing writer changes nothing.
    """
    path = paths.position(uid, position_id)

    def work(tx: Transaction) -> PeakRecorded | InvalidDocument | Skipped:
        state = _read_position(tx, path)
        if not isinstance(state, PositionState):
            return state
        if state.status != PositionStatus.OPEN or state.trailing_stop is None:
            return Skipped(Skip.NO_TRAILING_STOP)
        best = better_peak(state.position_type, state.peak, peak)
        if best is None or best == state.peak:
            return Skipped(Skip.NOT_BETTER)
        tx.update(path, {"trailing": _trailing_state(state, best, source)})
        return PeakRecorded(best)

    return database.run(work)


def mark_funding(database: Database, venue: str, symbol: str, rate: Decimal,
                 funding_time_ms: int, mark_price: Decimal, source: str
                 ) -> FundingMarked | Skipped:
    """Create the `fundingEvents` document of one funding settlement, once.

    Its id is the venue, symbol and funding time, so repeated frames
    (`funding.begin` then `funding.end`) and racing workers create it once;
    `applyFunding` settles it.
    """
    identifier = event_id(venue, symbol, funding_time_ms)
    path = event_path(identifier)

    def work(tx: Transaction) -> FundingMarked | Skipped:
        if tx.get(path) is not None:
            return Skipped(Skip.ALREADY_MARKED)
        tx.set(path, event_document(venue, symbol, rate, mark_price, funding_time_ms, source,
                                    SERVER_TIME))
        return FundingMarked(identifier)

    return database.run(work)
