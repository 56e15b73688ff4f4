"""The trading rules of DESIGN.md §3: fills, opening, closing, liquidation, conditions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import wraps
from typing import ParamSpec, TypeVar

from cogmora_core.config import TradingConfig
from cogmora_core.errors import Reason, Rejected
from cogmora_core.model import (
    CloseReason,
    Condition,
    FundingCharge,
    OpenedPosition,
    OrderRequest,
    PositionLevels,
    PositionState,
    PositionType,
    Settlement,
    SymbolType,
    Tick,
    TrailingStop,
    TriggerLevel,
)
from cogmora_core.money import HUNDRED, ONE, PERCENT_PLACES, PRICE_PLACES, ZERO, quantize

P = ParamSpec("P")
R = TypeVar("R")


def rejects_arithmetic(rule: Callable[P, R]) -> Callable[P, R]:
    """Turn any arithmetic failure of `rule` into `Rejected(out_of_range)`.

    `Decimal` raises `InvalidOperation`, `Overflow` or `DivisionByZero`
    (all `ArithmeticError`) when a result does not fit its context, e.g. a size
    of 2e20 rounded to 8 places. Callers catch `Rejected` and record it; an
    arithmetic error escaping would leave the document unsettled for good.
    """

    @wraps(rule)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return rule(*args, **kwargs)
        except ArithmeticError as error:
            raise Rejected(Reason.OUT_OF_RANGE,
                           f"{rule.__name__}: {type(error).__name__}") from None

    return guarded


def mid_price(bid: Decimal, ask: Decimal) -> Decimal:
    """Return the condition price of a book quote without a last trade: (bid + ask) / 2.

    Exact to the 12 decimal places prices are written with. Used by venues
    whose stream carries only the best bid and ask (Backpack's and Binance's
    bookTicker); fills still take the executable side (`fill_price`).
    """
    return quantize((bid + ask) / 2, PRICE_PLACES)


def fill_price(tick: Tick, buying: bool) -> Decimal:
    """Return the executable price: best ask to buy, best bid to sell, else the last price."""
    side = tick.best_ask if buying else tick.best_bid
    if side is not None and side > ZERO:
        return side
    return tick.price


def entry_is_buy(position_type: PositionType) -> bool:
    """Return whether opening a position of this side buys (longs buy, shorts sell)."""
    return position_type is PositionType.LONG


def exit_is_buy(position_type: PositionType) -> bool:
    """Return whether closing a position of this side buys (shorts buy back)."""
    return position_type is PositionType.SHORT


def liquidation_price(
    entry: Decimal, leverage: int, position_type: PositionType, maintenance_margin_rate: Decimal
) -> Decimal:
    """Return the isolated-margin liquidation price, rounded for writing.

    Long: entry × (1 − 1/leverage + mmr); short: entry × (1 + 1/leverage − mmr).
    """
    inverse = ONE / Decimal(leverage)
    if position_type is PositionType.LONG:
        factor = ONE - inverse + maintenance_margin_rate
    else:
        factor = ONE + inverse - maintenance_margin_rate
    return quantize(entry * factor, PRICE_PLACES)


@rejects_arithmetic
def opening_debit(order: OrderRequest, config: TradingConfig) -> Decimal:
    """Return what opening `order` debits, whatever the fill: margin (or cost) + fee.

    Spot: amount + amount × rate; futures: amount + amount × leverage × rate.
    """
    notional = order.amount * order.leverage
    return quantize(order.amount) + quantize(notional * config.taker_fee(order.symbol_type))


@rejects_arithmetic
def check_affordable(balance: Decimal, order: OrderRequest, config: TradingConfig) -> None:
    """Raise `Rejected(insufficient_balance)` before any sizing when `balance` cannot pay.

    Checked first, so that an amount no account could pay is refused for what
    it is, before it reaches arithmetic that could overflow.
    """
    debit = opening_debit(order, config)
    if balance < debit:
        raise Rejected(Reason.INSUFFICIENT_BALANCE, f"needs {debit}, balance is {balance}")


@rejects_arithmetic
def open_position(order: OrderRequest, fill: Decimal, config: TradingConfig) -> OpenedPosition:
    """Return the position `order` opens at `fill`, with size, margin and fee.

    Spot: fee = amount × rate, size = amount / fill. Futures: notional =
    amount × leverage, size = notional / fill, fee = notional × rate.
    Raises `Rejected` for a fill price that is not positive.
    """
    if fill <= ZERO:
        raise Rejected(Reason.INVALID_PRICE, f"fill price {fill} is not positive")
    rate = config.taker_fee(order.symbol_type)
    notional = order.amount * order.leverage
    liquidation: Decimal | None = None
    if order.symbol_type is SymbolType.FUTURES:
        liquidation = liquidation_price(
            fill, order.leverage, order.position_type, config.maintenance_margin_rate
        )
    size = quantize(notional / fill)
    if size <= ZERO:
        raise Rejected(Reason.INVALID_AMOUNT, f"amount {order.amount} buys nothing at {fill}")
    return OpenedPosition(
        symbol=order.symbol,
        symbol_type=order.symbol_type,
        position_type=order.position_type,
        size=size,
        entry_price=fill,
        leverage=order.leverage,
        margin=quantize(order.amount),
        open_fee=quantize(notional * rate),
        liquidation_price=liquidation,
        stop_loss=order.stop_loss,
        take_profit=order.take_profit,
        trailing_stop=order.trailing_stop,
        venue=order.venue,
    )


@rejects_arithmetic
def close_position(position: PositionState, close: Decimal, config: TradingConfig) -> Settlement:
    """Return the settlement of `position` closed at the fill price `close`.

    Spot: proceeds = size × close, fee = proceeds × rate, credit = proceeds −
    fee. Futures: gross = size × (close − entry) (long) or size × (entry −
    close) (short), fee = size × close × rate, credit = max(0, margin + gross
    − fee): isolated margin never takes more than the position's margin.
    pnl = credit + funding − (margin + open fee); funding taken from the
    margin is in `funding` and no longer in `margin`, so it counts once.
    """
    if close <= ZERO:
        raise Rejected(Reason.INVALID_PRICE, f"close price {close} is not positive")
    rate = config.taker_fee(position.symbol_type)
    value = position.size * close
    fee = value * rate
    if position.symbol_type is SymbolType.SPOT:
        gross = value - position.size * position.entry_price
        credit = value - fee
    else:
        move = close - position.entry_price
        gross = position.size * (move if position.position_type is PositionType.LONG else -move)
        credit = max(ZERO, position.margin + gross - fee)
    credit = quantize(credit)
    pnl = credit + position.funding - (position.margin + position.open_fee)
    opening_cost = position.margin + position.funding_from_margin + position.open_fee
    return Settlement(
        close_price=close,
        close_fee=quantize(fee),
        gross_pnl=quantize(gross),
        credit=credit,
        pnl=pnl,
        pnl_percent=pnl_percent(pnl, opening_cost),
    )


def pnl_percent(pnl: Decimal, opening_cost: Decimal) -> Decimal:
    """Return `pnl` as a percentage of what opening the position cost, rounded for writing."""
    if opening_cost <= ZERO:
        return ZERO
    return quantize(pnl / opening_cost * HUNDRED, PERCENT_PLACES)


class Crossing(StrEnum):
    """Which way the price must move to reach a level for it to fire."""

    #: Fires when the price falls to it: price <= level (long stop-loss and
    #: liquidation, short take-profit, `below` triggers).
    FALLING = "falling"
    #: Fires when the price rises to it: price >= level (the mirror images).
    RISING = "rising"

    def crossed(self, level: Decimal, price: Decimal) -> bool:
        """Return whether `price` has reached `level` from this side."""
        return price <= level if self is Crossing.FALLING else price >= level

    def first_met(self, levels: Iterable[Decimal]) -> Decimal:
        """Return the level a price moving this way meets first (falling: the highest)."""
        return max(levels) if self is Crossing.FALLING else min(levels)


def trigger_crossing(condition: Condition) -> Crossing | None:
    """Return the way a trigger's target fires: `below` falling, `above` rising (`market`: None)."""
    if condition is Condition.MARKET:
        return None
    return Crossing.FALLING if condition is Condition.BELOW else Crossing.RISING


