"""mainScheduler on Cloud Tasks, measured on the emulators (bench/scheduler_scale.py --mode queue).

Firestore triggers are off for the whole run (as for the inline mode: every
claim writes the user document). Each stage falls due at a scheduled minute of
its own, later stages earlier, so no stage finds another's users.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.results import record, tee
from bench.scheduler_scale import SYMBOLS, seed
from cogmora_backend.automation.fanout import QUEUES, FanOutReport, fan_out
from cogmora_backend.automation.runtime import admin_enqueue
from cogmora_backend.firestore import FirestoreDatabase
from tests.support.emulator import (
    firestore_client,
    new_uid,
    project,
    recreate_task_queue,
    set_background_triggers,
)
from tests.support.pages import market_page, serving


def set_queue(function: str, rate: int, concurrency: int) -> None:
    """Create the queue again on the Cloud Tasks emulator with these limits (its tasks go)."""
    queue = next(q for q in QUEUES.values() if q.function == function)
    recreate_task_queue(function, queue, rate, concurrency)


def seed_users(db: Any, users: int, due_at: datetime) -> None:
    """Users only (claims read no watchlist), both tasks due."""
    batch, pending = db.batch(), 0
    for _ in range(users):
        batch.set(db.document(f"users/{new_uid('claim')}"), {
            "balance": 10000, "createdAt": due_at, "automation": {
                "ai": {"enabled": True, "maxRiskPercent": 1, "nextRun": due_at},
                "watchlist": {"enabled": True, "nextRun": due_at}}})
        pending += 1
        if pending >= 500:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()


def claim_and_enqueue(db: Any, users: int) -> FanOutReport:
    slot = datetime(2090, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    seed_users(db, users, slot - timedelta(seconds=1))
    print(f"seeded {users:,} users in {time.perf_counter() - started:.1f} s")
    for queue in QUEUES.values():  # held: the scheduler alone is measured
        set_queue(queue.function, 0, 1)
    report = fan_out(FirestoreDatabase(db), admin_enqueue, slot)
    chunks = sum(report.enqueued.values())
    print(f"claim and enqueue, {users:,} due users (both tasks due)")
    print(f"  due {report.due}  claimed {report.claimed}")
    print(f"  chunks enqueued {report.enqueued}  already queued {report.already_queued}  "
          f"released {report.released}")
    print(f"  {report.seconds:.1f} s  ({sum(report.claimed.values()) / report.seconds:,.0f} "
          f"tasks/s claimed, {chunks / report.seconds:,.0f} chunks/s enqueued); "
          f"target <= 30 s: {report.seconds <= 30}")
    print(f"  the due queries streamed for {report.query_seconds:.1f} s (claims and "
          f"enqueues began meanwhile), then {report.claim_seconds:.1f} s to the last enqueue")
    print(f"  thread time: claims {report.claim_thread_seconds:.1f} s, enqueues "
          f"{report.enqueue_thread_seconds:.1f} s; users claimed through a transaction "
          f"{report.transacted:,}")
    return report


def recorded(db: Any, task: str, since: datetime) -> int:
    """Users whose `task` was recorded since `since` (`lastRun` is the finishing time)."""
    query = db.collection("users").where(f"automation.{task}.lastRun", ">=", since)
    return int(query.count().get()[0][0].value)


def end_to_end(db: Any, users: int, slot: datetime, concurrency: int,
               timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    seed(db, users, slot - timedelta(seconds=1))
    print(f"seeded {users:,} users (2 watched markets each) in "
          f"{time.perf_counter() - started:.1f} s")
    for queue in QUEUES.values():
        set_queue(queue.function, 500, concurrency)
    started, since = time.perf_counter(), datetime.now(UTC)
    report = fan_out(FirestoreDatabase(db), admin_enqueue, slot)
    fanned = time.perf_counter() - started
    done = {"ai": 0, "watchlist": 0}
    while time.perf_counter() - started < timeout:
        done = {task: recorded(db, task, since) for task in done}
        if all(n >= users for n in done.values()):
            break
        time.sleep(5)  # each count scans the emulator's documents
    seconds = time.perf_counter() - started
    tasks = sum(done.values())
    statuses: dict[str, int] = {}
    for snapshot in db.collection("users").where(
            "automation.ai.lastRun", ">=", since).limit(200).stream():
        automation = (snapshot.to_dict() or {}).get("automation", {})
        for task in ("ai", "watchlist"):
            key = f"{task}:{automation.get(task, {}).get('lastStatus')}"
            statuses[key] = statuses.get(key, 0) + 1
    print(f"end to end, {users:,} due users, the emulator's queues at {concurrency} "
          "chunks at once")
    print(f"  fan-out {fanned:.1f} s  chunks {report.enqueued}")
    print(f"  recorded {done} of {users:,} each in {seconds:.1f} s: "
          f"{tasks / seconds:.0f} tasks/s end to end; all recorded: "
          f"{all(n >= users for n in done.values())}")
    print(f"  statuses of a sample of 200 users {statuses}")
    return {"users": users, "seconds": round(seconds, 1), "tasks": tasks,
            "tasks_per_second": round(tasks / seconds, 1), "fan_out_seconds": round(fanned, 1),
            "complete": all(n >= users for n in done.values())}


def run_queue_bench(claim_users: int, sizes: list[int], concurrency: int) -> int:
    from urllib.parse import urlsplit

    import firebase_admin

    from tests.support.processes import Exchange

    if not firebase_admin._apps:  # the Admin SDK enqueues on the Cloud Tasks emulator
        firebase_admin.initialize_app(options={"projectId": project()})
    db = firestore_client()
    spot, futures = (urlsplit(os.environ.get(name, "")).port
                     for name in ("KUCOIN_SPOT_API", "KUCOIN_FUTURES_API"))
    # The agent's market prices, where the functions look for them.
    exchange = Exchange(spot, futures) if spot and futures else None
    set_background_triggers(False)
    try:
        with tee() as out, serving() as server:
            for symbol in SYMBOLS:
                server.pages[symbol] = market_page(symbol)
            db.document("config/scraper").set({"urlPattern": server.url_pattern})
            claims = claim_and_enqueue(db, claim_users)
            runs = []
            for n, users in enumerate(sizes):
                slot = datetime(2080 - n, 1, 1, tzinfo=UTC)
                runs.append(end_to_end(db, users, slot, concurrency, timeout=900))
            for queue in QUEUES.values():
                print(f"production {queue.function}: {queue.users_per_chunk} users a chunk, "
                      f"{queue.max_dispatches_per_second} chunks/s, "
                      f"{queue.max_concurrent_dispatches} at once: at most "
                      f"{queue.users_per_minute:,} users a minute")
    finally:
        set_background_triggers(True)
        if exchange is not None:
            exchange.close()
    record("scheduler_queue", {
        "claim_users": claim_users, "claim_seconds": round(claims.seconds, 1),
        "claim_query_seconds": round(claims.query_seconds, 1),
        "claim_transacted": claims.transacted,
        "claimed": claims.claimed, "enqueued": claims.enqueued, "runs": runs,
        "emulator_concurrency": concurrency}, out.getvalue())
    return 0
