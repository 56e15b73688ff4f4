"""The AI agent: the Genkit flow `proposeTradeTriggers` and what it writes.

The flow renders the prompt in `prompt.md` with the user's data, asks a model
for a typed `ModelPlan`, and validates every proposal with the trading core
(levels, symbol type, the caps of `config/automation`, the loss at the stop
measured against the fresh market price within the risk budget, amounts
within the balance); invalid ones are dropped with their reasons. The model
is Gemini through the Google AI plugin when a `GEMINI_API_KEY` is configured,
else the built-in model `cogmora/rules-v1` (the strategy in `strategy.py`),
registered with Genkit so the same flow, and the same checks, run offline, in
the emulator and in tests.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from genkit import ActionRunContext, Genkit, Message, ModelRequest, ModelResponse, Part

# The types of Genkit's public `define_format` (the version is pinned).
from genkit._ai._formats._json import JsonFormat
from genkit._ai._formats._types import Formatter

from cogmora_backend.automation import strategy
from cogmora_backend.automation.plan import (
    AgentInput,
    AgentPlan,
    DroppedProposal,
    ModelPlan,
    Proposal,
)
from cogmora_core.contract import triggers
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.errors import Rejected
from cogmora_core.risk import check_plan_proposal

PROMPT = (Path(__file__).parent / "prompt.md").read_text()
GEMINI_MODEL = "googleai/gemini-2.5-flash"
_INPUT_BLOCK = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def output_schema() -> dict[str, Any]:
    """Return the JSON schema of `ModelPlan` as every model and Genkit read it best.

    Nullable scalars become `type: [X, "null"]` (the Gemini plugin drops
    `anyOf` properties but maps type lists to `nullable`), and the schema
    declares draft-07, whose meta-schema check (Genkit runs it on every
    call) costs a thirtieth of draft 2020-12's with its dynamic references.
    """

    def simplify(node: Any) -> Any:
        if isinstance(node, dict):
            options = node.get("anyOf")
            if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
                other = next(o for o in options if o != {"type": "null"})
                if set(other) == {"type"} and isinstance(other["type"], str):
                    rest = {k: simplify(v) for k, v in node.items() if k != "anyOf"}
                    return {**rest, "type": [other["type"], "null"]}
            return {key: simplify(value) for key, value in node.items()}
        if isinstance(node, list):
            return [simplify(item) for item in node]
        return node

    return {"$schema": "http://json-schema.org/draft-07/schema#",
            **simplify(ModelPlan.model_json_schema())}


OUTPUT_SCHEMA = output_schema()
OUTPUT_FORMAT = "cogmora-json"


class StrictFirstJsonFormat(JsonFormat):
    """Genkit's `json` output format, reading well-formed JSON with the C parser first.

    Genkit parses every model answer with a lenient pure-Python JSON5 parser
    (several times per call); for a well-formed answer `json.loads` gives the
    same value far faster, and anything else still goes to Genkit's parser.
    The request still says `json`, so models keep their JSON mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self.name = OUTPUT_FORMAT

    def handle(self, schema: dict[str, object] | None) -> Formatter[Any, Any]:
        """Return Genkit's JSON formatter with a strict-first message parser."""
        lenient = super().handle(schema)

        def parse(message: Message) -> Any:
            text = message.text.strip()
            try:
                return json.loads(text)
            except ValueError:
                return lenient.parse_message(message)

        return Formatter(message_parser=parse, chunk_parser=lenient.parse_chunk,
                         instructions=lenient.instructions)


def render_prompt(data: AgentInput) -> str:
    """Return the prompt with the user's data in its JSON block."""
    return PROMPT.replace("{{input_json}}", data.model_dump_json(indent=2))


def read_prompt_input(prompt: str) -> AgentInput:
    """Return the data the prompt carries (what the built-in model reads)."""
    found = _INPUT_BLOCK.search(prompt)
    if found is None:
        raise ValueError("the prompt carries no JSON block of input data")
    return AgentInput.model_validate_json(found.group(1))


