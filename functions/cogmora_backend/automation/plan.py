"""Typed input and output of the AI agent's flow (Pydantic, shared by every model)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from cogmora_core.config import AutomationConfig
from cogmora_core.model import Tick
from cogmora_core.venues import DEFAULT_VENUE


class WatchedMarket(BaseModel):
    """Market data the scraper wrote for one watchlist symbol."""

    symbol: str
    price: float | None = None
    change24h: float | None = Field(default=None, description="24 h change, percent")
    high24h: float | None = None
    low24h: float | None = None
    volume24h: float | None = None
    marketCap: float | None = None


class HeldPosition(BaseModel):
    """One open position of the user."""

    symbol: str
    symbolType: str
    positionType: str
    size: float
    averageEntryPrice: float
    leverage: int = 1


class MarketQuote(BaseModel):
    """A fresh price of a listed market from its exchange: what proposals are checked against."""

    symbol: str
    venue: str = DEFAULT_VENUE
    price: float = Field(description="last trade price")
    bestBid: float | None = None
    bestAsk: float | None = None
    timeMs: int | None = Field(default=None,
                               description="the exchange's time of the price, ms since the epoch")

    @classmethod
    def of(cls, tick: Tick, venue: str = DEFAULT_VENUE) -> MarketQuote:
        """Return the quote of an exchange tick (prices are exact in a float: 15 digits)."""
        return cls(symbol=tick.symbol, venue=venue, price=float(tick.price),
                   bestBid=None if tick.best_bid is None else float(tick.best_bid),
                   bestAsk=None if tick.best_ask is None else float(tick.best_ask),
                   timeMs=tick.time_ms)

    def tick(self) -> Tick:
        """Return the quote as the core's tick, every price exact."""
        return Tick(self.symbol, _exact(self.price), _exact_or_none(self.bestBid),
                    _exact_or_none(self.bestAsk), self.timeMs)


_DEFAULTS = AutomationConfig()


class AgentLimits(BaseModel):
    """The caps of `config/automation` every proposal is checked against (same names)."""

    maxLeverage: int = _DEFAULTS.max_leverage
    maxAmountPercent: float = Field(default=float(_DEFAULTS.max_amount_percent),
                                    description="largest amount of one proposal, % of balance")
    maxPriceDistancePercent: float = Field(
        default=float(_DEFAULTS.max_price_distance_percent),
        description="farthest a targetPrice may be from the market price, %")
    maxQuoteAgeSeconds: float = float(_DEFAULTS.max_quote_age_seconds)

    @classmethod
    def of(cls, config: AutomationConfig) -> AgentLimits:
        """Return the limits of a config."""
        return cls(maxLeverage=config.max_leverage,
                   maxAmountPercent=float(config.max_amount_percent),
                   maxPriceDistancePercent=float(config.max_price_distance_percent),
                   maxQuoteAgeSeconds=float(config.max_quote_age_seconds))

    def config(self) -> AutomationConfig:
        """Return the limits as the core's config."""
        return AutomationConfig.from_document(self.model_dump())


class AgentInput(BaseModel):
    """What the agent knows about the user when it proposes."""

    balance: float
    maxRiskPercent: float = Field(default=1.0, description="risk per proposal, % of balance")
    positions: list[HeldPosition] = Field(default_factory=list)
    watchlist: list[WatchedMarket] = Field(default_factory=list)
    quotes: list[MarketQuote] = Field(
        default_factory=list, description="the exchange's current prices of the listed "
        "watched markets; a proposal on a market without one is dropped")
    limits: AgentLimits = Field(default_factory=AgentLimits)


def _exact(value: float) -> Decimal:
    return Decimal(repr(value))


def _exact_or_none(value: float | None) -> Decimal | None:
    return None if value is None else _exact(value)


class Proposal(BaseModel):
    """A trade trigger the agent proposes (the fields of a `tradeTriggers` document)."""

    symbol: str
    symbolType: str
    condition: str
    targetPrice: float | None = None
    action: str
    amount: float
    leverage: int = 1
    stopLoss: float | None = None
    takeProfit: float | None = None
    rationale: str = ""


class ModelPlan(BaseModel):
    """What a model answers: proposals and a summary."""

    proposals: list[Proposal] = Field(default_factory=list)
    summary: str = ""


class DroppedProposal(BaseModel):
    """A proposal that failed validation, with the reason."""

    proposal: Proposal
    reason: str
    detail: str = ""


class AgentPlan(BaseModel):
    """The flow's output: the valid proposals, the dropped ones with reasons, the summary."""

    proposals: list[Proposal] = Field(default_factory=list)
    dropped: list[DroppedProposal] = Field(default_factory=list)
    summary: str = ""
    model: str = ""