def adverse_crossing(position_type: PositionType) -> Crossing:
    """Return the way a stop-loss, trailing stop or liquidation fires: long falling."""
    return Crossing.FALLING if position_type is PositionType.LONG else Crossing.RISING


def favourable_crossing(position_type: PositionType) -> Crossing:
    """Return the way a take-profit fires: long rising."""
    return Crossing.RISING if position_type is PositionType.LONG else Crossing.FALLING


def resting_levels(levels: TriggerLevel | PositionLevels) -> list[tuple[Crossing, Decimal]]:
    """Return (way it fires, level) for each fixed level of a trigger or a position.

    A trigger has its target (none for `market`); a position its stop-loss,
    liquidation price and take-profit, those it has. A trailing stop moves
    with the price, so it is no fixed level (see `trailing_hit`).
    """
    if isinstance(levels, TriggerLevel):
        crossing = trigger_crossing(levels.condition)
        if crossing is None or levels.target_price is None:
            return []
        return [(crossing, levels.target_price)]
    adverse = adverse_crossing(levels.position_type)
    found: list[tuple[Crossing, Decimal]] = []
    if levels.stop_loss is not None:
        found.append((adverse, levels.stop_loss))
    if levels.liquidation_price is not None:
        found.append((adverse, levels.liquidation_price))
    if levels.take_profit is not None:
        found.append((favourable_crossing(levels.position_type), levels.take_profit))
    return found


