"""Every rejection reason of the validation of executions, triggers and positions."""

from __future__ import annotations

import math
from decimal import Decimal as D

import pytest

from cogmora_core.contract.executions import parse_execution
from cogmora_core.contract.positions import parse_position
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.errors import Rejected
from tests.support.builders import DROP, execution_doc, position_doc, trigger_doc


def reason_of(parse, doc) -> str:
    with pytest.raises(Rejected) as caught:
        parse(doc)
    return caught.value.reason


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"symbolType": "margin"}, "unknown_symbol_type"),
        ({"symbolType": DROP}, "unknown_symbol_type"),
        ({"symbolType": ["futures"]}, "unknown_symbol_type"),
        ({"venue": "bybit"}, "invalid_venue"),
        ({"symbol": "BTC-USDT"}, "invalid_symbol"),
        ({"symbol": "XBTUSDM"}, "invalid_symbol"),
        ({"symbol": 7}, "invalid_symbol"),
        ({"action": "buy"}, "invalid_action"),
        ({"action": None}, "invalid_action"),
        ({"amount": 0}, "invalid_amount"),
        ({"amount": -5}, "invalid_amount"),
        ({"amount": "100"}, "invalid_amount"),
        ({"amount": math.nan}, "invalid_amount"),
        ({"amount": math.inf}, "invalid_amount"),
        ({"amount": True}, "invalid_amount"),
        ({"amount": 0.123456789}, "invalid_amount"),
        ({"amount": 1e13}, "invalid_amount"),
        ({"leverage": 0}, "invalid_leverage"),
        ({"leverage": 101}, "invalid_leverage"),
        ({"leverage": 2.5}, "invalid_leverage"),
        ({"leverage": DROP}, "invalid_leverage"),
        ({"condition": "cross"}, "invalid_condition"),
        ({"targetPrice": DROP}, "invalid_target_price"),
        ({"targetPrice": -1}, "invalid_target_price"),
        ({"condition": "market"}, "invalid_target_price"),
        ({"stopLoss": -1}, "invalid_stop_loss"),
        ({"stopLoss": 70000, "takeProfit": 65000}, "invalid_stop_loss"),
        ({"takeProfit": "high"}, "invalid_take_profit"),
        ({"executedPrice": 0}, "invalid_price"),
        ({"executedPrice": DROP}, "invalid_price"),
    ],
)
def test_execution_rejections(overrides: dict, reason: str) -> None:
    assert reason_of(parse_execution, execution_doc(**overrides)) == reason


def test_spot_rejects_leverage_and_futures_actions() -> None:
    spot = {"symbol": "BTC-USDT", "symbolType": "spot", "action": "buy"}
    assert reason_of(parse_execution, execution_doc(**spot, leverage=3)) == "invalid_leverage"
    assert reason_of(parse_execution, execution_doc(**{**spot, "action": "long"})) == (
        "invalid_action"
    )
    order, _ = parse_execution(execution_doc(**spot, leverage=DROP))
    assert order.leverage == 1


def test_execution_keeps_levels_that_a_gapped_fill_passed() -> None:
    order, price = parse_execution(execution_doc(stopLoss=59000, executedPrice=58000))
    assert (order.stop_loss, price) == (D("59000"), D("58000"))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"stopLoss": 61000}, "invalid_stop_loss"),
        ({"takeProfit": 59000}, "invalid_take_profit"),
        ({"action": "short", "stopLoss": 59000}, "invalid_stop_loss"),
        ({"action": "short", "takeProfit": 61000}, "invalid_take_profit"),
        ({"details": {"status": "cancelled"}}, "invalid_status"),
        ({"details": "active"}, "invalid_status"),
    ],
)
def test_trigger_rejections(overrides: dict, reason: str) -> None:
    assert reason_of(parse_trigger, trigger_doc(**overrides)) == reason


