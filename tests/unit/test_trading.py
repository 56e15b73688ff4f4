"""The trading rules of DESIGN.md §3, with exact expected values worked out by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora_core import TradingConfig
from cogmora_core.contract.executions import parse_execution
from cogmora_core.contract.positions import parse_position
from cogmora_core.errors import Rejected
from cogmora_core.model import CloseReason, PositionType, Tick
from cogmora_core.trading import (
    check_balance,
    close_fill,
    close_position,
    close_reason,
    liquidation_price,
    open_fill,
    open_position,
    trigger_fires,
)
from tests.support.builders import execution_doc, position_doc, spot_execution_doc

CONFIG = TradingConfig()


def opened(**overrides: object):
    order, price = parse_execution(execution_doc(**overrides))
    return open_position(order, price, CONFIG)


def as_state(position, **details: object):
    """Return the PositionState of an OpenedPosition, as the backend would read it back."""
    doc = position_doc(
        symbol=position.symbol,
        symbolType=str(position.symbol_type),
        positionType=str(position.position_type),
        size=float(position.size),
        averageEntryPrice=float(position.entry_price),
        leverage=position.leverage,
        margin=float(position.margin),
        openFee=float(position.open_fee),
        liquidationPrice=(
            float(position.liquidation_price) if position.liquidation_price is not None else None
        ),
        details={"status": "open", **details},
    )
    return parse_position(doc)


def test_spot_buy_then_close_with_fees_is_exact() -> None:
    order, price = parse_execution(spot_execution_doc(amount=1000, executedPrice=50000))
    position = open_position(order, price, CONFIG)
    assert (position.size, position.open_fee, position.debit) == (D("0.02"), D("1"), D("1001"))
    assert position.liquidation_price is None

    settlement = close_position(as_state(position), D("55000"), CONFIG)

    assert settlement.close_fee == D("1.1")
    assert settlement.credit == D("1098.9")
    assert settlement.pnl == D("97.9")
    assert settlement.pnl_percent == D("9.7802")
    assert D("10000") - position.debit + settlement.credit == D("10097.9")


@pytest.mark.parametrize(
    ("action", "leverage", "amount", "entry", "close", "size", "fee", "liq", "credit", "pnl"),
    [
        ("long", 1, 1000, 100, 110, "10", "0.6", "0.5", "1099.34", "98.74"),
        (
            "long",
            10,
            100,
            60000,
            63000,
            "0.01666667",
            "0.6",
            "54300",
            "149.37000987",
            "48.77000987",
        ),
        ("long", 100, 10, 100, "100.5", "10", "0.6", "99.5", "14.397", "3.797"),
        ("short", 1, 1000, 100, 90, "10", "0.6", "199.5", "1099.46", "98.86"),
        ("short", 10, 500, 100, 105, "50", "3", "109.5", "246.85", "-256.15"),
        ("short", 100, 10, 2000, 1990, "0.5", "0.6", "2010", "14.403", "3.803"),
    ],
)
def test_futures_open_and_close_are_exact(
    action: str,
    leverage: int,
    amount: int,
    entry: object,
    close: object,
    size: str,
    fee: str,
    liq: str,
    credit: str,
    pnl: str,
) -> None:
    position = opened(
        action=action,
        leverage=leverage,
        amount=amount,
        executedPrice=entry,
        targetPrice=entry,
        symbol="SOLUSDTM",
    )
    assert position.size == D(size)
    assert position.open_fee == D(fee)
    assert position.margin == D(amount)
    assert position.liquidation_price == D(liq)

    settlement = close_position(as_state(position), D(str(close)), CONFIG)

    assert settlement.credit == D(credit)
    assert settlement.pnl == D(pnl)


def test_gap_through_stop_fills_at_the_ticks_price_not_the_level() -> None:
    state = parse_position(position_doc(details={"status": "open", "stopLoss": 95}))
    tick = Tick("SOLUSDTM", price=D("93"), best_bid=D("92.9"), best_ask=D("93.1"))

    reason = close_reason(state, tick.price)
    fill = close_fill(state.position_type, tick)
    settlement = close_position(state, fill, CONFIG)

    assert reason is CloseReason.STOP_LOSS
    assert fill == D("92.9")
    assert settlement.close_fee == D("2.787")
    assert settlement.credit == D("142.213")
    assert settlement.pnl == D("-360.787")


def test_liquidation_price_and_settlement_at_it_keep_the_maintenance_margin() -> None:
    assert liquidation_price(D("100"), 10, PositionType.LONG, D("0.005")) == D("90.5")
    state = parse_position(position_doc())

    assert close_reason(state, D("90.5")) is CloseReason.LIQUIDATION
    assert close_reason(state, D("90.51")) is None
    settlement = close_position(state, D("90.5"), CONFIG)
    assert settlement.credit == D("22.285")
    assert settlement.pnl == D("-480.715")


def test_liquidation_gapped_through_settles_to_zero_never_below() -> None:
    state = parse_position(position_doc())

    settlement = close_position(state, D("85"), CONFIG)

    assert settlement.credit == D("0")
    assert settlement.pnl == D("-503")
    assert settlement.pnl_percent == D("-100")


def test_short_liquidation_is_above_entry() -> None:
    state = parse_position(position_doc(positionType="short", liquidationPrice=109.5))
    assert close_reason(state, D("109.49")) is None
    assert close_reason(state, D("109.5")) is CloseReason.LIQUIDATION


def test_insufficient_balance_is_rejected_with_its_reason() -> None:
    order, price = parse_execution(spot_execution_doc(amount=100))
    position = open_position(order, price, CONFIG)
    with pytest.raises(Rejected) as caught:
        check_balance(D("100.09999999"), position)
    assert caught.value.reason == "insufficient_balance"
    check_balance(D("100.1"), position)  # exactly enough is enough


def test_fills_take_the_executable_side_of_the_book() -> None:
    tick = Tick("XBTUSDTM", price=D("100"), best_bid=D("99"), best_ask=D("101"))
    assert open_fill(PositionType.LONG, tick) == D("101")
    assert open_fill(PositionType.SHORT, tick) == D("99")
    assert close_fill(PositionType.LONG, tick) == D("99")
    assert close_fill(PositionType.SHORT, tick) == D("101")
    bare = Tick("XBTUSDTM", price=D("100"))
    assert open_fill(PositionType.LONG, bare) == D("100")


@pytest.mark.parametrize(
    ("condition", "target", "price", "fires"),
    [
        ("above", "100", "99.99", False),
        ("above", "100", "100", True),
        ("below", "100", "100.01", False),
        ("below", "100", "100", True),
        ("market", None, "1", True),
    ],
)
def test_trigger_conditions(condition: str, target: str | None, price: str, fires: bool) -> None:
    from cogmora_core.model import Condition

    assert trigger_fires(Condition(condition), D(target) if target else None, D(price)) is fires


@pytest.mark.parametrize(
    ("side", "price", "reason"),
    [
        ("long", "95", CloseReason.STOP_LOSS),
        ("long", "95.01", None),
        ("long", "110", CloseReason.TAKE_PROFIT),
        ("long", "109.99", None),
        ("short", "110", CloseReason.STOP_LOSS),
        ("short", "109.99", None),
        ("short", "95", CloseReason.TAKE_PROFIT),
        ("short", "95.01", None),
    ],
)
def test_stop_loss_and_take_profit_by_side(side: str, price: str, reason: object) -> None:
    levels = {"long": (95, 110), "short": (110, 95)}[side]
    state = parse_position(
        position_doc(
            positionType=side,
            leverage=1,
            liquidationPrice=None,
            details={"status": "open", "stopLoss": levels[0], "takeProfit": levels[1]},
        )
    )
    assert close_reason(state, D(price)) == reason


def test_config_takes_document_values_and_ignores_bad_ones_with_a_reason() -> None:
    config = TradingConfig.from_document(
        {"spotTakerFee": 0.002, "futuresTakerFee": "0.5", "startingBalance": 5000}
    )
    assert config.spot_taker_fee == D("0.002")
    assert config.futures_taker_fee == D("0.0006")
    assert config.starting_balance == D("5000")
    assert config.problems == ("futuresTakerFee: invalid value '0.5', default used",)
