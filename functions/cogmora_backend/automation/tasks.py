"""The two automation tasks: the AI agent's plan and the watchlist scrape."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from cogmora_backend import paths
from cogmora_backend.automation.agent import Agent, trigger_document
from cogmora_backend.automation.plan import (
    AgentInput,
    AgentLimits,
    AgentPlan,
    HeldPosition,
    MarketQuote,
    WatchedMarket,
)
from cogmora_backend.automation.quotes import QuoteSource, watched_markets
from cogmora_backend.automation.scheduler import Claim, TaskResult
from cogmora_backend.automation.scraper import FIELDS, Scraper
from cogmora_backend.limits import AI_RUNS, take
from cogmora_backend.store import SERVER_TIME, Database, DocumentMissing, Transaction
from cogmora_core.config import AutomationConfig, LimitsConfig
from cogmora_core.errors import Reason
from cogmora_core.money import parse_number, to_firestore

DEFAULT_MAX_RISK_PERCENT = 1.0
CONFIG_AUTOMATION = "config/automation"
log = logging.getLogger(__name__)


def _float(value: Any) -> float | None:
    number = parse_number(value)
    return float(number) if number is not None else None


def agent_input(user: dict[str, Any], positions: list[dict[str, Any]],
                watchlist: list[dict[str, Any]], max_risk_percent: float,
                quotes: list[MarketQuote] | None = None,
                config: AutomationConfig | None = None) -> AgentInput:
    """Return the agent's view of an account: balance, positions, scraped watchlist,
    the exchange's prices of the listed watched markets, and the caps."""
    held = []
    for p in positions:
        try:
            held.append(HeldPosition(
                symbol=str(p["symbol"]), symbolType=str(p["symbolType"]),
                positionType=str(p["positionType"]), size=float(p["size"]),
                averageEntryPrice=float(p["averageEntryPrice"]),
                leverage=int(p.get("leverage") or 1)))
        except (KeyError, TypeError, ValueError):
            continue  # a position the agent cannot read is simply not shown to it
    markets = [WatchedMarket(symbol=str(w.get("symbol") or ""), **{
        name: _float(w.get(name)) for name in FIELDS}) for w in watchlist]
    return AgentInput(balance=_float(user.get("balance")) or 0.0,
                      maxRiskPercent=max_risk_percent, positions=held,
                      watchlist=[m for m in markets if m.symbol], quotes=quotes or [],
                      limits=AgentLimits.of(config or AutomationConfig()))


