"""The AI agent's risk rule: a proposal is measured against the market it will meet.

A proposal is an order the agent wants armed as a trigger. Before it is
kept (`check_plan_proposal`), it must have a stop-loss, be on a listed
market, within the caps of `AutomationConfig` (leverage, amount, distance of
the target from the market), checked against a fresh market price; its loss
at the stop-loss must fit the risk budget (`maxRiskPercent` of the balance),
and the amounts of a plan's kept proposals together may not pass the balance.

**The entry the loss is measured from.** The old rule measured at the
target, as if every trigger filled there; a trigger the market has already
met does not wait for its target, it fires on the next tick at the market
(DESIGN.md §3). So, with T the target and the market's executable price A
(the ask to buy, the bid to sell; the last price when the book is unknown):

- a trigger the market has not met (`above` with the last price below T,
  `below` with it above T) fills at T: the entry is T;
- a trigger the market has met fires at once. The entry is the worse of T
  and A for the position: for a long (a higher entry loses more to a stop
  below it) max(T, A), for a short min(T, A). For `above` on a long that is
  the market (the issue: `above 1` with the market at 88,000 enters at
  88,000); for `below` on a long it stays T, the highest the fill can be
  should the price climb back over T before the trigger is armed. A short
  mirrors it: `below` enters at the bid, `above` stays at T;
- a market order (`condition: market`) enters at A.

Loss at the stop = amount × leverage × |entry − stop| / entry, at most the
amount (isolated margin: a futures position never loses more than its
margin; a spot position holds what it cost). Without a stop-loss the whole
amount is at risk. Fees are not counted (the budget is the price risk, as
the built-in model sizes it); a price that gaps through the stop is not
modelled (no stop-loss estimate can). A trigger that fires at once must also
have its stop-loss and take-profit on the right side of the fill it will
get, or the position would close on its first tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cogmora_core.config import AutomationConfig
from cogmora_core.errors import Reason, Rejected
from cogmora_core.markets import listed_market
from cogmora_core.model import Condition, OrderRequest, PositionType, Tick
from cogmora_core.money import HUNDRED, ZERO
from cogmora_core.trading import open_fill, rejects_arithmetic, trigger_fires
from cogmora_core.validation import check_levels


@dataclass(frozen=True, slots=True)
class ProposalAccepted:
    """A proposal within the caps and the budget, with what it was measured at."""

    order: OrderRequest
    #: The entry the loss was measured from (see the module's doc).
    entry_price: Decimal
    #: Whether the market has already met the trigger: it fires on the next tick.
    fires_at_once: bool
    loss_at_stop: Decimal
    risk_budget: Decimal


def worst_entry(order: OrderRequest, quote: Tick) -> tuple[Decimal, bool]:
    """Return (the entry to measure the loss from, whether the trigger fires at once)."""
    fill_now = open_fill(order.position_type, quote)
    if order.condition is Condition.MARKET or order.target_price is None:
        return fill_now, True
    target = order.target_price
    if not trigger_fires(order.condition, target, quote.price):
        return target, False
    if order.position_type is PositionType.LONG:
        return max(target, fill_now), True
    return min(target, fill_now), True


def risk_budget(balance: Decimal, max_risk_percent: Decimal) -> Decimal:
    """Return the most one proposal may lose at its stop: `max_risk_percent` of `balance`."""
    return balance * max_risk_percent / HUNDRED


def amount_for_budget(budget: Decimal, entry: Decimal, stop_loss: Decimal,
                      leverage: int) -> Decimal:
    """Return the amount whose loss at `stop_loss` from `entry` is exactly `budget`.

    The inverse of `loss_at_stop`: budget × entry / (leverage × |entry − stop|),
    unrounded (the caller rounds down and caps it).
    """
    return budget * entry / (leverage * abs(entry - stop_loss))


def loss_at_stop(order: OrderRequest, entry: Decimal) -> Decimal:
    """Return what the order loses at its stop-loss from `entry`, at most its amount."""
    if order.stop_loss is None:
        return order.amount
    # Multiply before dividing: a loss sized to the budget comes out exactly at it.
    return min(order.amount, order.amount * order.leverage * abs(entry - order.stop_loss) / entry)


@rejects_arithmetic
def check_proposal(order: OrderRequest, balance: Decimal, max_risk_percent: Decimal,
                   quote: Tick | None, now_ms: int,
                   config: AutomationConfig) -> ProposalAccepted:
    """Return the accepted proposal, or raise `Rejected` with the first rule it breaks.

    `quote` is the freshest price of the order's market on its venue (None
    when none could be had), `now_ms` the time it is judged at. In order:
    `unsupported_symbol` (not in `markets.py`), `leverage_above_cap`,
    `amount_above_cap`, `no_fresh_price` (none, another symbol's, or older
    than `maxQuoteAgeSeconds`), `target_far_from_market`,
    `invalid_stop_loss` / `invalid_take_profit` (on the wrong side of the
    fill a trigger that fires at once gets), `over_risk_budget`.
    """
    if listed_market(order.symbol, order.symbol_type, order.venue) is None:
        raise Rejected(Reason.UNSUPPORTED_SYMBOL,
                       f"{order.symbol} ({order.symbol_type}) is not listed on {order.venue}")
    if order.leverage > config.max_leverage:
        raise Rejected(Reason.LEVERAGE_ABOVE_CAP,
                       f"leverage {order.leverage} > {config.max_leverage}")
    amount_cap = balance * config.max_amount_percent / HUNDRED
    if order.amount > amount_cap:
        raise Rejected(Reason.AMOUNT_ABOVE_CAP,
                       f"amount {_plain(order.amount)} > {_plain(config.max_amount_percent)}% "
                       f"of the balance ({amount_cap:.2f})")
    _check_fresh(order, quote, now_ms, config)
    assert quote is not None
    target = order.target_price
    if target is not None:
        distance = abs(target - quote.price) / quote.price * HUNDRED
        if distance > config.max_price_distance_percent:
            raise Rejected(Reason.TARGET_FAR_FROM_MARKET,
                           f"targetPrice {_plain(target)} is {distance:.2f}% from the market "
                           f"{_plain(quote.price)} (at most "
                           f"{_plain(config.max_price_distance_percent)}%)")
    entry, at_once = worst_entry(order, quote)
    if at_once:
        try:
            check_levels(order.position_type, open_fill(order.position_type, quote),
                         order.stop_loss, order.take_profit)
        except Rejected as wrong_side:
            raise Rejected(wrong_side.reason, f"{wrong_side.detail} (the market: the trigger "
                           "fires at once)") from None
    loss = loss_at_stop(order, entry)
    budget = risk_budget(balance, max_risk_percent)
    if loss > budget:
        source = ("the trigger fires at once: the worse of target and market" if at_once
                  else "the target: the market has not reached it")
        raise Rejected(Reason.OVER_RISK_BUDGET,
                       f"loss at stop {loss:.2f} > {budget:.2f} USDT "
                       f"(entry {_plain(entry)}, {source})")
    return ProposalAccepted(order, entry, at_once, loss, budget)


def _check_fresh(order: OrderRequest, quote: Tick | None, now_ms: int,
                 config: AutomationConfig) -> None:
    if quote is None:
        raise Rejected(Reason.NO_FRESH_PRICE, f"no {order.venue} price for {order.symbol}")
    if quote.symbol != order.symbol or quote.price <= ZERO:
        raise Rejected(Reason.NO_FRESH_PRICE,
                       f"the price given is {quote.symbol}'s, not {order.symbol}'s")
    if quote.time_ms is None:
        raise Rejected(Reason.NO_FRESH_PRICE, f"the {order.symbol} price has no time")
    age = Decimal(now_ms - quote.time_ms) / 1000
    # A price stamped in the future is no more trustworthy than an old one.
    if abs(age) > config.max_quote_age_seconds:
        raise Rejected(Reason.NO_FRESH_PRICE,
                       f"the {order.symbol} price is {_plain(age)} s old "
                       f"(at most {_plain(config.max_quote_age_seconds)} s)")


def _plain(value: Decimal) -> str:
    """Return `value` without exponent or trailing zeros, for a detail (25.0 → 25)."""
    return format(value.normalize(), "f")


@rejects_arithmetic
def check_plan_proposal(order: OrderRequest, committed: Decimal, balance: Decimal,
                        max_risk_percent: Decimal, quote: Tick | None, now_ms: int,
                        config: AutomationConfig) -> ProposalAccepted:
    """Return one proposal of a plan accepted, or raise `Rejected` with the first rule it breaks.

    The agent's whole rule, whichever model wrote the plan: a stop-loss is
    required (`missing_stop_loss`), then `check_proposal`, then the amounts of
    the plan's proposals kept so far (`committed`) and this one together may
    not pass the balance (`insufficient_balance`).
    """
    if order.stop_loss is None:
        raise Rejected(Reason.MISSING_STOP_LOSS, "every proposal needs a stop-loss")
    accepted = check_proposal(order, balance, max_risk_percent, quote, now_ms, config)
    if committed + order.amount > balance:
        raise Rejected(Reason.INSUFFICIENT_BALANCE,
                       f"{committed + order.amount} > balance {balance}")
    return accepted
