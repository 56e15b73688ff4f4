"""mainScheduler on Cloud Tasks, on the emulators: claims, chunks, the queue functions,
redeliveries and the dead letter (Firestore, Functions and the Cloud Tasks emulator).

The users here fall due in 2001, before any other test's, so a fan-out at a
2001 slot finds only them.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cogmora_backend.automation.fanout import (
    AGENT_QUEUE,
    DEAD_LETTERS,
    QUEUE_LEASE,
    Chunk,
    chunk_name,
    dead_letter,
    fan_out,
    run_chunk,
)
from cogmora_backend.automation.runtime import admin_enqueue
from cogmora_backend.automation.scheduler import Claim, TaskResult, claim_many
from cogmora_backend.firestore import FirestoreDatabase
from tests.support.emulator import document, functions_url, new_uid, wait_for
from tests.support.scheduling import ChangedAfterTheQueries

pytestmark = pytest.mark.usefixtures("admin_app")


def slot_in_2001() -> datetime:
    """A scheduled minute of its own in 2001 (each test its own, so none finds another's)."""
    return datetime(2001, 1, 1, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 500_000)


def due_users(db: Any, slot: datetime, n: int, **tasks: bool) -> list[str]:
    uids = []
    batch = db.batch()
    for _ in range(n):
        uid = new_uid("queue")
        batch.set(db.document(f"users/{uid}"), {
            "balance": 10000, "createdAt": slot,
            "automation": {task: {"enabled": True, "nextRun": slot - timedelta(seconds=1)}
                           for task, on in tasks.items() if on}})
        uids.append(uid)
    batch.commit()
    return sorted(uids)


def automation(db: Any, uid: str, task: str) -> dict[str, Any]:
    return (document(db, f"users/{uid}") or {})["automation"][task]


def test_a_run_enqueues_each_chunk_once_and_the_queues_run_every_task(db: Any) -> None:
    slot = slot_in_2001()
    uids = due_users(db, slot, 20, ai=True, watchlist=True)
    database = FirestoreDatabase(db)

    report = fan_out(database, admin_enqueue, slot)

    assert report.due == {"ai": 20, "watchlist": 20}
    assert report.claimed == {"ai": 20, "watchlist": 20}
    # Every claim was written on condition of the update time its query read (to the
    # nanosecond): none needed a transaction.
    assert report.transacted == 0
    # 15 users per agent chunk, 100 per watchlist chunk.
    assert report.enqueued == {"ai": 2, "watchlist": 1} and report.already_queued == {}
    claimed = automation(db, uids[0], "ai")
    assert claimed["nextRun"] == slot + timedelta(minutes=60)
    assert claimed["lease"]["runId"] == chunk_name("ai", slot, uids[:15])
    # Both queue functions run every task once, record it and release its lease.
    for uid in uids:
        for task in ("ai", "watchlist"):
            done = wait_for(lambda u=uid, t=task: (
                (s := automation(db, u, t)).get("lastStatus") and s), timeout=120)
            assert (done["lastStatus"], done["lastError"], done["lease"]) == ("ok", None, None)
            assert done["lastRun"] >= slot
    plans = list(db.collection(f"users/{uids[0]}/aiPlans").stream())
    assert len(plans) == 1

    # Run again for the same minute: nothing is due, nothing is enqueued.
    again = fan_out(database, admin_enqueue, slot)
    assert (again.due, again.claimed, again.enqueued) == (
        {"ai": 0, "watchlist": 0}, {}, {})
    # The same chunk enqueued again under its name (a client retry) is refused as queued.
    name = chunk_name("ai", slot, uids[:15])
    assert admin_enqueue(AGENT_QUEUE.function, name, {
        "task": "ai", "chunk": name, "uids": uids[:15], "claimedAt": slot.isoformat()}) is False
    # A redelivery of a finished chunk straight to the function runs nothing twice.
    response = httpx.post(functions_url(AGENT_QUEUE.function), timeout=60, json={"data": {
        "task": "ai", "chunk": name, "uids": uids[:15], "claimedAt": slot.isoformat()}})
    assert response.status_code == 200, response.text
    assert len(list(db.collection(f"users/{uids[0]}/aiPlans").stream())) == 1


class Counting:
    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    async def __call__(self, claim: Claim) -> TaskResult:
        self.ran.append((claim.uid, claim.task))
        await asyncio.sleep(0.2)
        return TaskResult()


def leased_chunk(db: Any, slot: datetime, n: int) -> Chunk:
    uids = due_users(db, slot, n, ai=True)
    name = chunk_name("ai", slot, uids)
    claims = claim_many(FirestoreDatabase(db), uids, "ai", slot, name, QUEUE_LEASE)
    assert len(claims) == n
    return Chunk("ai", name, uids, slot)


def test_two_deliveries_of_a_chunk_at_once_run_each_task_once(db: Any) -> None:
    slot = slot_in_2001()
    chunk = leased_chunk(db, slot, 6)
    runner = Counting()
    database = FirestoreDatabase(db)

    async def both() -> Any:
        return await asyncio.gather(
            run_chunk(database, {"ai": runner}, chunk, 0),
            run_chunk(database, {"ai": runner}, chunk, 0))

    first, second = asyncio.run(both())

    assert sorted(runner.ran) == [(uid, "ai") for uid in chunk.uids]
    assert first.taken + second.taken == 6
    # And a retry after both finished takes nothing.
    late = asyncio.run(run_chunk(database, {"ai": runner}, chunk, 1))
    assert late.taken == 0 and len(runner.ran) == 6
    assert all(automation(db, uid, "ai")["lease"] is None for uid in chunk.uids)


def test_the_last_try_records_the_unfinished_tasks_and_a_dead_letter(db: Any) -> None:
    slot = slot_in_2001()
    chunk = leased_chunk(db, slot, 3)
    database = FirestoreDatabase(db)
    done = chunk.uids[0]
    db.document(f"users/{done}").update({"automation.ai.lease": None,
                                          "automation.ai.lastStatus": "ok"})
    now = slot + timedelta(minutes=2)

    left = dead_letter(database, chunk, "Unavailable: firestore", 5, now)

    assert left == chunk.uids[1:]
    record = document(db, f"{DEAD_LETTERS}/{chunk.name}")
    assert record is not None
    assert (record["task"], record["attempts"], record["unfinished"], record["uids"]) == (
        "ai", 5, chunk.uids[1:], chunk.uids)
    for uid in chunk.uids[1:]:
        ai = automation(db, uid, "ai")
        assert (ai["lastStatus"], ai["lease"], ai["lastRun"]) == ("error", None, now)
        assert ai["lastError"] == ("not run: its chunk failed 5 attempts "
                                   "(Unavailable: firestore)")
    assert automation(db, done, "ai")["lastStatus"] == "ok"


def test_a_chunk_failing_every_attempt_is_retried_then_dead_lettered(db: Any) -> None:
    """The queue retries the agent's chunk (min backoff 1 s, doubling) up to its last
    attempt, when the function writes the dead letter and ends the task."""
    slot = slot_in_2001()
    # A user id holding a slash names no user document: every attempt fails.
    uids = ["broken/id"]
    name = chunk_name("ai", slot, uids)

    assert admin_enqueue(AGENT_QUEUE.function, name, {
        "task": "ai", "chunk": name, "uids": uids, "claimedAt": slot.isoformat()}) is True

    record = wait_for(lambda: document(db, f"{DEAD_LETTERS}/{name}"), timeout=120, every=0.5)
    assert (record["attempts"], record["uids"]) == (AGENT_QUEUE.max_attempts, uids)
    assert record["error"].startswith("ValueError")


def test_a_user_changed_after_the_queries_is_claimed_as_it_is_now(db: Any) -> None:
    slot = slot_in_2001()
    uids = due_users(db, slot, 5, ai=True, watchlist=True)

    def change() -> None:
        db.document(f"users/{uids[1]}").update({"automation.ai.enabled": False})
        db.document(f"users/{uids[2]}").update({"automation.watchlist.intervalMinutes": 30})

    sent: list[tuple[str, dict[str, Any]]] = []
    report = fan_out(ChangedAfterTheQueries(FirestoreDatabase(db), change),
                     lambda function, name, data: sent.append((name, data)) is None, slot)

    # (Users other tests left due before this slot are claimed too: only these are
    # checked.) The batch failed its precondition (two of its users changed): they were
    # split out of it, read again in a transaction, and claimed as they are now.
    assert report.transacted >= 2
    mine = {uid: document(db, f"users/{uid}")["automation"] for uid in uids}
    assert all(settings["lease"]["runId"] for uid, automation in mine.items()
               for task, settings in automation.items() if (uid, task) != (uids[1], "ai"))
    disabled = automation(db, uids[1], "ai")
    assert "lease" not in disabled and disabled["nextRun"] == slot - timedelta(seconds=1)
    assert automation(db, uids[2], "watchlist")["nextRun"] == slot + timedelta(minutes=30)
    ai = {uid for _, data in sent if data["task"] == "ai" for uid in data["uids"]}
    watchlist = {uid for _, data in sent if data["task"] == "watchlist" for uid in data["uids"]}
    assert ai & set(uids) == set(uids) - {uids[1]} and set(uids) <= watchlist