class AutomationTasks:
    """Runs a claimed task for one user; shared by every task of a scheduler run.

    `quotes` gives the agent's fresh market prices (one source per run, so a
    market is fetched once however many users watch it); `config/automation`
    is read once per run.
    """

    def __init__(self, database: Database, agent: Agent, scraper: Scraper,
                 quotes: QuoteSource, limits: LimitsConfig | None = None) -> None:
        self.database = database
        self.limits = limits or LimitsConfig()
        self.agent = agent
        self.scraper = scraper
        self.quotes = quotes
        self._watchlists: dict[str, asyncio.Task[list[tuple[str, dict[str, Any]]]]] = {}
        self._config: asyncio.Task[AutomationConfig] | None = None

    async def automation_config(self) -> AutomationConfig:
        """Return the caps of `config/automation`, read once per run (defaults where absent)."""
        if self._config is None:
            self._config = asyncio.ensure_future(asyncio.to_thread(self._read_config))
        return await asyncio.shield(self._config)

    def _read_config(self) -> AutomationConfig:
        config = AutomationConfig.from_document(self.database.read(CONFIG_AUTOMATION))
        for problem in config.problems:
            log.warning("config/automation ignored a field", extra={"problem": problem})
        return config

    async def watchlist_of(self, uid: str) -> list[tuple[str, dict[str, Any]]]:
        """Return the user's watchlist documents, listed once per run for both tasks.

        At most `maxWatchlistSymbols` + 1 are read (by symbol): one more than
        the limit tells that the list is too long without reading all of it.
        """
        listing = self._watchlists.get(uid)
        if listing is None:
            listing = self._watchlists[uid] = asyncio.ensure_future(asyncio.to_thread(
                self.database.list, f"users/{uid}/watchlist",
                self.limits.max_watchlist_symbols + 1))
        return await asyncio.shield(listing)  # shared by the user's two tasks

    async def ai(self, claim: Claim) -> TaskResult:
        """Propose a plan, write it to `aiPlans`, and with autoExecute arm its triggers.

        A run past the user's `maxAiRunsPerDay` (scheduled and on-demand runs
        together) does not run the model: it ends `limited`.
        """
        refused = await asyncio.to_thread(
            take, self.database, claim.uid, {AI_RUNS: self.limits.max_ai_runs_per_day},
            claim.claimed_at)
        if refused is not None:
            return TaskResult(status="limited", error=f"{refused.reason}: {refused.detail}")
        plan_id, plan = await self.propose(claim.uid, claim.settings, claim.claimed_at,
                                           user=claim.user)
        return TaskResult(fields={"lastPlanId": plan_id},
                          error=None if plan.proposals or not plan.dropped else
                          f"all {len(plan.dropped)} proposals dropped")

    async def propose(self, uid: str, settings: dict[str, Any], now: datetime,
                      user: dict[str, Any] | None = None) -> tuple[str, AgentPlan]:
        """Run the flow for `uid` now and write the plan; return (planId, plan).

        `user` is the account as the claim read it (read again when absent).
        """
        positions, watchlist, config = await asyncio.gather(
            asyncio.to_thread(self.database.list, f"users/{uid}/openPositions"),
            self.watchlist_of(uid),
            self.automation_config(),
        )
        if user is None:
            user = await asyncio.to_thread(self.database.read, paths.user(uid))
        # Fetched before the model runs, so the model sees the market too; their age
        # (maxQuoteAgeSeconds) is judged after it answers.
        ticks = await self.quotes.get_many(watched_markets(
            str(doc.get("symbol") or "") for _, doc in watchlist))
        risk = settings.get("maxRiskPercent")
        data = agent_input(
            user or {}, [doc for _, doc in positions], [doc for _, doc in watchlist],
            float(risk) if isinstance(risk, int | float) and not isinstance(risk, bool)
            else DEFAULT_MAX_RISK_PERCENT,
            [MarketQuote.of(tick) for tick in ticks.values()], config)
        plan = await self.agent.propose(data)
        plan_id = f"plan-{now.strftime('%Y%m%dT%H%M%SZ')}-{uid[-6:]}"
        auto = settings.get("autoExecute") is True
        await asyncio.to_thread(self._write_plan, uid, plan_id, plan, data, auto)
        return plan_id, plan

    def _write_plan(self, uid: str, plan_id: str, plan: AgentPlan, data: AgentInput,
                    auto: bool) -> None:
        armed = plan.proposals if auto else []
        trigger_ids = [f"{plan_id}-{n}" for n in range(len(armed))]

        def work(tx: Transaction) -> None:
            tx.set(f"users/{uid}/aiPlans/{plan_id}", {
                "planId": plan_id,
                "proposals": [p.model_dump() for p in plan.proposals],
                "dropped": [d.model_dump() for d in plan.dropped],
                "summary": plan.summary,
                "rationale": [p.rationale for p in plan.proposals],
                "model": plan.model,
                "createdAt": SERVER_TIME,
                "balance": data.balance,
                "maxRiskPercent": data.maxRiskPercent,
                "autoExecute": auto,
                "triggerIds": trigger_ids,
                "quotes": [q.model_dump() for q in data.quotes],
                "limits": data.limits.model_dump(),
            })
            for trigger_id, proposal in zip(trigger_ids, armed, strict=True):
                tx.set(paths.trigger(uid, trigger_id), {
                    **trigger_document(proposal), "source": "ai", "planId": plan_id,
                    "rationale": proposal.rationale})
            tx.update(paths.user(uid), {"automation.ai.lastPlanId": plan_id})

        self.database.write(work)

    async def watchlist(self, claim: Claim) -> TaskResult:
        """Scrape every watched symbol (each page once per run) and write the data."""
        docs = await self.watchlist_of(claim.uid)
        cap = self.limits.max_watchlist_symbols
        over = len(docs) > cap
        symbols = [doc_id for doc_id, _ in docs[:cap]]
        results = await asyncio.gather(*(self.scraper.get(symbol) for symbol in symbols))
        errors = []
        updates: dict[str, dict[str, Any]] = {}
        for result in results:
            path = f"users/{claim.uid}/watchlist/{result.symbol}"
            if result.error is None:
                fields: dict[str, Any] = {name: to_firestore(value)
                                          for name, value in result.values.items()}
                fields.update(symbol=result.symbol, updatedAt=SERVER_TIME, error=None,
                              source=self.scraper.source.name)
            else:
                errors.append(f"{result.symbol}: {result.error}")
                fields = {"error": result.error, "errorAt": SERVER_TIME}
            updates[path] = fields
        await asyncio.to_thread(self._update_existing, updates)
        if over:  # the rest are neither read nor scraped
            errors.insert(0, f"{Reason.TOO_MANY_SYMBOLS}: more than {cap} symbols; the first "
                             f"{cap} by symbol are scraped (config/limits)")
            return TaskResult(status="partial", error="; ".join(errors)[:1000])
        if not errors:
            return TaskResult()
        status = "error" if len(errors) == len(results) else "partial"
        return TaskResult(status=status, error="; ".join(errors)[:1000])

    def _update_existing(self, updates: dict[str, dict[str, Any]]) -> None:
        """Update the watchlist documents that still exist.

        One atomic batch when all of them still exist (they were just listed);
        if the user removed one meanwhile, a transaction that reads first.
        """
        if not updates:
            return

        def optimistic(batch: Transaction) -> None:
            for path, fields in updates.items():
                batch.update(path, fields)

        try:
            self.database.write(optimistic)
            return
        except DocumentMissing:
            pass

        def work(tx: Transaction) -> None:
            found = tx.get_many(list(updates))
            for (path, fields), document in zip(updates.items(), found, strict=True):
                if document is not None:  # the user may have removed the symbol meanwhile
                    tx.update(path, fields)

        self.database.run(work)
