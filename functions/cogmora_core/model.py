"""Typed values of the trading domain (frozen dataclasses, Decimal money)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from cogmora_core.venues import DEFAULT_VENUE as DEFAULT_VENUE
from cogmora_core.venues import VENUES
from cogmora_core.venues import SymbolType as SymbolType
from cogmora_core.venues import Venue as Venue


class PositionType(StrEnum):
    LONG = "long"
    SHORT = "short"


class Action(StrEnum):
    """What a trigger opens: `buy` (spot long), `long` or `short` (futures)."""

    BUY = "buy"
    LONG = "long"
    SHORT = "short"

    @property
    def position_type(self) -> PositionType:
        """Return the side of the position this action opens."""
        return PositionType.SHORT if self is Action.SHORT else PositionType.LONG


class Condition(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    MARKET = "market"


class CloseReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Tick:
    """One market update: the last trade price and, when known, the best bid/ask."""

    symbol: str
    price: Decimal
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    #: Exchange time in milliseconds since the epoch, when the feed gives it.
    time_ms: int | None = None
    #: The venue and market quoted (set by the feed; equal ticks compare by price
    #: and time only). Without a market, the venue's symbol form says which.
    venue: str = field(default=DEFAULT_VENUE, compare=False)
    symbol_type: SymbolType | None = field(default=None, compare=False)

    @property
    def market(self) -> tuple[str, str, str]:
        """Return (venue, symbolType, symbol): the one market this tick quotes."""
        symbol_type = self.symbol_type
        if symbol_type is None:
            spec = VENUES.get(self.venue)  # type: ignore[call-overload]
            symbol_type = spec.market_of(self.symbol) if spec is not None else None
        return (self.venue, symbol_type or "", self.symbol)


@dataclass(frozen=True, slots=True)
class TrailingStop:
    """A stop that follows the price: `distance` (price) or `percent` below the peak.

    The peak (high-water mark) is the best last price since activation: the
    highest for a long, the lowest for a short. Until `activation_price` is
    reached (long: price >= it, short: price <= it) the stop does not exist.
    """

    distance: Decimal | None = None
    percent: Decimal | None = None
    activation_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated order: what a trigger or an execution asks to open."""

    symbol: str
    symbol_type: SymbolType
    action: Action
    amount: Decimal
    leverage: int
    condition: Condition
    target_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    venue: str = DEFAULT_VENUE
    trailing_stop: TrailingStop | None = None
    #: The other trigger of a one-cancels-other pair.
    oco_trigger_id: str | None = None

    @property
    def position_type(self) -> PositionType:
        """Return the side of the position this order opens."""
        return self.action.position_type

    @property
    def level(self) -> TriggerLevel:
        """Return the condition and target that decide when the order fires."""
        return TriggerLevel(self.condition, self.target_price)


@dataclass(frozen=True, slots=True)
class OpenedPosition:
    """What opening a position records, every value rounded for writing."""

    symbol: str
    symbol_type: SymbolType
    position_type: PositionType
    size: Decimal
    entry_price: Decimal
    leverage: int
    margin: Decimal
    open_fee: Decimal
    liquidation_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    trailing_stop: TrailingStop | None = None
    #: The exchange whose prices mark the position (copied from the order).
    venue: str = DEFAULT_VENUE

    @property
    def debit(self) -> Decimal:
        """Return what the balance pays to open: margin (or cost) plus the fee."""
        return self.margin + self.open_fee


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """The worker's mark on a position: why and at what fill price it closes."""

    reason: CloseReason
    price: Decimal | None
    source: str | None = None
    #: What fired within the reason: `trailing_stop` for a trailing stop-loss.
    detail: str | None = None
    #: Where the price came from when not a live tick: `gap_recovery`.
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerLevel:
    """What decides when a trigger fires: its condition and target."""

    condition: Condition
    target_price: Decimal | None


@dataclass(frozen=True, slots=True)
class PositionLevels:
    """What decides when a position must close: its side and its levels."""

    position_type: PositionType
    liquidation_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    trailing_stop: TrailingStop | None = None
    #: The trailing stop's high-water mark (None until activated).
    peak: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PositionState:
    """A validated `openPositions` document."""

    symbol: str
    symbol_type: SymbolType
    position_type: PositionType
    size: Decimal
    entry_price: Decimal
    leverage: int
    margin: Decimal
    open_fee: Decimal
    liquidation_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    status: str
    close_request: CloseRequest | None = None
    venue: str = DEFAULT_VENUE
    trailing_stop: TrailingStop | None = None
    peak: Decimal | None = None
    #: Funding paid (negative) or received (positive) so far, in quote money.
    funding: Decimal = Decimal(0)
    #: The part of the funding paid out of the isolated margin (`margin` is what
    #: is left): opening cost margin + funding_from_margin + open_fee.
    funding_from_margin: Decimal = Decimal(0)

    @property
    def levels(self) -> PositionLevels:
        """Return the side and levels that decide when the position closes."""
        return PositionLevels(self.position_type, self.liquidation_price, self.stop_loss,
                              self.take_profit, self.trailing_stop, self.peak)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What closing a position records, every value rounded for writing."""

    close_price: Decimal
    close_fee: Decimal
    gross_pnl: Decimal
    #: What the balance is credited: proceeds less fee (spot) or
    #: max(0, margin + gross − fee) (futures, isolated margin).
    credit: Decimal
    #: Everything returned minus everything paid, fees included.
    pnl: Decimal
    #: pnl as a percentage of what opening the position cost (margin + open fee).
    pnl_percent: Decimal


@dataclass(frozen=True, slots=True)
class FundingCharge:
    """How one funding payment is settled, every value rounded for writing.

    `due` is what the position owes (negative) or receives (positive):
    size × markPrice × rate with the side's sign. A receipt goes to the free
    balance. A payment comes out of the free balance as far as it reaches,
    then out of the position (`from_margin`); what neither can pay is written
    off (`shortfall`), so a balance never goes below zero.
    """

    due: Decimal
    #: What the free balance moves by (never more than it holds, when negative).
    balance_change: Decimal
    #: What the position pays out of its isolated margin (or, when it is
    #: liquidated, out of what its close returns); zero or positive.
    from_margin: Decimal = Decimal(0)
    #: What is owed but cannot be collected: written off; zero or positive.
    shortfall: Decimal = Decimal(0)
    #: The payment uses up the whole margin: the position is liquidated at the
    #: funding's mark price (see `trading.funding_liquidation`).
    liquidates: bool = False

    @property
    def amount(self) -> Decimal:
        """Return what the position paid (negative) or received (positive): due + shortfall."""
        return self.balance_change - self.from_margin