def test_valid_trigger_parses_to_typed_values() -> None:
    order = parse_trigger(trigger_doc(stopLoss=58000, takeProfit=65000.5))
    assert (order.symbol, order.leverage, order.target_price) == ("XBTUSDTM", 3, D("60000"))
    assert (order.stop_loss, order.take_profit) == (D("58000"), D("65000.5"))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"positionType": "sideways"}, "invalid_position_type"),
        (
            {"symbol": "SOL-USDT", "symbolType": "spot", "positionType": "short", "leverage": 1},
            "invalid_position_type",
        ),
        ({"size": 0}, "invalid_size"),
        ({"averageEntryPrice": None}, "invalid_price"),
        ({"margin": -1}, "invalid_amount"),
        ({"openFee": -0.1}, "invalid_amount"),
        ({"details": DROP}, "invalid_status"),
        ({"details": {"status": "settled"}}, "invalid_status"),
        ({"details": {"status": "closing", "closeRequest": "now"}}, "invalid_close_request"),
        (
            {"details": {"status": "closing", "closeRequest": {"reason": "boredom"}}},
            "invalid_close_request",
        ),
        (
            {"details": {"status": "closing", "closeRequest": {"reason": "manual", "price": -3}}},
            "invalid_close_request",
        ),
        ({"details": {"status": "open", "stopLoss": "low"}}, "invalid_stop_loss"),
    ],
)
def test_position_rejections(overrides: dict, reason: str) -> None:
    assert reason_of(parse_position, position_doc(**overrides)) == reason


@pytest.mark.parametrize(
    ("venue", "symbol_type", "symbol"),
    [
        (DROP, "futures", "XBTUSDTM"),
        (None, "spot", "BTC-USDT"),
        ("kucoin", "futures", "SOLUSDTM"),
        ("kucoin", "spot", "SOL-USDT"),
        ("backpack", "futures", "SOL_USDC_PERP"),
        ("backpack", "spot", "SOL_USDC"),
        ("backpack", "futures", "1000BONK_USDC_PERP"),
    ],
)
def test_each_venue_accepts_its_own_symbol_forms(venue: object, symbol_type: str,
                                                 symbol: str) -> None:
    spot = symbol_type == "spot"
    order = parse_trigger(trigger_doc(
        venue=venue, symbolType=symbol_type, symbol=symbol, action="buy" if spot else "long",
        leverage=DROP if spot else 3))
    assert (order.symbol, str(order.symbol_type)) == (symbol, symbol_type)
    assert order.venue == (venue if isinstance(venue, str) else "kucoin")


@pytest.mark.parametrize(
    ("venue", "symbol_type", "symbol", "detail"),
    [
        ("backpack", "futures", "XBTUSDTM", "backpack futures symbol (BASE_USDC_PERP)"),
        ("backpack", "spot", "SOL-USDT", "backpack spot symbol (BASE_USDC)"),
        ("backpack", "futures", "SOL_USDC", "backpack futures symbol (BASE_USDC_PERP)"),
        ("backpack", "spot", "SOL_USDC_PERP", "backpack spot symbol (BASE_USDC)"),
        ("backpack", "futures", "SOL_USDT_PERP", "backpack futures symbol (BASE_USDC_PERP)"),
        ("backpack", "spot", "sol_usdc", "backpack spot symbol (BASE_USDC)"),
        ("kucoin", "futures", "SOL_USDC_PERP", "kucoin futures symbol (BASEUSDTM)"),
        (DROP, "spot", "SOL_USDC", "kucoin spot symbol (BASE-USDT)"),
    ],
)
def test_a_symbol_of_another_venue_is_rejected_with_a_clear_reason(
    venue: object, symbol_type: str, symbol: str, detail: str
) -> None:
    spot = symbol_type == "spot"
    doc = trigger_doc(venue=venue, symbolType=symbol_type, symbol=symbol,
                      action="buy" if spot else "long", leverage=DROP if spot else 3)
    with pytest.raises(Rejected) as caught:
        parse_trigger(doc)
    assert caught.value.reason == "invalid_symbol"
    assert caught.value.detail == f"{symbol!r} is not a {detail}"


@pytest.mark.parametrize("venue", ["bybit", "Backpack", "", 7, ["backpack"]])
def test_an_unknown_venue_is_rejected(venue: object) -> None:
    doc = execution_doc(venue=venue, symbol="SOL_USDC_PERP")
    assert reason_of(parse_execution, doc) == "invalid_venue"


def test_a_backpack_position_parses_with_its_venue() -> None:
    state = parse_position(position_doc(venue="backpack", symbol="SOL_USDC_PERP"))
    assert (state.symbol, state.venue) == ("SOL_USDC_PERP", "backpack")
    assert reason_of(parse_position, position_doc(venue="backpack")) == "invalid_symbol"
