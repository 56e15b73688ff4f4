"""Typed input and output of the AI agent's flow (Pydantic, shared by every model)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class AgentInput(BaseModel):
    """What the agent knows about the user when it proposes."""

    balance: float
    maxRiskPercent: float = Field(default=1.0, description="risk per proposal, % of balance")
    positions: list[HeldPosition] = Field(default_factory=list)
    watchlist: list[WatchedMarket] = Field(default_factory=list)


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
