"""How long one mainScheduler run takes for N due users (it must fit the minute).

Seeds N users (default 5,000) on the emulators with both tasks due: the AI
agent with the built-in model (autoExecute off; every proposal checked
against a fixed market price, the exchange's REST tickers being measured
apart) and the watchlist scraper over pages from a local HTTP server (each
user watches 2 of the 20 listed KuCoin markets).
Firestore triggers are switched off for the whole benchmark: every claim
writes the user document, and scheduleAutomation's invocations (which return
at once in production, on instances of their own) would otherwise flood the
local Functions emulator on this 2-core machine and measure it instead. Then
it runs the scheduler job once, as mainScheduler does, and prints the time,
the tasks claimed and their outcomes (`--mode inline`: the path before the queue).

`--mode queue` (the default) measures mainScheduler on Cloud Tasks, on the
Cloud Tasks emulator: (1) the time to claim and enqueue `--claim-users`
(50,000) due users, both tasks due, with the queues held (rate 0) so the
machine measures the scheduler alone; (2) tasks/s end to end (fan-out until
every task is recorded by the queue functions) for each of `--users`
(5,000 and 20,000; `--claim-only` skips them). The emulator runs one Python process per concurrent
dispatch on this 2-core machine, so the queues run there at
`--emulator-concurrency` chunks at once and no rate limit; the production
rates (fanout.QUEUES) are printed beside. Run: scripts/bench.sh scheduler_scale.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench.results import record, tee
from cogmora_backend.automation.agent import Agent
from cogmora_backend.automation.scheduler import run_due_tasks
from cogmora_backend.automation.scraper import Scraper, ScraperSource
from cogmora_backend.automation.tasks import AutomationTasks
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_core.markets import MARKETS, Market
from cogmora_core.model import Tick
from tests.support.emulator import firestore_client, new_uid, set_background_triggers
from tests.support.pages import market_page, serving

SYMBOLS = [market.symbol for market in MARKETS if market.venue == "kucoin"]


class FixedQuotes:
    """Every market at the seeded price, stamped now: the agent's checks, not the exchange."""

    async def get_many(self, markets: Iterable[Market]) -> dict[str, Tick]:
        now_ms = int(time.time() * 1000)
        return {m.symbol: Tick(m.symbol, Decimal("141.5"), None, None, now_ms)
                for m in markets}


def seed(db: Any, users: int, due_at: datetime) -> None:
    batch, pending = db.batch(), 0
    for n in range(users):
        uid = new_uid("scale")
        batch.set(db.document(f"users/{uid}"), {
            "balance": 10000, "createdAt": due_at,
            "automation": {
                "ai": {"enabled": True, "maxRiskPercent": 1, "nextRun": due_at},
                "watchlist": {"enabled": True, "nextRun": due_at}}})
        for symbol in (SYMBOLS[n % 20], SYMBOLS[(n * 7 + 3) % 20]):
            batch.set(db.document(f"users/{uid}/watchlist/{symbol}"), {
                "symbol": symbol, "price": 141.5, "change24h": 2.5, "high24h": 142,
                "low24h": 134})
        pending += 3
        if pending >= 450:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("queue", "inline"), default="queue")
    parser.add_argument("--users", default=None,
                        help="due users (inline: one number; queue: a list, 5000,20000)")
    parser.add_argument("--claim-users", type=int, default=50_000)
    parser.add_argument("--emulator-concurrency", type=int, default=4)
    parser.add_argument("--claim-only", action="store_true",
                        help="queue mode: measure the claim and enqueue stage alone")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--tasks", default="ai,watchlist",
                        help="which tasks run (both are due for every user)")
    args = parser.parse_args()
    if args.mode == "queue":
        from bench.scheduler_queue import run_queue_bench

        sizes = [] if args.claim_only else [int(n) for n in (args.users or "5000,20000").split(",")]
        return run_queue_bench(args.claim_users, sizes, args.emulator_concurrency)
    users = int(args.users or 5000)
    db = firestore_client()
    due_at = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=users)
    set_background_triggers(False)
    try:
        with tee() as out:
            report = measure(db, users, args.concurrency, due_at, args.tasks.split(","))
    finally:
        set_background_triggers(True)
    record("scheduler_scale", {"users": users, "seconds": report.seconds,
                               "claimed": report.claimed, "outcomes": report.outcomes},
           out.getvalue())
    return 0


def measure(db: Any, users: int, concurrency: int, due_at: datetime,
            names: list[str]) -> Any:
    started = time.perf_counter()
    seed(db, users, due_at)
    print(f"seeded {users} users in {time.perf_counter() - started:.1f} s")

    with serving() as server:
        for symbol in SYMBOLS:
            server.pages[symbol] = market_page(symbol)

        async def run() -> Any:
            scraper = Scraper(ScraperSource(url_pattern=server.url_pattern))
            try:
                tasks = AutomationTasks(FirestoreDatabase(db), Agent(), scraper, FixedQuotes())
                runners = {"ai": tasks.ai, "watchlist": tasks.watchlist}
                return await run_due_tasks(FirestoreDatabase(db), due_at,
                                           {name: runners[name] for name in names},
                                           concurrency=concurrency, limit=users)
            finally:
                await scraper.close()

        report = asyncio.run(run())
        fetches = sum(server.requests.values())
    tasks = sum(report.claimed.values())
    print(f"one scheduler run, {users} due users, concurrency {concurrency}")
    print(f"  due {report.due}  claimed {report.claimed}")
    print(f"  outcomes {report.outcomes}")
    print(f"  page fetches {fetches} for {len(SYMBOLS)} symbols")
    print(f"  run time {report.seconds:.1f} s  ({tasks / report.seconds:.0f} tasks/s); "
          f"fits the minute: {report.seconds < 60}")
    return report


if __name__ == "__main__":
    sys.exit(main())