def validate(plan: ModelPlan, data: AgentInput, model: str) -> AgentPlan:
    """Keep the proposals the core accepts within the caps and the budget; drop the rest.

    Every proposal, whichever model wrote it, must be a valid trigger and
    pass `cogmora_core.risk.check_plan_proposal` against the fresh market
    price in `data.quotes` (a stop-loss, listed market, leverage and amount
    caps, target near the market, loss at the stop from the entry the market
    allows within maxRiskPercent of the balance, the kept proposals' amounts
    together within the balance). A dropped proposal keeps its reason
    (`errors.Reason`) and detail. A quote's age is judged now, after
    the model has answered.
    """
    balance = Decimal(repr(data.balance))
    max_risk = Decimal(repr(data.maxRiskPercent))
    config = data.limits.config()
    quotes = {(quote.venue, quote.symbol): quote.tick() for quote in data.quotes}
    now = int(time.time() * 1000)
    committed = Decimal(0)
    kept: list[Proposal] = []
    dropped: list[DroppedProposal] = []
    for proposal in plan.proposals:
        try:
            order = parse_trigger(trigger_document(proposal))
            check_plan_proposal(order, committed, balance, max_risk,
                                quotes.get((order.venue, order.symbol)), now, config)
        except Rejected as rejection:
            dropped.append(DroppedProposal(proposal=proposal, reason=rejection.reason,
                                           detail=rejection.detail))
            continue
        committed += order.amount
        kept.append(proposal)
    return AgentPlan(proposals=kept, dropped=dropped, summary=plan.summary, model=model)


def trigger_document(proposal: Proposal) -> dict[str, Any]:
    """Return the `tradeTriggers` document of a proposal (status `active`)."""
    document: dict[str, Any] = {
        key: value for key, value in proposal.model_dump().items()
        if key != "rationale" and value is not None
    }
    if proposal.symbolType == "spot" and proposal.leverage == 1:
        document.pop("leverage")
    return triggers.trigger_document(document)


async def builtin_model(request: ModelRequest[Any],
                        context: ActionRunContext) -> ModelResponse:
    """Answer a prompt with the strategy's plan: the built-in, offline, deterministic model."""
    prompt = "".join(part.text or "" for message in request.messages
                     for part in message.content)
    plan = strategy.propose(read_prompt_input(prompt))
    return ModelResponse(message=Message(role="model",
                                         content=[Part(text=plan.model_dump_json())]))


class Agent:
    """A Genkit instance with the flow and the chosen model, built on first use."""

    def __init__(self, gemini_api_key: str | None = None) -> None:
        plugins: list[Any] = []
        if gemini_api_key:
            from genkit_google_genai import GoogleAI

            os.environ.setdefault("GEMINI_API_KEY", gemini_api_key)
            plugins.append(GoogleAI())
            self.model = GEMINI_MODEL
        else:
            self.model = strategy.NAME
        self.ai = Genkit(plugins=plugins)

        self.ai.define_model(name=strategy.NAME, fn=builtin_model)
        self.ai.define_format(StrictFirstJsonFormat())
        agent = self

        @self.ai.flow(name="proposeTradeTriggers")
        async def propose_trade_triggers(data: AgentInput) -> AgentPlan:
            response = await agent.ai.generate(model=agent.model, prompt=render_prompt(data),
                                               output_schema=OUTPUT_SCHEMA,
                                               output_format=OUTPUT_FORMAT)
            output = response.output
            plan = output if isinstance(output, ModelPlan) else ModelPlan.model_validate(
                output if isinstance(output, dict) else json.loads(response.text))
            return validate(plan, data, agent.model)

        self.flow = propose_trade_triggers

    async def propose(self, data: AgentInput) -> AgentPlan:
        """Run the flow for `data`."""
        return await self.flow(data)


#: GEMINI_API_KEY values that mean "no key: use the built-in model".
NO_KEY = frozenset({"", "none", "off"})


def gemini_key(environ: dict[str, str] | None = None) -> str | None:
    """Return the configured Gemini key, or None (unset, empty, `none` or `off`)."""
    key = (environ if environ is not None else os.environ).get("GEMINI_API_KEY", "").strip()
    return None if key.lower() in NO_KEY else key


@functools.cache
def default_agent() -> Agent:
    """Return the process's agent: Gemini when GEMINI_API_KEY is set, else the built-in model."""
    return Agent(gemini_key())
