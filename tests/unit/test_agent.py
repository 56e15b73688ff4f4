"""The AI agent's flow: the built-in strategy's exact plan, and validation with reasons."""

from __future__ import annotations

import asyncio
import json

from genkit import ActionRunContext, Message, ModelRequest, ModelResponse, Part

from cogmora_backend.automation.agent import Agent, read_prompt_input, render_prompt
from cogmora_backend.automation.plan import (
    AgentInput,
    AgentPlan,
    HeldPosition,
    Proposal,
    WatchedMarket,
)
from cogmora_core.validation import parse_trigger

SOL = WatchedMarket(symbol="SOLUSDTM", price=141.5, change24h=2.5, high24h=142, low24h=134)
ETH = WatchedMarket(symbol="ETHUSDTM", price=3050, change24h=-0.5, high24h=3060, low24h=2950)
BTC = WatchedMarket(symbol="BTC-USDT", price=86100, change24h=-1.2, high24h=88000,
                    low24h=86000)
MID = WatchedMarket(symbol="XBTUSDTM", price=60000, change24h=1, high24h=61000, low24h=59000)


def run(agent: Agent, data: AgentInput) -> AgentPlan:
    return asyncio.run(agent.propose(data))


def test_builtin_model_plans_exact_levels_and_sizes() -> None:
    plan = run(Agent(), AgentInput(balance=10000, maxRiskPercent=1,
                                   watchlist=[SOL, ETH, BTC, MID]))

    assert isinstance(plan, AgentPlan) and plan.model == "cogmora/rules-v1"
    assert [p.symbol for p in plan.proposals] == ["BTC-USDT", "ETHUSDTM", "SOLUSDTM"]
    btc, eth, sol = plan.proposals
    # breakout: entry 142 × 1.001, stop −R/2 (R = 8), TP +R, amount 100 × 142.142 / (3 × 4)
    assert (sol.condition, sol.action, sol.leverage) == ("above", "long", 3)
    assert (sol.targetPrice, sol.stopLoss, sol.takeProfit) == (142.142, 138.142, 150.142)
    assert sol.amount == 1184.51
    # fade: short above 3060 × 1.001, stop +55, TP −110, amount 100 × 3063.06 / (3 × 55)
    assert (eth.action, eth.targetPrice, eth.stopLoss, eth.takeProfit) == (
        "short", 3063.06, 3118.06, 2953.06)
    assert eth.amount == 1856.4
    # mean reversion (spot): buy below 86000 × 0.999, stop −1000, TP +1000, capped at 2000
    assert (btc.condition, btc.action, btc.targetPrice) == ("below", "buy", 85914)
    assert (btc.stopLoss, btc.takeProfit, btc.amount) == (84914, 86914, 2000)
    assert plan.dropped == []
    for proposal in plan.proposals:  # every kept proposal is a valid trigger
        parse_trigger({**proposal.model_dump(exclude={"rationale"}),
                       "details": {"status": "active"}})


def test_builtin_model_skips_held_symbols() -> None:
    held = HeldPosition(symbol="SOLUSDTM", symbolType="futures", positionType="long",
                        size=1, averageEntryPrice=140, leverage=3)
    plan = run(Agent(), AgentInput(balance=10000, positions=[held], watchlist=[SOL]))
    assert plan.proposals == []


def test_prompt_lives_in_the_repo_and_carries_the_input() -> None:
    data = AgentInput(balance=1234.5, watchlist=[SOL])
    prompt = render_prompt(data)
    assert "stopLoss" in prompt and "maxRiskPercent" in prompt
    assert read_prompt_input(prompt) == data


BAD = [
    Proposal(symbol="SOLUSDTM", symbolType="futures", condition="above", targetPrice=142,
             action="long", amount=100, leverage=3, stopLoss=143, takeProfit=150),
    Proposal(symbol="SOLUSDTM", symbolType="options", condition="above", targetPrice=142,
             action="long", amount=100, leverage=3, stopLoss=138, takeProfit=150),
    Proposal(symbol="SOLUSDTM", symbolType="futures", condition="above", targetPrice=142,
             action="long", amount=100, leverage=3),
    Proposal(symbol="SOLUSDTM", symbolType="futures", condition="above", targetPrice=142,
             action="long", amount=5000, leverage=10, stopLoss=130, takeProfit=150),
    Proposal(symbol="XBTUSDTM", symbolType="futures", condition="below", targetPrice=60000,
             action="long", amount=900, leverage=1, stopLoss=59990, takeProfit=61000),
    Proposal(symbol="ETHUSDTM", symbolType="futures", condition="below", targetPrice=3000,
             action="long", amount=900, leverage=1, stopLoss=2999, takeProfit=3100),
]


def test_invalid_proposals_are_dropped_with_their_reasons() -> None:
    agent = Agent()

    async def scripted(request: ModelRequest, context: ActionRunContext) -> ModelResponse:
        body = json.dumps({"proposals": [p.model_dump() for p in BAD], "summary": "bad"})
        return ModelResponse(message=Message(role="model", content=[Part(text=body)]))

    agent.ai.define_model(name="test/scripted", fn=scripted)
    agent.model = "test/scripted"

    plan = run(agent, AgentInput(balance=1000, maxRiskPercent=2))

    assert [d.reason for d in plan.dropped] == [
        "invalid_stop_loss", "unknown_symbol_type", "missing_stop_loss", "over_risk_budget",
        "insufficient_balance"]
    assert [p.symbol for p in plan.proposals] == ["XBTUSDTM"]
    assert (plan.summary, plan.model) == ("bad", "test/scripted")


def test_a_chatty_model_answer_still_parses_through_genkits_lenient_parser() -> None:
    agent = Agent()
    proposal = BAD[4].model_dump()

    async def chatty(request: ModelRequest, context: ActionRunContext) -> ModelResponse:
        body = ("Here is the plan:\n```json\n{\"proposals\": [" + json.dumps(proposal) +
                ",], \"summary\": \"one idea\",}\n```")
        return ModelResponse(message=Message(role="model", content=[Part(text=body)]))

    agent.ai.define_model(name="test/chatty", fn=chatty)
    agent.model = "test/chatty"

    plan = run(agent, AgentInput(balance=1000, maxRiskPercent=2))

    assert [p.symbol for p in plan.proposals] == ["XBTUSDTM"]
    assert plan.summary == "one idea"


def test_gemini_is_used_only_with_a_real_key() -> None:
    from cogmora_backend.automation.agent import gemini_key

    assert gemini_key({}) is None
    assert gemini_key({"GEMINI_API_KEY": " none "}) is None
    assert gemini_key({"GEMINI_API_KEY": "OFF"}) is None
    assert gemini_key({"GEMINI_API_KEY": "AIza-example"}) == "AIza-example"
