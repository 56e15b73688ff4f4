"""The trading rules of DESIGN.md §3, with exact expected values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from cogmora_core import TradingConfig
from cogmora_core.contract.executions import parse_execution
from cogmora_core.contract.positions import parse_position
from cogmora_core.errors import Rejected
from cogmora_core.model import (
    CloseReason,
    Condition,
    PositionLevels,
    PositionType,
    Tick,
    TrailingStop,
    TriggerLevel,
)
from cogmora_core.trading import (
    CloseDetail,
    Crossing,
    check_balance,
    close_detail,
    close_fill,
    close_position,
    close_reason,
    held_at,
    liquidation_price,
    mid_price,
    open_fill,
    open_position,
    resting_levels,
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


# Level directions: the one place that says which way each level fires.

def test_a_crossing_is_reached_from_its_side_and_meets_the_nearest_level_first() -> None:
    assert Crossing.FALLING.crossed(D("95"), D("95")) and Crossing.FALLING.crossed(D(95), D(94))
    assert not Crossing.FALLING.crossed(D("95"), D("95.00000001"))
    assert Crossing.RISING.crossed(D("110"), D("110")) and Crossing.RISING.crossed(D(110), D(111))
    assert not Crossing.RISING.crossed(D("110"), D("109.99999999"))
    assert Crossing.FALLING.first_met([D("90.5"), D("95")]) == D("95")
    assert Crossing.RISING.first_met([D("109.5"), D("105")]) == D("105")


def test_resting_levels_of_triggers_say_which_way_they_fire() -> None:
    assert resting_levels(TriggerLevel(Condition.BELOW, D("60000"))) == [
        (Crossing.FALLING, D("60000"))]
    assert resting_levels(TriggerLevel(Condition.ABOVE, D("61000"))) == [
        (Crossing.RISING, D("61000"))]
    assert resting_levels(TriggerLevel(Condition.MARKET, None)) == []


def test_resting_levels_of_positions_are_adverse_or_favourable_by_side() -> None:
    trailing = TrailingStop(distance=D(2))
    long = PositionLevels(PositionType.LONG, D("90.5"), D("95"), D("110"), trailing, D("108"))
    assert resting_levels(long) == [(Crossing.FALLING, D("95")), (Crossing.FALLING, D("90.5")),
                                    (Crossing.RISING, D("110"))]
    short = PositionLevels(PositionType.SHORT, D("109.5"), D("105"), D("90"))
    assert resting_levels(short) == [(Crossing.RISING, D("105")), (Crossing.RISING, D("109.5")),
                                     (Crossing.FALLING, D("90"))]
    assert resting_levels(PositionLevels(PositionType.LONG, None, None, None, trailing)) == []


@pytest.mark.parametrize("side", [PositionType.LONG, PositionType.SHORT])
def test_every_resting_level_fires_exactly_where_close_reason_says(side: PositionType) -> None:
    if side is PositionType.LONG:
        levels = PositionLevels(side, D("90.5"), D("95"), D("110"))
    else:
        levels = PositionLevels(side, D("109.5"), D("105"), D("90"))
    step = D("0.01")
    for crossing, level in resting_levels(levels):
        beyond = level - step if crossing is Crossing.FALLING else level + step
        short_of = level + step if crossing is Crossing.FALLING else level - step
        assert close_reason(levels, level) is not None
        assert close_reason(levels, beyond) is not None
        assert crossing.crossed(level, short_of) is False


# Close detail: a stop-loss fired by the trailing stop says so.

def trailing_long(stop: str | None = None) -> PositionLevels:
    """A long with a 2-point trailing stop at peak 108 (stop 106), liquidation 90.5."""
    return PositionLevels(PositionType.LONG, D("90.5"), D(stop) if stop else None, D("120"),
                          TrailingStop(distance=D(2)), D("108"))


@pytest.mark.parametrize(("levels", "price", "reason", "detail"), [
    (trailing_long(), "106", CloseReason.STOP_LOSS, CloseDetail.TRAILING_STOP),
    (trailing_long(), "106.01", None, None),
    (trailing_long(stop="100"), "105", CloseReason.STOP_LOSS, CloseDetail.TRAILING_STOP),
    (trailing_long(stop="100"), "100", CloseReason.STOP_LOSS, None),  # the fixed stop too
    (trailing_long(stop="107"), "106.5", CloseReason.STOP_LOSS, None),  # the fixed stop alone
    (trailing_long(), "90", CloseReason.LIQUIDATION, None),
    (trailing_long(), "120", CloseReason.TAKE_PROFIT, None),
    (PositionLevels(PositionType.LONG, None, D("95"), None), "95", CloseReason.STOP_LOSS, None),
    (PositionLevels(PositionType.SHORT, None, None, None, TrailingStop(percent=D(1)), D(100)),
     "101", CloseReason.STOP_LOSS, CloseDetail.TRAILING_STOP),
    (PositionLevels(PositionType.SHORT, None, None, None, TrailingStop(percent=D(1)), D(100)),
     "100.99", None, None),
])
def test_close_detail_names_a_trailing_stop_only_when_it_alone_fired(
        levels: PositionLevels, price: str, reason: CloseReason | None,
        detail: CloseDetail | None) -> None:
    assert close_reason(levels, D(price)) == reason
    assert close_detail(levels, D(price)) == detail


def test_close_details_are_the_contracts_strings() -> None:
    assert (str(CloseDetail.TRAILING_STOP), str(CloseDetail.FUNDING)) == ("trailing_stop",
                                                                          "funding")


# Funding: a position pays when it was open at the funding time.

FUNDING_TIME = datetime(2025, 11, 16, 8, tzinfo=UTC)


@pytest.mark.parametrize(("opened", "requested", "held"), [
    (FUNDING_TIME - timedelta(hours=1), None, True),
    (FUNDING_TIME, None, True),
    (FUNDING_TIME + timedelta(microseconds=1), None, False),
    (None, None, False),
    (FUNDING_TIME - timedelta(hours=1), FUNDING_TIME, False),
    (FUNDING_TIME - timedelta(hours=1), FUNDING_TIME + timedelta(microseconds=1), True),
    (FUNDING_TIME - timedelta(hours=1), FUNDING_TIME - timedelta(minutes=1), False),
])
def test_a_position_is_held_at_funding_when_opened_by_then_and_not_asked_to_close(
        opened: datetime | None, requested: datetime | None, held: bool) -> None:
    assert held_at(opened, requested, FUNDING_TIME) is held


def test_the_mid_price_of_a_quote_is_exact_to_twelve_places() -> None:
    assert mid_price(D("84826.9"), D("84827.0")) == D("84826.95")
    assert mid_price(D("0.000009867"), D("0.000009868")) == D("0.0000098675")
    assert mid_price(D("1E-12"), D("2E-12")) == D("0.000000000002")  # half up
