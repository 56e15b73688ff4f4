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
    QUEUES,
    WATCHLIST_QUEUE,
    Chunk,
    chunk_name,
    fan_out,
)
from cogmora_backend.automation.scheduler import DEFAULT_INTERVAL_MINUTES
from tests.support.functions_main import functions_main
from tests.support.memory import MemoryDatabase

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
    uids = [f"{prefix}{i:03d}" for i in range(n)]
    for uid in uids:
        db.documents[f"users/{uid}"] = {"balance": 10000, "automation": {
            task: {"enabled": enabled.get(task, True), "nextRun": due}
            for task in ("ai", "watchlist")}}
    return uids


def test_fan_out_claims_every_due_user_once_and_enqueues_each_chunk_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "CLAIM_USERS", 7)  # chunks span claim transactions
    db = MemoryDatabase()
    due = users(db, 40, "u", SLOT - timedelta(minutes=1))
    users(db, 5, "later", SLOT + timedelta(minutes=1))
    agents_only = users(db, 3, "quiet", SLOT, watchlist=False)
    enqueue = Recording()

    report = fan_out(db, enqueue, SLOT, threads=4)

    agents = sorted(due + agents_only)
    assert report.due == {"ai": 43, "watchlist": 40}
    assert report.claimed == {"ai": 43, "watchlist": 40}
    assert report.enqueued == {"ai": 3, "watchlist": 1}
    assert report.already_queued == {} and report.released == {}
    expected = {(AGENT_QUEUE.function, chunk_name("ai", SLOT, agents[i:i + 15]), tuple(
        agents[i:i + 15])) for i in range(0, 43, 15)} | {
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