def trigger_fires(condition: Condition, target: Decimal | None, price: Decimal) -> bool:
    """Return whether a trigger fires at the last price (`market` always does)."""
    crossing = trigger_crossing(condition)
    if crossing is None:
        return True
    assert target is not None
    return crossing.crossed(target, price)


def stop_loss_hit(position_type: PositionType, stop_loss: Decimal, price: Decimal) -> bool:
    """Return whether the stop-loss is crossed: long at price <= stop, short at >=."""
    return adverse_crossing(position_type).crossed(stop_loss, price)


def take_profit_hit(position_type: PositionType, take_profit: Decimal, price: Decimal) -> bool:
    """Return whether the take-profit is crossed: long at price >= level, short at <=."""
    return favourable_crossing(position_type).crossed(take_profit, price)


def liquidation_hit(position_type: PositionType, liquidation: Decimal, price: Decimal) -> bool:
    """Return whether the liquidation price is crossed: long at price <= it, short at >=."""
    return stop_loss_hit(position_type, liquidation, price)


def close_reason(position: PositionState | PositionLevels, price: Decimal) -> CloseReason | None:
    """Return why `position` must close at the last `price`, or None.

    When one tick crosses several levels, liquidation wins over stop-loss,
    and stop-loss over take-profit (they cannot both be crossed by one price
    unless the levels are inverted).
    A trailing stop that is hit closes with reason `stop_loss` (see
    `trailing_hit` to tell it from the fixed stop).
    """
    side = position.position_type
    if position.liquidation_price is not None and liquidation_hit(
        side, position.liquidation_price, price
    ):
        return CloseReason.LIQUIDATION
    if position.stop_loss is not None and stop_loss_hit(side, position.stop_loss, price):
        return CloseReason.STOP_LOSS
    if trailing_hit(position, price):
        return CloseReason.STOP_LOSS
    if position.take_profit is not None and take_profit_hit(side, position.take_profit, price):
        return CloseReason.TAKE_PROFIT
    return None


class CloseDetail(StrEnum):
    """What fired within a close reason (`closeRequest.detail`, history `closeDetail`)."""

    #: A stop-loss close fired by the trailing stop alone (the fixed stop not crossed).
    TRAILING_STOP = "trailing_stop"
    #: A liquidation because a funding payment used up the margin.
    FUNDING = "funding"


def close_detail(position: PositionState | PositionLevels, price: Decimal) -> CloseDetail | None:
    """Return what fired within `close_reason(position, price)`, when it says more.

    A `stop_loss` close whose fixed stop-loss is not crossed was fired by the
    trailing stop: `trailing_stop`. When both are crossed the fixed stop is
    named (no detail). Anything else has no detail.
    """
    if close_reason(position, price) is not CloseReason.STOP_LOSS:
        return None
    if not trailing_hit(position, price):
        return None
    if position.stop_loss is not None and stop_loss_hit(position.position_type,
                                                        position.stop_loss, price):
        return None
    return CloseDetail.TRAILING_STOP


def close_fill(position_type: PositionType, tick: Tick) -> Decimal:
    """Return the fill price for closing a position of this side on `tick`."""
    return fill_price(tick, buying=exit_is_buy(position_type))


def open_fill(position_type: PositionType, tick: Tick) -> Decimal:
    """Return the fill price for opening a position of this side on `tick`."""
    return fill_price(tick, buying=entry_is_buy(position_type))


def check_balance(balance: Decimal, opened: OpenedPosition) -> None:
    """Raise `Rejected(insufficient_balance)` when `balance` cannot pay to open."""
    if balance < opened.debit:
        raise Rejected(
            Reason.INSUFFICIENT_BALANCE, f"needs {opened.debit}, balance is {balance}"
        )


def better_peak(position_type: PositionType, one: Decimal | None,
                other: Decimal | None) -> Decimal | None:
    """Return the more favourable of two peaks (long: the higher, short: the lower)."""
    if one is None or other is None:
        return other if one is None else one
    return max(one, other) if position_type is PositionType.LONG else min(one, other)


