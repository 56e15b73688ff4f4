"""The queue's settings, chunk names and payloads; the fan-out on the in-memory fake."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cogmora_backend.automation import fanout
from cogmora_backend.automation.fanout import (
    AGENT_QUEUE,
    MODEL_REQUESTS_PER_MINUTE,
    QUEUE_LEASE,
    QUEUES,
    WATCHLIST_QUEUE,
    Chunk,
    chunk_name,
    fan_out,
    plan_claim,
)
from cogmora_backend.automation.scheduler import DEFAULT_INTERVAL_MINUTES, claim_fields
from cogmora_backend.store import Snapshot
from tests.support.functions_main import functions_main
from tests.support.memory import MemoryDatabase
from tests.support.scheduling import ChangedAfterTheQueries

SLOT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_chunk_name_is_the_same_for_the_same_chunk_and_spread_by_its_prefix() -> None:
    name = chunk_name("ai", SLOT, ["u1", "u2"])
    assert name == chunk_name("ai", SLOT, ["u1", "u2"])
    assert name.endswith("-ai") and len(name) == 43
    others = {chunk_name("ai", SLOT + timedelta(minutes=1), ["u1", "u2"]),
              chunk_name("watchlist", SLOT, ["u1", "u2"]), chunk_name("ai", SLOT, ["u1"])}
    assert name not in others and len({n[:2] for n in others | {name}}) > 1


def test_the_agent_queue_stays_within_the_model_quota() -> None:
    assert AGENT_QUEUE.users_per_minute == 900 <= MODEL_REQUESTS_PER_MINUTE
    # A chunk's tasks run in one round, within the function's timeout.
    for queue in QUEUES.values():
        rounds = -(-queue.users_per_chunk // queue.concurrency)
        assert rounds * queue.time_limit < queue.timeout_sec
        assert queue.max_attempts >= 2 and queue.max_concurrent_dispatches >= 1
    # 50,000 users, every 15 minutes, are 3,334 a minute: the watchlist queue keeps up.
    assert WATCHLIST_QUEUE.users_per_minute >= 50_000 / 15


def test_the_queue_functions_declare_the_settings_in_their_manifest() -> None:
    main = functions_main()

    for queue in QUEUES.values():
        endpoint = getattr(main, queue.function).__firebase_endpoint__
        trigger = endpoint.taskQueueTrigger
        assert trigger["rateLimits"] == {
            "maxDispatchesPerSecond": queue.max_dispatches_per_second,
            "maxConcurrentDispatches": queue.max_concurrent_dispatches}
        assert trigger["retryConfig"] == {
            "maxAttempts": queue.max_attempts, "maxRetrySeconds": None,
            "maxBackoffSeconds": queue.max_backoff_seconds,
            "maxDoublings": queue.max_doublings,
            "minBackoffSeconds": queue.min_backoff_seconds}
        assert endpoint.timeoutSeconds == queue.timeout_sec


def test_a_payload_is_read_as_a_chunk_or_refused() -> None:
    chunk = Chunk.of({"task": "ai", "chunk": "abc-ai", "uids": ["u1"],
                      "claimedAt": SLOT.isoformat()})
    assert chunk == Chunk("ai", "abc-ai", ["u1"], SLOT)
    for bad in (None, [], {"task": "other", "chunk": "x", "uids": [], "claimedAt": "x"},
                {"task": "ai", "chunk": "", "uids": [], "claimedAt": SLOT.isoformat()},
                {"task": "ai", "chunk": "x", "uids": [1], "claimedAt": SLOT.isoformat()},
                {"task": "ai", "chunk": "x", "uids": [], "claimedAt": "2026-03-01T12:00"},
                {"task": "ai", "chunk": "x", "uids": [], "claimedAt": "soon"}):
        with pytest.raises(ValueError):
            Chunk.of(bad)


class Recording:
    """An enqueue that records each chunk; `queued` names answer "already queued", a
    function in `failing` raises."""

    def __init__(self, queued: frozenset[str] = frozenset(),
                 failing: frozenset[str] = frozenset()) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.queued, self.failing = queued, failing
        self.lock = threading.Lock()

    def __call__(self, function: str, name: str, data: dict[str, Any]) -> bool:
        if function in self.failing:
            raise ConnectionError("the queue is unreachable")
        with self.lock:
            self.sent.append((function, name, data))
        return name not in self.queued


def users(db: MemoryDatabase, n: int, prefix: str, due: datetime, **enabled: bool) -> list[str]:
    """Write `n` users through the port (so each has an update time), both tasks due at `due`
    unless disabled."""
    uids = [f"{prefix}{i:03d}" for i in range(n)]
    for uid in uids:
        db.set(f"users/{uid}", {"balance": 10000, "automation": {
            task: {"enabled": enabled.get(task, True), "nextRun": due}
            for task in ("ai", "watchlist")}})
    return uids


def test_fan_out_claims_every_due_user_once_and_enqueues_each_chunk_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "CLAIM_USERS", 7)  # chunks span claim batches
    db = MemoryDatabase()
    due = users(db, 40, "u", SLOT - timedelta(minutes=1))
    users(db, 5, "later", SLOT + timedelta(minutes=1))
    agents_only = users(db, 3, "quiet", SLOT, watchlist=False)
    enqueue = Recording()

    report = fan_out(db, enqueue, SLOT, threads=4)

    agents = due + agents_only  # each task's chunks are cut in its query's order
    assert report.due == {"ai": 43, "watchlist": 40}
    assert report.claimed == {"ai": 43, "watchlist": 40}
    assert report.enqueued == {"ai": 3, "watchlist": 1}
    assert report.already_queued == {} and report.released == {}
    # Written on condition, as read; only the three users the agent's query alone found
    # (it reads ids and update times only) were read again, in a transaction.
    assert report.transacted == 3
    expected = {(AGENT_QUEUE.function, chunk_name("ai", SLOT, sorted(agents[i:i + 15])), tuple(
        sorted(agents[i:i + 15]))) for i in range(0, 43, 15)} | {
        (WATCHLIST_QUEUE.function, chunk_name("watchlist", SLOT, sorted(due)), tuple(sorted(due)))}
    assert {(function, name, tuple(data["uids"])) for function, name, data in enqueue.sent} == (
        expected)
    assert all(data["claimedAt"] == SLOT.isoformat() and data["chunk"] == name
               for _, name, data in enqueue.sent)
    for _, name, data in enqueue.sent:
        task = data["task"]
        for uid in data["uids"]:
            settings = db.documents[f"users/{uid}"]["automation"][task]
            assert settings["lease"] == {"runId": name, "until": SLOT + fanout.QUEUE_LEASE}
            assert settings["nextRun"] == SLOT + timedelta(
                minutes=DEFAULT_INTERVAL_MINUTES[task])
    assert "lease" not in db.documents["users/later000"]["automation"]["ai"]

    # The same minute again (a duplicate delivery): nothing is due, nothing enqueued.
    again = fan_out(db, enqueue, SLOT, threads=4)
    assert again.due == {"ai": 0, "watchlist": 0} and again.enqueued == {}
    assert len(enqueue.sent) == 4


def test_a_chunk_already_queued_is_counted_and_a_failed_enqueue_releases_its_chunk() -> None:
    db = MemoryDatabase()
    due_at = SLOT - timedelta(minutes=1)
    uids = users(db, 10, "u", due_at)
    agents = chunk_name("ai", SLOT, uids)
    enqueue = Recording(queued=frozenset({agents}),
                        failing=frozenset({WATCHLIST_QUEUE.function}))

    report = fan_out(db, enqueue, SLOT, threads=2)

    assert report.claimed == {"ai": 10, "watchlist": 10}
    assert report.enqueued == {} and report.already_queued == {"ai": 1}
    assert report.released == {"watchlist": 10}
    assert [name for _, name, _ in enqueue.sent] == [agents]
    for uid in uids:
        automation = db.documents[f"users/{uid}"]["automation"]
        assert automation["ai"]["lease"]["runId"] == agents
        assert automation["watchlist"]["lease"] is None
        assert automation["watchlist"]["nextRun"] == due_at
    # The released chunk is due again: the next run enqueues it under the same name.
    retry = fan_out(db, Recording(), SLOT, threads=2)
    assert retry.due == {"ai": 0, "watchlist": 10} and retry.enqueued == {"watchlist": 1}


def test_the_claim_decision_follows_the_settings_as_read() -> None:
    lease = timedelta(minutes=15)
    due = {"enabled": True, "nextRun": SLOT - timedelta(minutes=1)}
    claimed = {"automation.ai.nextRun": SLOT + timedelta(minutes=60),
               "automation.ai.lease": {"runId": "c1", "until": SLOT + lease}}

    assert claim_fields(due, "ai", SLOT, "c1", lease) == claimed
    assert claim_fields(None, "ai", SLOT, "c1", lease) is None
    assert claim_fields({**due, "enabled": False}, "ai", SLOT, "c1", lease) is None
    assert claim_fields({**due, "nextRun": SLOT + timedelta(seconds=1)}, "ai", SLOT, "c1",
                        lease) is None
    held = {"runId": "c0", "until": SLOT + timedelta(minutes=1)}
    assert claim_fields({**due, "lease": held}, "ai", SLOT, "c1", lease) is None
    assert claim_fields({**due, "lease": held}, "ai", SLOT, "c0", lease) == {
        **claimed, "automation.ai.lease": {"runId": "c0", "until": SLOT + lease}}
    expired = {"runId": "c0", "until": SLOT}
    assert claim_fields({**due, "lease": expired}, "ai", SLOT, "c1", lease) == claimed
    # config/limits' minimum interval raises a shorter one; a day is the longest.
    assert claim_fields({**due, "intervalMinutes": 5}, "ai", SLOT, "c1", lease, 15)[
        "automation.ai.nextRun"] == SLOT + timedelta(minutes=15)
    assert claim_fields({**due, "intervalMinutes": 5000}, "watchlist", SLOT, "c1", lease)[
        "automation.watchlist.nextRun"] == SLOT + timedelta(days=1)


def test_a_user_read_in_two_versions_or_without_its_settings_is_left_to_the_transaction() -> None:
    settings = {"enabled": True, "nextRun": SLOT}
    first, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    both = {"automation": {"ai": settings, "watchlist": settings}}

    def owner(uid: str, task: str) -> str:
        return f"chunk-{task}"

    assert plan_claim("u1", {"ai": Snapshot("users/u1", {}, None, first),
                             "watchlist": Snapshot("users/u1", both, None, later)},
                      SLOT, owner, QUEUE_LEASE) is None
    assert plan_claim("u1", {"ai": Snapshot("users/u1", {}, None, first)},
                      SLOT, owner, QUEUE_LEASE) is None
    plan = plan_claim("u1", {"ai": Snapshot("users/u1", {}, None, first),
                             "watchlist": Snapshot("users/u1", both, None, first)},
                      SLOT, owner, QUEUE_LEASE)
    assert plan is not None and plan.seen == first
    assert [(c.task, c.run_id) for c in plan.claims] == [("ai", "chunk-ai"),
                                                         ("watchlist", "chunk-watchlist")]


def test_a_user_changed_after_the_queries_is_claimed_as_it_is_now_not_as_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "SPLIT_USERS", 2)

    def edit(db: MemoryDatabase) -> None:
        db.write(lambda batch: batch.update("users/u003", {"automation.ai.enabled": False}))
        db.write(lambda batch: batch.update("users/u004", {
            "automation.watchlist.intervalMinutes": 30}))

    memory = MemoryDatabase()
    db = ChangedAfterTheQueries(memory, lambda: edit(memory))
    uids = users(db, 40, "u", SLOT - timedelta(minutes=1))
    enqueue = Recording()

    report = fan_out(db, enqueue, SLOT, threads=2)

    assert report.due == {"ai": 40, "watchlist": 40}
    assert report.claimed == {"ai": 39, "watchlist": 40}
    # Only the changed users, split out of their batch, were read again.
    assert 2 <= report.transacted <= 4
    edited = db.documents["users/u003"]["automation"]
    assert "lease" not in edited["ai"] and edited["ai"]["nextRun"] == SLOT - timedelta(minutes=1)
    assert edited["watchlist"]["nextRun"] == SLOT + timedelta(minutes=15)
    slower = db.documents["users/u004"]["automation"]["watchlist"]
    assert slower["nextRun"] == SLOT + timedelta(minutes=30)
    # u003's agent chunk goes without it; every other user is in exactly one chunk per task.
    sent = {data["task"]: [] for _, _, data in enqueue.sent}
    for _, name, data in enqueue.sent:
        sent[data["task"]].extend(data["uids"])
        for uid in data["uids"]:
            assert db.documents[f"users/{uid}"]["automation"][data["task"]]["lease"][
                "runId"] == name
    assert sorted(sent["ai"]) == [uid for uid in uids if uid != "u003"]
    assert sorted(sent["watchlist"]) == uids


def test_an_overlapping_run_that_claimed_first_leaves_nothing_to_claim_twice() -> None:
    other = Recording()
    overlapping: list[fanout.FanOutReport] = []
    db = ChangedAfterTheQueries(MemoryDatabase(),
                                lambda: overlapping.append(fan_out(db, other, SLOT)))
    uids = users(db, 40, "u", SLOT - timedelta(minutes=1))
    enqueue = Recording()

    report = fan_out(db, enqueue, SLOT, threads=2)

    # The other run (the same minute delivered twice) queried and claimed in between.
    assert overlapping[0].claimed == {"ai": 40, "watchlist": 40}
    assert report.due == {"ai": 40, "watchlist": 40}
    assert report.claimed == {} and report.enqueued == {} and enqueue.sent == []
    assert report.transacted == 40
    owners = {name for _, name, _ in other.sent}
    for uid in uids:
        for task in ("ai", "watchlist"):
            settings = db.documents[f"users/{uid}"]["automation"][task]
            assert settings["lease"]["runId"] in owners
            assert settings["nextRun"] == SLOT + timedelta(minutes=DEFAULT_INTERVAL_MINUTES[task])


def test_a_task_that_falls_due_after_the_queries_waits_for_the_next_run() -> None:
    # u001's agent is not due when the queries run, then falls due before the claim: no
    # chunk of this run was cut for it, so this run claims only its watchlist (the agent
    # is found by the next minute's query). Claiming it here, as the code before did,
    # leased it to a chunk this run never counted, and the run failed on it.
    def falls_due(db: MemoryDatabase) -> None:
        db.write(lambda batch: batch.update("users/u001", {
            "automation.ai.nextRun": SLOT - timedelta(minutes=1)}))

    memory = MemoryDatabase()
    db = ChangedAfterTheQueries(memory, lambda: falls_due(memory))
    uids = users(db, 3, "u", SLOT - timedelta(minutes=1))
    db.write(lambda batch: batch.update("users/u001", {
        "automation.ai.nextRun": SLOT + timedelta(minutes=5)}))
    enqueue = Recording()

    report = fan_out(db, enqueue, SLOT, threads=2)

    assert report.due == {"ai": 2, "watchlist": 3}
    assert report.claimed == {"ai": 2, "watchlist": 3}
    agent = db.documents["users/u001"]["automation"]["ai"]
    assert "lease" not in agent and agent["nextRun"] == SLOT - timedelta(minutes=1)
    sent = {data["task"]: sorted(data["uids"]) for _, _, data in enqueue.sent}
    assert sent == {"ai": ["u000", "u002"], "watchlist": uids}
