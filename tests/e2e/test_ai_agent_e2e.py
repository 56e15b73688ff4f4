"""End to end: the AI agent's auto-executed proposal is armed by the worker and executes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora_backend.automation.agent import Agent
from cogmora_backend.automation.quotes import ExchangeQuotes
from cogmora_backend.automation.scheduler import run_due_tasks
from cogmora_backend.automation.scraper import Scraper, ScraperSource
from cogmora_backend.automation.tasks import AutomationTasks
from cogmora_backend.firestore import FirestoreDatabase
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import execution_of, funded_user, keep_publishing


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-ai")
    yield process
    assert process.stop() == 0


def test_auto_executed_plan_becomes_a_trigger_that_the_worker_executes(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    uid = funded_user(db, "ai-e2e")
    now = datetime.now(UTC)
    db.document(f"users/{uid}").update({"automation.ai": {
        "enabled": True, "autoExecute": True, "maxRiskPercent": 1, "nextRun": now}})
    # A listed market (the agent trades no other) that no other test trades.
    db.document(f"users/{uid}/watchlist/AVAXUSDTM").set({
        "symbol": "AVAXUSDTM", "price": 141.5, "change24h": 2.5, "high24h": 142, "low24h": 134})
    exchange.publish("AVAXUSDTM", "141.5", "141.49", "141.51")  # the price proposals meet

    async def scheduler_run() -> None:
        scraper = Scraper(ScraperSource(url_pattern="http://127.0.0.1:9/{symbol}"))
        quotes = ExchangeQuotes(exchange.spot.base_url, exchange.futures.base_url)
        tasks = AutomationTasks(FirestoreDatabase(db), Agent(), scraper, quotes)
        await run_due_tasks(FirestoreDatabase(db), now, {"ai": tasks.ai})
        await asyncio.gather(scraper.close(), quotes.close())

    asyncio.run(scheduler_run())
    plan_id = document(db, f"users/{uid}")["automation"]["ai"]["lastPlanId"]
    trigger_id = f"{plan_id}-0"
    wait_for(lambda: worker.armed(f"users/{uid}/tradeTriggers/{trigger_id}"))

    execution = keep_publishing(lambda: exchange.publish("AVAXUSDTM", "142.2", "142.19", "142.21"),
                                lambda: execution_of(db, uid, trigger_id))

    assert (execution["status"], execution["executedPrice"]) == ("filled", 142.21)
    position = document(db, f"users/{uid}/openPositions/{trigger_id}")
    assert position is not None
    assert position["details"] == {"status": "open", "stopLoss": 138.142, "takeProfit": 150.142}
    # margin 1184.51 + fee 1184.51 × 3 × 0.0006 = 2.132118
    assert balance_of(db, uid) == D("10000") - D("1184.51") - D("2.132118")
