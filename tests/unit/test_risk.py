"""The AI agent's risk rule (`cogmora_core.risk`): caps, fresh prices, the entry the market allows.

Balance 10,000 USDT and a 1 % budget (100 USDT) throughout; XBTUSDTM trades
at 88,000 (bid 87,999.9, ask 88,000.1). Expected values are worked out by hand.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cogmora_core.config import AutomationConfig
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import OrderRequest, Tick
from cogmora_core.risk import (
    ProposalAccepted,
    amount_for_budget,
    check_plan_proposal,
    check_proposal,
    loss_at_stop,
    risk_budget,
)
from tests.support.builders import DROP, trigger_doc

NOW_MS = 1_772_000_000_000
BALANCE, RISK = D(10000), D(1)
XBT = Tick("XBTUSDTM", D("88000"), D("87999.9"), D("88000.1"), NOW_MS)
DEFAULTS = AutomationConfig()
#: Only the budget binds: leverage, amount and distance caps opened up.
BUDGET_ONLY = AutomationConfig(max_leverage=100, max_amount_percent=D(100),
                               max_price_distance_percent=D(1000))


def order(**fields: object) -> OrderRequest:
    """Return a 10x long XBTUSDTM trigger with the fields given."""
    return parse_trigger(trigger_doc(**{"leverage": 10, **fields}))


def check(proposal: OrderRequest, quote: Tick | None = XBT, now_ms: int = NOW_MS,
          config: AutomationConfig = DEFAULTS) -> ProposalAccepted:
    return check_proposal(proposal, BALANCE, RISK, quote, now_ms, config)


def rejection(proposal: OrderRequest, **options: object) -> tuple[str, str]:
    with pytest.raises(Rejected) as raised:
        check(proposal, **options)  # type: ignore[arg-type]
    return raised.value.reason, raised.value.detail


ISSUE_12 = order(condition="above", targetPrice=1, amount=9000, leverage=100,
                 stopLoss=0.99999999)


def test_the_issue_proposal_is_over_the_leverage_cap() -> None:
    assert rejection(ISSUE_12) == (Reason.LEVERAGE_ABOVE_CAP, "leverage 100 > 10")


def test_the_issue_proposal_is_far_from_the_market() -> None:
    wide = AutomationConfig(max_leverage=100, max_amount_percent=D(100))
    assert rejection(ISSUE_12, config=wide) == (
        Reason.TARGET_FAR_FROM_MARKET,
        "targetPrice 1 is 100.00% from the market 88000 (at most 20%)")


def test_the_issue_proposal_risks_its_whole_margin_from_the_market_price() -> None:
    # Fires at once: entry = max(1, ask 88,000.1). Loss 9000 × 100 × (88000.1 − 1) / 88000.1
    # is above the margin, so the margin: 9,000 (the old rule measured 0.009 at the target).
    assert rejection(ISSUE_12, config=BUDGET_ONLY) == (
        Reason.OVER_RISK_BUDGET,
        "loss at stop 9000.00 > 100.00 USDT (entry 88000.1, the trigger fires at once: "
        "the worse of target and market)")


def test_a_long_above_a_target_the_market_passed_is_measured_from_the_ask() -> None:
    # At the target: 2000 × 10 × 1 / 87000 = 0.23. From the ask: 2000 × 10 × 1001.1 / 88000.1.
    proposal = order(condition="above", targetPrice=87000, amount=2000, stopLoss=86999)
    assert rejection(proposal) == (
        Reason.OVER_RISK_BUDGET,
        "loss at stop 227.52 > 100.00 USDT (entry 88000.1, the trigger fires at once: "
        "the worse of target and market)")


def test_a_trigger_the_market_has_not_reached_is_measured_at_its_target() -> None:
    # 900 × 10 × (90000 − 89000) / 90000 = 100: exactly the budget, kept.
    proposal = order(condition="above", targetPrice=90000, amount=900, stopLoss=89000)
    assert check(proposal) == ProposalAccepted(proposal, D(90000), False, D(100), D(100))
    over = order(condition="above", targetPrice=90000, amount=901, stopLoss=89000)
    assert rejection(over) == (
        Reason.OVER_RISK_BUDGET,
        "loss at stop 100.11 > 100.00 USDT (entry 90000, the target: the market has not "
        "reached it)")


def test_a_long_below_a_target_the_market_is_under_keeps_the_target_as_worst_entry() -> None:
    # Fires at once at the ask 88,000.1, but could fill up to 89,000 had the price
    # climbed back: 400 × 10 × 2000 / 89000.
    proposal = order(condition="below", targetPrice=89000, amount=400, stopLoss=87000)
    accepted = check(proposal)
    assert (accepted.entry_price, accepted.fires_at_once) == (D(89000), True)
    assert accepted.loss_at_stop == D(400) * 10 * 2000 / 89000


def test_a_stop_loss_above_the_fill_of_a_trigger_that_fires_at_once_is_rejected() -> None:
    proposal = order(condition="below", targetPrice=89000, amount=400, stopLoss=88500)
    assert rejection(proposal) == (
        Reason.INVALID_STOP_LOSS,
        "stopLoss 88500 must be below 88000.1 (the market: the trigger fires at once)")


def test_a_take_profit_below_the_fill_of_a_trigger_that_fires_at_once_is_rejected() -> None:
    proposal = order(condition="above", targetPrice=87000, amount=100, stopLoss=86000,
                     takeProfit=87500)
    assert rejection(proposal) == (
        Reason.INVALID_TAKE_PROFIT,
        "takeProfit 87500 must be above 88000.1 (the market: the trigger fires at once)")


def test_a_short_below_a_target_the_market_passed_is_measured_from_the_bid() -> None:
    # At the target: 450 × 10 × 1000 / 89000 = 50.56. From the bid: 4500 × 2000.1 / 87999.9.
    proposal = order(condition="below", targetPrice=89000, action="short", amount=450,
                     stopLoss=90000)
    assert rejection(proposal) == (
        Reason.OVER_RISK_BUDGET,
        "loss at stop 102.28 > 100.00 USDT (entry 87999.9, the trigger fires at once: "
        "the worse of target and market)")


def test_a_short_above_a_target_the_market_passed_keeps_the_target_as_worst_entry() -> None:
    proposal = order(condition="above", targetPrice=87000, action="short", amount=250,
                     stopLoss=90000)
    accepted = check(proposal)
    # 250 × 10 × 3000 / 87000
    assert (accepted.entry_price, accepted.fires_at_once) == (D(87000), True)
    assert accepted.loss_at_stop == D(2500) * 3000 / 87000


def test_a_market_order_enters_at_the_ask() -> None:
    proposal = order(condition="market", targetPrice=DROP, amount=100, stopLoss=87000)
    accepted = check(proposal)
    assert (accepted.entry_price, accepted.fires_at_once) == (D("88000.1"), True)
    assert accepted.loss_at_stop == D(1000) * D("1000.1") / D("88000.1")


def test_without_a_stop_loss_the_whole_amount_is_at_risk() -> None:
    assert check(order(condition="above", targetPrice=90000, amount=100)).loss_at_stop == D(100)
    assert rejection(order(condition="above", targetPrice=90000, amount=150)) == (
        Reason.OVER_RISK_BUDGET,
        "loss at stop 150.00 > 100.00 USDT (entry 90000, the target: the market has not "
        "reached it)")


def test_a_spot_buy_is_measured_like_a_one_x_long() -> None:
    btc = Tick("BTC-USDT", D("88000"), D("87999.99"), D("88000.01"), NOW_MS)
    proposal = parse_trigger(trigger_doc(symbol="BTC-USDT", symbolType="spot", action="buy",
                                         leverage=DROP, condition="above", targetPrice=90000,
                                         amount=2000, stopLoss=85500))
    # 2000 × 4500 / 90000
    assert check(proposal, quote=btc) == ProposalAccepted(proposal, D(90000), False, D(100),
                                                          D(100))


def test_an_unlisted_market_is_rejected_before_any_price_is_needed() -> None:
    proposal = order(symbol="AIXUSDTM", condition="above", targetPrice=90, amount=10,
                     stopLoss=89)
    assert rejection(proposal, quote=None) == (
        Reason.UNSUPPORTED_SYMBOL, "AIXUSDTM (futures) is not listed on kucoin")


def test_leverage_and_amount_caps() -> None:
    ok = dict(condition="above", targetPrice=90000, stopLoss=89990)
    assert check(order(amount=2500, leverage=10, **ok)).order.amount == D(2500)
    assert rejection(order(amount=100, leverage=11, **ok)) == (
        Reason.LEVERAGE_ABOVE_CAP, "leverage 11 > 10")
    assert rejection(order(amount=2500.01, **ok)) == (
        Reason.AMOUNT_ABOVE_CAP, "amount 2500.01 > 25% of the balance (2500.00)")


def test_a_target_at_the_distance_cap_passes_and_beyond_it_does_not() -> None:
    at_cap = order(condition="above", targetPrice=105600, amount=100, stopLoss=105000)
    assert check(at_cap).entry_price == D(105600)  # 17,600 / 88,000 = exactly 20 %
    assert rejection(order(condition="above", targetPrice=105700, amount=100,
                           stopLoss=105000)) == (
        Reason.TARGET_FAR_FROM_MARKET,
        "targetPrice 105700 is 20.11% from the market 88000 (at most 20%)")


def test_without_a_fresh_price_of_the_same_market_nothing_is_accepted() -> None:
    proposal = order(condition="above", targetPrice=90000, amount=100, stopLoss=89000)
    eth = Tick("ETHUSDTM", D("3000"), None, None, NOW_MS)
    untimed = Tick("XBTUSDTM", D("88000"))
    assert rejection(proposal, quote=None) == (
        Reason.NO_FRESH_PRICE, "no kucoin price for XBTUSDTM")
    assert rejection(proposal, quote=eth) == (
        Reason.NO_FRESH_PRICE, "the price given is ETHUSDTM's, not XBTUSDTM's")
    assert rejection(proposal, quote=untimed) == (
        Reason.NO_FRESH_PRICE, "the XBTUSDTM price has no time")
    assert check(proposal, now_ms=NOW_MS + 60_000).fires_at_once is False  # 60 s: fresh
    assert rejection(proposal, now_ms=NOW_MS + 60_001) == (
        Reason.NO_FRESH_PRICE, "the XBTUSDTM price is 60.001 s old (at most 60 s)")
    assert rejection(proposal, now_ms=NOW_MS - 61_000) == (
        Reason.NO_FRESH_PRICE, "the XBTUSDTM price is -61 s old (at most 60 s)")


def test_a_price_without_a_book_uses_the_last_price() -> None:
    last_only = Tick("XBTUSDTM", D("88000"), None, None, NOW_MS)
    proposal = order(condition="above", targetPrice=87000, amount=20, stopLoss=86000)
    assert check(proposal, quote=last_only).entry_price == D(88000)


def test_automation_config_defaults_and_overrides() -> None:
    assert AutomationConfig.from_document(None) == AutomationConfig(
        max_leverage=10, max_amount_percent=D(25), max_price_distance_percent=D(20),
        max_quote_age_seconds=D(60))
    config = AutomationConfig.from_document({
        "maxLeverage": 5.0, "maxAmountPercent": 12.5, "maxPriceDistancePercent": 30,
        "maxQuoteAgeSeconds": 20})
    assert config == AutomationConfig(max_leverage=5, max_amount_percent=D("12.5"),
                                      max_price_distance_percent=D(30),
                                      max_quote_age_seconds=D(20))
    assert isinstance(config.max_leverage, int) and config.problems == ()


def test_automation_config_ignores_bad_fields_and_says_why() -> None:
    config = AutomationConfig.from_document({
        "maxLeverage": 2.5, "maxAmountPercent": "50", "maxPriceDistancePercent": 0,
        "maxQuoteAgeSeconds": True, "somethingElse": 1})
    assert config == AutomationConfig()
    assert config.problems == (
        "maxLeverage: invalid value 2.5, default used",
        "maxAmountPercent: invalid value '50', default used",
        "maxPriceDistancePercent: invalid value 0, default used",
        "maxQuoteAgeSeconds: invalid value True, default used")
    assert AutomationConfig.from_document({"maxLeverage": 101}).max_leverage == 10
    assert AutomationConfig.from_document({"maxAmountPercent": float("nan")}).problems == (
        "maxAmountPercent: invalid value nan, default used",)


# The whole rule for one proposal of a plan, and the budget's arithmetic.

def plan_check(proposal: OrderRequest, committed: D = D(0)) -> ProposalAccepted:
    return check_plan_proposal(proposal, committed, BALANCE, RISK, XBT, NOW_MS, DEFAULTS)


def test_a_plan_proposal_needs_a_stop_loss_before_anything_else() -> None:
    # Unlisted and without a stop: the missing stop is named first.
    no_stop = order(symbol="AIXUSDTM", condition="above", targetPrice=90, amount=10)
    with pytest.raises(Rejected) as raised:
        plan_check(no_stop)
    assert (raised.value.reason, raised.value.detail) == (
        Reason.MISSING_STOP_LOSS, "every proposal needs a stop-loss")


def test_a_plan_proposal_passes_the_caps_and_budget_then_the_balance_left() -> None:
    # 900 × 10 × 1000 / 90000 = 100: exactly the budget.
    proposal = order(condition="above", targetPrice=90000, amount=900, stopLoss=89000)
    assert plan_check(proposal, D(9100)) == ProposalAccepted(proposal, D(90000), False, D(100),
                                                             D(100))
    with pytest.raises(Rejected) as raised:
        plan_check(proposal, D("9100.01"))
    assert (raised.value.reason, raised.value.detail) == (
        Reason.INSUFFICIENT_BALANCE, "10000.01 > balance 10000")
    # The caps and budget are judged before the balance left.
    over = order(condition="above", targetPrice=90000, amount=901, stopLoss=89000)
    with pytest.raises(Rejected) as raised:
        plan_check(over, D(9500))
    assert raised.value.reason == Reason.OVER_RISK_BUDGET


def test_the_risk_budget_and_the_amount_it_allows_are_exact() -> None:
    assert risk_budget(D(10000), D(1)) == D(100)
    assert risk_budget(D("1234.56"), D("2.5")) == D("30.864")
    # The inverse of the loss at the stop: 100 × 90000 / (10 × 1000) = 900.
    assert amount_for_budget(D(100), D(90000), D(89000), 10) == D(900)
    # Short (stop above): 100 × 87999.9 / (10 × 2000.1) = 439.9775...
    amount = amount_for_budget(D(100), D("87999.9"), D(90000), 10)
    assert amount == D(100) * D("87999.9") / (10 * D("2000.1"))
    assert str(amount) == "439.9775011249437528123593820"
    short = order(condition="below", targetPrice=89000, action="short", amount=439, stopLoss=90000)
    assert loss_at_stop(short, D("87999.9")) == D(439) * 10 * D("2000.1") / D("87999.9")
