"""Run the automation from a function: one event loop, one scraper, the process's agent."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from cogmora_backend.automation.agent import default_agent
from cogmora_backend.automation.fanout import (
    QUEUES,
    Chunk,
    ChunkReport,
    FanOutReport,
    fan_out,
    run_chunk,
)
from cogmora_backend.automation.quotes import ExchangeQuotes
from cogmora_backend.automation.scheduler import SchedulerReport, run_due_tasks
from cogmora_backend.automation.scraper import Scraper, ScraperSource
from cogmora_backend.automation.tasks import AutomationTasks
from cogmora_backend.limits import AI_RUNS, PROPOSE_PLAN, Refused, load_limits, take
from cogmora_backend.store import Database
from cogmora_backend.taskqueue import enqueue

CONFIG_SCRAPER = "config/scraper"
log = logging.getLogger(__name__)


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


def fan_out_now(database: Database, slot: datetime) -> FanOutReport:
    """mainScheduler's run: claim every task due at `slot` and enqueue it in chunks."""
    limits = load_limits(database)
    return fan_out(database, admin_enqueue, slot,
                   min_interval_minutes={"ai": limits.min_ai_interval_minutes})


def admin_enqueue(function: str, name: str, data: dict[str, Any]) -> bool:
    """Enqueue a chunk as task `name` on the queue function `function` (the Admin SDK):
    True when queued, False when a task of that name is queued already (see
    `taskqueue.enqueue`). A chunk may run as long as its function: the dispatch
    deadline says so."""
    timeout = next((q.timeout_sec for q in QUEUES.values() if q.function == function), 600)
    return enqueue(function, name, data, timeout)


def run_chunk_now(database: Database, data: Any, retry_count: int) -> ChunkReport | None:
    """Run one delivery of an enqueued chunk (the queue functions).

    A payload that is no chunk is logged and dropped (retrying cannot mend it).
    """
    try:
        chunk = Chunk.of(data)
    except (ValueError, TypeError) as problem:
        log.error("a queued task is no automation chunk; dropped",
                  extra={"problem": str(problem)})
        return None

    async def run() -> ChunkReport:
        scraper, quotes = Scraper(source_of(database)), ExchangeQuotes.from_environ()
        limits = await asyncio.to_thread(load_limits, database)
        try:
            tasks = AutomationTasks(database, default_agent(), scraper, quotes, limits)
            return await run_chunk(database, {"ai": tasks.ai, "watchlist": tasks.watchlist},
                                   chunk, retry_count, clock=lambda: datetime.now(UTC))
        finally:
            await asyncio.gather(scraper.close(), quotes.close())

    return asyncio.run(run())