def advance_peak(position_type: PositionType, trailing: TrailingStop, peak: Decimal | None,
                 price: Decimal) -> Decimal | None:
    """Return the trailing stop's peak after the last `price`.

    Before activation (peak None) the price must reach the activation price,
    if there is one; after it the peak only ever moves in the position's favour.
    """
    long = position_type is PositionType.LONG
    if peak is None:
        activation = trailing.activation_price
        if activation is not None and (price < activation if long else price > activation):
            return None
        return price
    return better_peak(position_type, peak, price)


def trailing_stop_price(position_type: PositionType, trailing: TrailingStop,
                        peak: Decimal) -> Decimal:
    """Return the stop level for a peak: peak ∓ distance, or peak × (1 ∓ percent/100)."""
    long = position_type is PositionType.LONG
    if trailing.distance is not None:
        offset = trailing.distance
    else:
        assert trailing.percent is not None
        offset = peak * trailing.percent / HUNDRED
    return quantize(peak - offset if long else peak + offset, PRICE_PLACES)


def trailing_hit(position: PositionState | PositionLevels, price: Decimal) -> bool:
    """Return whether the active trailing stop of `position` is crossed at `price`."""
    if position.trailing_stop is None or position.peak is None:
        return False
    stop = trailing_stop_price(position.position_type, position.trailing_stop, position.peak)
    return stop_loss_hit(position.position_type, stop, price)


def held_at(opened: datetime | None, close_requested: datetime | None,
            funding_time: datetime) -> bool:
    """Return whether a position was open at `funding_time`, so that it pays or receives.

    Opened at or before it, and no close requested (None) or one requested
    after it. A position whose opening time is unknown (None) was not open.
    """
    if opened is None or opened > funding_time:
        return False
    return close_requested is None or close_requested > funding_time


@rejects_arithmetic
def funding_payment(position_type: PositionType, size: Decimal, mark_price: Decimal,
                    rate: Decimal) -> Decimal:
    """Return what funding moves into the balance, rounded for writing.

    Position value = size × mark price; a positive rate makes longs pay and
    shorts receive value × rate, a negative rate the reverse.
    """
    value = size * mark_price * rate
    return quantize(-value if position_type is PositionType.LONG else value)


def charge_funding(due: Decimal, balance: Decimal, margin: Decimal | None) -> FundingCharge:
    """Return how a funding payment `due` is settled without a balance going below zero.

    A receipt (`due` >= 0) goes to the free balance. A payment is taken from
    the free balance as far as it reaches, and the rest from the position's
    isolated `margin`, as an exchange does. When the rest reaches the whole
    margin, the position cannot be held any longer: `liquidates` is set and
    `from_margin` is the whole rest, for `funding_liquidation` to settle. A
    position already settled has no margin (`margin` None): what the balance
    cannot pay is written off as `shortfall`.
    """
    if due >= ZERO:
        return FundingCharge(due=due, balance_change=due)
    owed = -due
    paid = min(owed, max(balance, ZERO))
    rest = owed - paid
    if margin is None:
        return FundingCharge(due=due, balance_change=-paid, shortfall=rest)
    return FundingCharge(due=due, balance_change=-paid, from_margin=rest,
                         liquidates=rest > ZERO and rest >= margin)


def liquidation_after_margin_call(position: PositionState, taken: Decimal) -> Decimal | None:
    """Return the liquidation price once `taken` has left the isolated margin.

    Less margin brings the level nearer by taken / size (long: up, short:
    down), as entry × (1 ∓ margin / notional ± mmr) says; rounded for writing.
    A level that would not be positive is not moved.
    """
    level = position.liquidation_price
    if level is None or taken <= ZERO:
        return level
    shift = taken / position.size
    moved = quantize(level + shift if position.position_type is PositionType.LONG
                     else level - shift, PRICE_PLACES)
    return moved if moved > ZERO else level


def funding_liquidation(position: PositionState, charge: FundingCharge, mark: Decimal,
                        config: TradingConfig) -> tuple[FundingCharge, Settlement]:
    """Return the charge and the close of a position whose margin a funding payment used up.

    The position is closed at the funding's mark price, with the taker fee.
    What the free balance could not pay (`charge.from_margin`) comes out of
    the position's equity at that price (margin + gross − fee) as far as it
    reaches, and the close credits the balance with what is left of it; the
    remainder is written off (`shortfall`).
    """
    owed = charge.from_margin
    equity = close_position(position, mark, config).credit  # max(0, margin + gross − fee)
    taken = min(owed, equity)
    paying = replace(position, margin=position.margin - taken,
                     funding=position.funding + charge.balance_change - taken,
                     funding_from_margin=position.funding_from_margin + taken)
    settled = replace(charge, from_margin=taken, shortfall=owed - taken, liquidates=True)
    return settled, close_position(paying, mark, config)
