"""Run the automation from a function: one event loop, one scraper, the process's agent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from cogmora_backend.automation.agent import default_agent
from cogmora_backend.automation.quotes import ExchangeQuotes
from cogmora_backend.automation.scheduler import SchedulerReport, run_due_tasks
from cogmora_backend.automation.scraper import Scraper, ScraperSource
from cogmora_backend.automation.tasks import AutomationTasks
from cogmora_backend.limits import AI_RUNS, PROPOSE_PLAN, Refused, load_limits, take
from cogmora_backend.store import Database

CONFIG_SCRAPER = "config/scraper"


def source_of(database: Database) -> ScraperSource:
    """Return the scraper's source from `config/scraper` (defaults where absent)."""
    return ScraperSource.from_document(database.read(CONFIG_SCRAPER))


def run_scheduler_now(database: Database, **options: Any) -> SchedulerReport:
    """Run every due task once, now; `options` go to `run_due_tasks`."""

    async def run() -> SchedulerReport:
        scraper, quotes = Scraper(source_of(database)), ExchangeQuotes.from_environ()
        limits = await asyncio.to_thread(load_limits, database)
        try:
            tasks = AutomationTasks(database, default_agent(), scraper, quotes, limits)
            return await run_due_tasks(
                database, datetime.now(UTC), {"ai": tasks.ai, "watchlist": tasks.watchlist},
                clock=lambda: datetime.now(UTC),
                min_interval_minutes={"ai": limits.min_ai_interval_minutes}, **options)
        finally:
            await asyncio.gather(scraper.close(), quotes.close())

    return asyncio.run(run())


def propose_now(database: Database, uid: str) -> dict[str, Any] | Refused:
    """Run the AI agent for `uid` now and return {planId, plan}.

    Refused (nothing runs) past the user's `maxProposePlanPerMinute` or
    `maxAiRunsPerDay` (scheduled runs count too).
    """
    limits = load_limits(database)
    refused = take(database, uid, {PROPOSE_PLAN: limits.max_propose_plan_per_minute,
                                   AI_RUNS: limits.max_ai_runs_per_day}, datetime.now(UTC))
    if refused is not None:
        return refused

    async def run() -> dict[str, Any]:
        scraper, quotes = Scraper(source_of(database)), ExchangeQuotes.from_environ()
        try:
            tasks = AutomationTasks(database, default_agent(), scraper, quotes, limits)
            user = await asyncio.to_thread(database.read, f"users/{uid}") or {}
            settings = (user.get("automation") or {}).get("ai") or {}
            plan_id, plan = await tasks.propose(uid, dict(settings), datetime.now(UTC))
            return {"planId": plan_id, "plan": plan.model_dump()}
        finally:
            await asyncio.gather(scraper.close(), quotes.close())

    return asyncio.run(run())
