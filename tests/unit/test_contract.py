"""The contract modules: each collection's builders and parser agree, to the last decimal."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora_backend.api.errors import ApiError
from cogmora_backend.marks import reject_trigger
from cogmora_backend.store import CursorMissing, DocumentMissing
from cogmora_core.contract import executions, funding, history, positions, triggers, users
from cogmora_core.errors import (
    CogmoraError,
    ContractViolation,
    HaltError,
    InvalidInput,
    Rejected,
    RejectedInput,
    RetryableError,
)
from cogmora_core.events import (
    AccountInitialized,
    CloseRequested,
    ExecutionFilled,
    ExecutionRejected,
    FundedFirst,
    FundingApplied,
    FundingEventApplied,
    FundingLeftPending,
    FundingMarked,
    InvalidDocument,
    PeakRecorded,
    PositionSettled,
    Skip,
    Skipped,
    TriggerFired,
    TriggerRejected,
)
from cogmora_core.model import (
    Action,
    CloseReason,
    CloseRequest,
    Condition,
    FundingCharge,
    OpenedPosition,
    OrderRequest,
    PositionType,
    Settlement,
    SymbolType,
    Tick,
    TrailingStop,
)
from tests.support.builders import position_doc, trigger_doc
from tests.support.memory import MemoryDatabase
from worker.gaps import CandleError
from worker.venues.base import FeedDead, FrameError

#: A server timestamp as the storage layer passes it (the builders only place it).
AT = object()

OPENED = OpenedPosition(
    symbol="XBTUSDTM", symbol_type=SymbolType.FUTURES, position_type=PositionType.SHORT,
    size=D("0.01666667"), entry_price=D("60000.123456789"), leverage=10, margin=D("100"),
    open_fee=D("0.6"), liquidation_price=D("65400.13456"), stop_loss=D("61000.5"),
    take_profit=D("55000"), trailing_stop=TrailingStop(percent=D("2.5")), venue="kucoin")


def test_status_values_are_the_strings_design_md_names() -> None:
    assert [s.value for s in triggers.TriggerStatus] == ["active", "cancelled", "rejected"]
    assert [s.value for s in executions.ExecutionStatus] == ["pending", "filled", "rejected"]
    assert [s.value for s in positions.PositionStatus] == ["open", "closing"]
    assert [s.value for s in history.HistoryStatus] == ["open", "closed"]
    assert [s.value for s in funding.FundingStatus] == ["pending", "applied"]
    assert positions.LIVE == ("open", "closing")


def test_a_position_document_reads_back_as_the_position_it_was_built_from() -> None:
    document = positions.position_document(OPENED, "e1", AT)

    assert document == {
        "symbol": "XBTUSDTM", "symbolType": "futures", "positionType": "short",
        "size": 0.01666667, "averageEntryPrice": 60000.123456789, "leverage": 10,
        "margin": 100, "openFee": 0.6, "openedAt": AT, "sourceTriggerId": "e1",
        "venue": "kucoin", "liquidationPrice": 65400.13456,
        "details": {"status": "open", "stopLoss": 61000.5, "takeProfit": 55000,
                    "trailingStop": {"percent": 2.5}},
    }
    state = positions.parse_position(document)
    assert (state.symbol, state.symbol_type, state.position_type, state.status) == (
        "XBTUSDTM", SymbolType.FUTURES, PositionType.SHORT, "open")
    assert (state.size, state.entry_price, state.margin, state.open_fee) == (
        D("0.01666667"), D("60000.123456789"), D(100), D("0.6"))
    assert (state.liquidation_price, state.stop_loss, state.take_profit) == (
        D("65400.13456"), D("61000.5"), D(55000))
    assert state.trailing_stop == TrailingStop(percent=D("2.5"))
    assert (state.close_request, state.peak, state.funding) == (None, None, D(0))


def test_a_priced_close_request_reads_back_with_its_reason_price_and_detail() -> None:
    request = CloseRequest(CloseReason.STOP_LOSS, D("0.000012501"), "worker-1",
                           "trailing_stop", "gap_recovery")

    fields = positions.closing_fields(request, AT, 1_700_000_000_123)

    assert fields == {"details.status": "closing", "details.closeRequest": {
        "reason": "stop_loss", "price": 0.000012501, "at": AT, "source": "worker-1",
        "tickAt": 1_700_000_000_123, "detail": "trailing_stop", "origin": "gap_recovery"}}
    document = position_doc(details={"status": "closing",
                                     "closeRequest": fields["details.closeRequest"]})
    assert positions.is_priced_close(document)
    assert positions.parse_position(document).close_request == request


def test_a_close_request_is_never_written_without_its_price() -> None:
    with pytest.raises(ValueError):
        positions.closing_fields(CloseRequest(CloseReason.MANUAL, None), AT, None)


@pytest.mark.parametrize(("details", "priced"), [
    ({"status": "open"}, False),
    ({"status": "closing"}, False),
    ({"status": "closing", "closeRequest": {"reason": "manual"}}, False),
    ({"status": "closing", "closeRequest": {"reason": "manual", "price": 101}}, True),
    ({"status": "open", "closeRequest": {"reason": "manual", "price": 101}}, False),
])
def test_only_a_closing_position_with_a_price_is_ready_to_settle(details: dict,
                                                                  priced: bool) -> None:
    assert positions.is_priced_close(position_doc(details=details)) is priced
    assert positions.is_live(position_doc(details=details))


def test_the_trailing_state_holds_the_peak_and_the_stop_it_implies() -> None:
    state = positions.parse_position(position_doc(details={
        "status": "open", "trailingStop": {"distance": 2.5}}))

    assert positions.trailing_state_document(state, D("110.25"), AT, "w") == {
        "highWaterMark": 110.25, "stopPrice": 107.75, "updatedAt": AT, "source": "w"}


def test_a_trigger_document_reads_back_as_its_order() -> None:
    document = triggers.trigger_document({
        "symbol": "SOL_USDC_PERP", "symbolType": "futures", "condition": "above",
        "targetPrice": 0.000009868, "action": "short", "amount": 12.34567891,
        "leverage": 5, "stopLoss": 0.00001, "venue": "backpack"})

    assert document["details"] == {"status": "active"}
    assert triggers.is_active(document)
    assert triggers.parse_trigger(document) == OrderRequest(
        symbol="SOL_USDC_PERP", symbol_type=SymbolType.FUTURES, action=Action.SHORT,
        amount=D("12.34567891"), leverage=5, condition=Condition.ABOVE,
        target_price=D("0.000009868"), stop_loss=D("0.00001"), venue="backpack")


def test_a_trigger_that_is_not_active_is_not_parsed() -> None:
    with pytest.raises(Rejected) as raised:
        triggers.parse_trigger(trigger_doc(details={"status": "cancelled"}))
    assert raised.value.reason == "invalid_status"
    assert not triggers.is_active(trigger_doc(details={"status": "rejected"}))
    assert not triggers.is_active(None)


def test_trigger_transitions_write_the_contracts_fields() -> None:
    assert triggers.rejected_fields("too_many_triggers", "201 > 200") == {
        "details.status": "rejected", "details.error": "too_many_triggers",
        "details.errorDetail": "201 > 200"}
    assert triggers.cancelled_by_partner_fields("t2") == {
        "details.status": "cancelled", "details.cancelledBy": "t2", "details.cancelReason": "oco"}


def test_rejecting_an_active_trigger_records_the_reason_once() -> None:
    database = MemoryDatabase({"users/u/tradeTriggers/t": trigger_doc()})

    first = reject_trigger(database, "u", "t", "invalid_symbol", "not listed")
    again = reject_trigger(database, "u", "t", "invalid_symbol", "not listed")

    assert first == TriggerRejected("invalid_symbol", "not listed")
    assert (first.kind, first.reason) == ("rejected", "invalid_symbol")
    assert again == Skipped(Skip.NOT_ACTIVE)
    assert database.documents["users/u/tradeTriggers/t"]["details"] == {
        "status": "rejected", "error": "invalid_symbol", "errorDetail": "not listed"}


def test_an_execution_document_reads_back_as_its_order_and_fill() -> None:
    order = OrderRequest(
        symbol="BTC-USDT", symbol_type=SymbolType.SPOT, action=Action.BUY,
        amount=D("1000.5"), leverage=1, condition=Condition.BELOW, target_price=D("49000"),
        stop_loss=D("45000.25"), take_profit=None,
        trailing_stop=TrailingStop(distance=D("150.5"), activation_price=D("51000")),
        oco_trigger_id="t2")

    document = executions.execution_document(order, "t1", D("48999.9"),
                                             Tick("BTC-USDT", D(49000), time_ms=7), "w", AT)

    assert document == {
        "triggerId": "t1", "symbol": "BTC-USDT", "symbolType": "spot", "action": "buy",
        "amount": 1000.5, "leverage": 1, "stopLoss": 45000.25, "takeProfit": None,
        "condition": "below", "targetPrice": 49000, "venue": "kucoin",
        "trailingStop": {"distance": 150.5, "activationPrice": 51000},
        "ocoTriggerId": "t2", "executedPrice": 48999.9, "executedAt": AT, "tickAt": 7,
        "source": "w", "status": "pending"}
    assert executions.is_pending(document)
    assert executions.parse_execution(document) == (order, D("48999.9"))


def test_execution_transitions_write_the_contracts_fields() -> None:
    assert executions.filled_fields("e1", AT) == {
        "status": "filled", "positionId": "e1", "settledAt": AT}
    assert executions.rejected_fields("insufficient_balance", "10 < 11", AT) == {
        "status": "rejected", "error": "insufficient_balance", "errorDetail": "10 < 11",
        "settledAt": AT}
    assert not executions.is_pending({"status": "filled"})


def test_a_history_record_opens_and_closes_with_exact_numbers() -> None:
    opened = history.history_open_document(OPENED, "e1", AT)
    settlement = Settlement(close_price=D("55000.5"), close_fee=D("0.55000003"),
                            gross_pnl=D("85.33538"), credit=D("184.78537997"),
                            pnl=D("84.18537997"), pnl_percent=D("83.68328029"))
    closed = history.history_close_fields(
        settlement, CloseRequest(CloseReason.TAKE_PROFIT, D(55000), detail="trailing_stop"), AT)

    assert opened == {
        "positionId": "e1", "symbol": "XBTUSDTM", "symbolType": "futures",
        "positionType": "short", "size": 0.01666667, "entryPrice": 60000.123456789,
        "leverage": 10, "margin": 100, "openFee": 0.6, "openedAt": AT, "venue": "kucoin",
        "status": "open"}
    assert closed == {
        "closeDetail": "trailing_stop", "status": "closed", "closePrice": 55000.5,
        "closeFee": 0.55000003, "closedAt": AT, "closeReason": "take_profit",
        "pnl": 84.18537997, "pnlPercent": 83.6833, "credit": 184.78537997}
    record = {**opened, **closed, "funding": -1.25}
    assert history.is_closed(record)
    assert history.parse_settled_record(record) == history.SettledRecord(
        PositionType.SHORT, D("0.01666667"), D(100), D("0.6"), D("84.18537997"), D("-1.25"))


def test_a_history_record_without_its_numbers_is_an_invalid_document() -> None:
    with pytest.raises(Rejected) as raised:
        history.parse_settled_record({"status": "closed", "positionType": ["long"]})
    assert raised.value.reason == "invalid_document"


def test_a_funding_event_reads_back_as_the_event_the_worker_marked() -> None:
    identifier = funding.event_id("backpack", "SOL_USDC_PERP", 1_700_000_000_000)
    document = funding.event_document("backpack", "SOL_USDC_PERP", D("-0.000125"),
                                      D("0.000012501"), 1_700_000_000_000, "w", AT)

    assert identifier == "backpack_SOL_USDC_PERP_1700000000000"
    assert document == {
        "venue": "backpack", "symbol": "SOL_USDC_PERP", "rate": -0.000125,
        "markPrice": 0.000012501, "fundingTimeMs": 1_700_000_000_000, "status": "pending",
        "createdAt": AT, "source": "w"}
    event = funding.parse_event(identifier, document)
    assert event == funding.FundingEvent(identifier, "backpack", "SOL_USDC_PERP",
                                         D("-0.000125"), D("0.000012501"), 1_700_000_000_000)
    assert event.concerns("SOL_USDC_PERP", "backpack")
    assert not event.concerns("SOL_USDC_PERP", None)  # no venue: KuCoin
    assert funding.parse_event(identifier, {**document, "markPrice": 0}) is None


def test_funding_payments_and_runs_write_exact_sums() -> None:
    event = funding.FundingEvent("kucoin_XBTUSDTM_5", "kucoin", "XBTUSDTM", D("0.0001"),
                                 D("60000.5"), 5)
    charge = FundingCharge(due=D("-0.10000083"), balance_change=D("-0.1"),
                           from_margin=D("0.00000083"))
    payment = funding.payment_document(event, charge)

    assert payment == {"eventId": "kucoin_XBTUSDTM_5", "rate": 0.0001, "markPrice": 60000.5,
                       "amount": -0.10000083, "fromMargin": 0.00000083, "shortfall": 0,
                       "fundingTime": 5}
    assert funding.payments_of({"fundingPayments": [payment]}) == [payment]
    assert funding.payments_of(None) == []
    assert funding.position_funding_fields(
        {"funding": {"count": 2}}, event, D("-0.30000083"), D("0.00000083")) == {
        "total": -0.30000083, "count": 3, "lastEventId": "kucoin_XBTUSDTM_5",
        "lastFundingTime": 5, "fromMargin": 0.00000083}
    pending = {"status": "pending", "positions": 2, "netPaidByTraders": 0.2}
    assert funding.run_fields(pending, 3, D("-0.30000001"), True, AT) == {
        "positions": 5, "netPaidByTraders": 0.50000001, "status": "applied", "appliedAt": AT}
    assert funding.run_fields({"status": "applied"}, 1, D(1), True, AT) == {
        "positions": 1, "netPaidByTraders": -1}


def test_an_account_is_funded_once_and_counts_its_positions() -> None:
    assert users.funded_account(D("10000"), AT) == {"balance": 10000, "createdAt": AT}
    assert users.missing_account_fields({"balance": 5}, D(10000), AT) == {"createdAt": AT}
    assert users.missing_account_fields({"balance": 5, "createdAt": 1}, D(10000), AT) == {}
    assert users.account_balance({"balance": 9999.99999999}) == D("9999.99999999")
    assert users.balance_fields(D("0.123456785")) == {"balance": 0.12345678}
    assert users.position_count_after_close({"openPositionCount": 1}) == {
        "openPositionCount": 0}
    assert users.position_count_after_close({"openPositionCount": True}) == {}
    assert users.position_count({}) is None
    with pytest.raises(RetryableError):
        users.account_balance({})
    with pytest.raises(Rejected) as raised:
        users.account_balance({"balance": "10"})
    assert raised.value.reason == "invalid_balance"


def test_outcomes_keep_the_labels_logs_and_metrics_count() -> None:
    labels = [(o.kind, o.reason) for o in (
        AccountInitialized(created=True), AccountInitialized(), ExecutionFilled("e1"),
        PositionSettled(D(1)), TriggerFired(D(1)),
        CloseRequested(CloseReason.STOP_LOSS, D(1), "trailing_stop"),
        CloseRequested(CloseReason.LIQUIDATION, D(1)), PeakRecorded(D(1)),
        FundingMarked("kucoin_X_1"), FundingApplied(D("-0.5")), FundingEventApplied(3),
        FundingLeftPending(2), ExecutionRejected("insufficient_balance"),
        InvalidDocument("already_executed"), Skipped(Skip.NOT_BETTER),
        FundedFirst(ExecutionRejected("too_many_positions")))]

    assert labels == [
        ("initialized", "created"), ("initialized", ""), ("filled", ""), ("settled", ""),
        ("marked", "trigger"), ("marked", "trailing_stop"), ("marked", "liquidation"),
        ("marked", "peak"), ("marked", "kucoin_X_1"), ("applied", "-0.5"), ("applied", "3"),
        ("skipped", "2 positions failed; left pending"), ("rejected", "insufficient_balance"),
        ("invalid", "already_executed"), ("skipped", "not better"),
        ("funded_rejected", "too_many_positions")]


@pytest.mark.parametrize(("error", "group"), [
    (Rejected("invalid_symbol"), InvalidInput),
    (FrameError("bad_price", "x"), InvalidInput),
    (ApiError(400, "invalid_body", "x"), InvalidInput),
    (CursorMissing("x"), InvalidInput),
    (FeedDead("silent"), RetryableError),
    (CandleError("HTTP 500"), RetryableError),
    (DocumentMissing("x"), RetryableError),
    (ContractViolation("x"), HaltError),
])
def test_every_error_sits_in_the_group_of_what_its_caller_does(error: Exception,
                                                               group: type) -> None:
    assert isinstance(error, group)
    assert isinstance(error, CogmoraError)
    assert RejectedInput is InvalidInput
    assert isinstance(CursorMissing("x"), LookupError)
    assert isinstance(ContractViolation("x"), AssertionError)
