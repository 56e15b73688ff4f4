"""mainScheduler on Cloud Tasks: claim due work in chunks, enqueue each chunk, run it there.

mainScheduler (every minute) only finds the due users, claims them (moves
`nextRun`, leases each task to its chunk: `lease.runId` is the chunk's name)
and enqueues one task per chunk on the task's queue function
(`runAgentChunk`, `runWatchlistChunk`). The due queries read what a claim is
decided on and each user's update time, and stream; users are claimed
meanwhile, in batches of `CLAIM_USERS` (one write per user), each write on
condition that the user is unchanged since read; a user changed since (or
read in two versions) is claimed, or not, by a transaction that reads it
anew. A chunk's name is a hash of the task, the scheduled minute and its
users, so enqueueing it again (a client retry after a lost answer, a
duplicate scheduler delivery) is refused by Cloud Tasks as already queued:
nothing is enqueued twice.

The queue function takes the chunk's leases (only users still leased to this
chunk, and not held by another attempt that is still running), runs their
tasks as the in-process scheduler did, records each outcome and releases the
lease. A redelivered or retried chunk therefore skips every user it already
recorded: each task is idempotent through its lease. A chunk that fails
(a transaction that keeps failing, a crash) is retried by the queue; on its
last attempt the failure is written to `automationDeadLetters/{chunk}` with
the users left unrecorded, whose tasks are recorded `error` and released.

The queues' settings are here, in code (`QUEUES`), and sized for the model
provider's quota (`MODEL_REQUESTS_PER_MINUTE`): see docs/operations.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cogmora_backend import paths
from cogmora_backend.automation.scheduler import (
    MIN_INTERVAL_MINUTES,
    TASKS,
    Claim,
    Outcome,
    Runner,
    claim_fields,
    claim_tasks,
    due_settings,
    record_many,
    run_claim,
    settings_of,
)
from cogmora_backend.store import Database, Snapshot, StaleWrite, Transaction
from cogmora_backend.taskqueue import Enqueue, QueuePolicy

log = logging.getLogger(__name__)

#: Requests per minute the model provider grants the project (Gemini 2.5 Flash,
#: paid tier 1, at the time of writing: check the project's quota page). Each AI
#: task asks the model once.
MODEL_REQUESTS_PER_MINUTE = 1000
#: Users claimed per batch by mainScheduler: one write per user (both tasks at once),
#: each on condition that the user is unchanged since the due queries; a commit holds
#: at most 500 writes.
CLAIM_USERS = 500
#: Users claimed per transaction, for those the batches cannot claim (changed since
#: the due queries): one `get_all`, one write per user.
TRANSACTION_USERS = 200
#: A batch that fails its precondition is split in halves down to this many users,
#: which are then claimed in a transaction.
SPLIT_USERS = 25
#: The due query that reads the settings a claim is decided on, of every task: its
#: users are claimed without another read. The other query reads ids and update times
#: only (each document it sends costs the emulator and the client as much again); a
#: user only it finds is claimed through a transaction. The watchlist falls due the
#: most often (every 15 minutes by default, the agent every 60).
READING_TASK = "watchlist"
#: Claim batches (or transactions) and enqueue calls mainScheduler runs at once.
CLAIM_THREADS = 16
#: How long a queued chunk keeps its users from another claim once they fall due again.
QUEUE_LEASE = timedelta(minutes=15)
#: Users mainScheduler claims per task and run (the rest stay due for the next minute).
FAN_OUT_LIMIT = 50_000
DEAD_LETTERS = "automationDeadLetters"


@dataclass(frozen=True, kw_only=True)
class QueueSettings(QueuePolicy):
    """One task queue function: its chunks, and (`QueuePolicy`) its rate, concurrency, retries.

    Its `timeout_sec` covers a chunk's tasks: at most `users_per_chunk /
    concurrency` rounds of `time_limit`, and the transactions around them.
    """

    function: str
    task: str
    #: Users per enqueued chunk.
    users_per_chunk: int
    #: Tasks of one chunk run at once, each cut off after `time_limit` seconds.
    concurrency: int
    time_limit: float

    @property
    def users_per_minute(self) -> int:
        """The most users this queue starts per minute (its sustained capacity)."""
        return self.max_dispatches_per_second * self.users_per_chunk * 60


#: The AI agent: one model request per user, so users per minute must stay within
#: MODEL_REQUESTS_PER_MINUTE: 1 chunk/s x 15 users = 900 requests/min (10 % headroom).
#: A chunk's 15 tasks run at once (one round of at most 20 s): 30 chunks at once
#: covers 1 chunk/s at up to 30 s each, and bounds the model requests in flight to 450.
AGENT_QUEUE = QueueSettings(
    function="runAgentChunk", task="ai", users_per_chunk=15, concurrency=15, time_limit=20.0,
    max_dispatches_per_second=1, max_concurrent_dispatches=30,
    max_attempts=5, min_backoff_seconds=1, max_backoff_seconds=60, max_doublings=4,
    timeout_sec=120)
#: The watchlist scraper: no model; each chunk fetches each market page once.
#: 10 chunks/s x 100 users = 60,000 users/min, far above the 15-minute default interval's
#: needs (50,000 users: 3,334 per minute); 20 at once bounds the page fetches in flight.
WATCHLIST_QUEUE = QueueSettings(
    function="runWatchlistChunk", task="watchlist", users_per_chunk=100, concurrency=24,
    time_limit=20.0, max_dispatches_per_second=10, max_concurrent_dispatches=20,
    max_attempts=5, min_backoff_seconds=1, max_backoff_seconds=60, max_doublings=4,
    timeout_sec=180)
QUEUES: dict[str, QueueSettings] = {q.task: q for q in (AGENT_QUEUE, WATCHLIST_QUEUE)}
assert AGENT_QUEUE.users_per_minute <= MODEL_REQUESTS_PER_MINUTE


def chunk_name(task: str, slot: datetime, uids: list[str]) -> str:
    """Return a chunk's task name: a hash (Cloud Tasks spreads names by their prefix)
    of the task, the scheduled minute and the users, then the task."""
    digest = hashlib.sha256(f"{task}|{slot.isoformat()}|{','.join(uids)}".encode())
    return f"{digest.hexdigest()[:40]}-{task}"


@dataclass
class FanOutReport:
    """Counts of one mainScheduler run: due, claimed, chunks enqueued (or found queued)."""

    slot: str
    due: dict[str, int] = field(default_factory=dict)
    claimed: dict[str, int] = field(default_factory=dict)
    enqueued: dict[str, int] = field(default_factory=dict)
    already_queued: dict[str, int] = field(default_factory=dict)
    released: dict[str, int] = field(default_factory=dict)
    #: Users claimed through a transaction (changed since the due queries), not a batch.
    transacted: int = 0
    #: Of `seconds`: until the due queries had streamed every user (claims and enqueues
    #: run meanwhile); after that, until the last enqueue.
    query_seconds: float = 0.0
    claim_seconds: float = 0.0
    seconds: float = 0.0
    #: Time the threads spent writing claims (batches and transactions) and enqueueing,
    #: summed over the threads.
    claim_thread_seconds: float = 0.0
    enqueue_thread_seconds: float = 0.0


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


@dataclass(frozen=True)
class PlannedClaim:
    """A user's claim decided from the due queries: its fields, written only while the
    user is still the version read (`seen`)."""

    uid: str
    seen: datetime
    fields: dict[str, Any]
    claims: list[Claim]


def plan_claim(uid: str, found: Mapping[str, Snapshot], now: datetime,
               owner_of: Callable[[str, str], str | None], lease: timedelta,
               minimum: Mapping[str, float] | None = None) -> PlannedClaim | None:
    """Decide a user's claim from what the due queries read of it (task → snapshot).

    None when the transaction must decide: the queries read two versions of
    the user (it changed between them) or no update time. The claimed tasks
    are those `claim_fields` allows, each leased to `owner_of(uid, task)`; a
    plan may claim nothing (then nothing is written).
    """
    times = {snapshot.update_time for snapshot in found.values()}
    seen = next(iter(times)) if len(times) == 1 else None
    if seen is None:
        return None
    # One version of the user: each task's settings from whichever query read them.
    read: dict[str, dict[str, Any]] = {}
    for snapshot in found.values():
        for task in TASKS:
            settings = settings_of(snapshot.data, task)
            if settings is not None:
                read[task] = settings
    if any(task not in read for task in found):
        return None  # a due task whose settings no query read: the transaction reads them
    user = {"automation": read}
    update: dict[str, Any] = {}
    claims = []
    for task in found:
        owner = owner_of(uid, task)
        settings = read[task]
        fields = None if owner is None else claim_fields(
            settings, task, now, owner, lease, (minimum or {}).get(task, MIN_INTERVAL_MINUTES))
        if owner is None or fields is None:
            continue
        update.update(fields)
        claims.append(Claim(uid, task, owner, now, dict(settings), user))
    return PlannedClaim(uid, seen, update, claims)


def write_claims(database: Database, planned: list[PlannedClaim]) -> None:
    """Write planned claims in one atomic batch, each only if its user is unchanged.

    Raises `StaleWrite` when any user changed since it was read (edited, or
    claimed by an overlapping run), and then nothing is written.
    """

    def writes(batch: Transaction) -> None:
        for plan in planned:
            batch.update(paths.user(plan.uid), plan.fields, if_update_time=plan.seen)

    database.write(writes)


def fan_out(database: Database, enqueue: Enqueue, slot: datetime,
            limit: int = FAN_OUT_LIMIT, min_interval_minutes: Mapping[str, float] | None = None,
            queues: Mapping[str, QueueSettings] | None = None,
            threads: int = CLAIM_THREADS) -> FanOutReport:
    """Claim every due task (up to `limit` per task) and enqueue it in chunks; run nothing.

    `slot` is the run's scheduled time: the due bound, the claim time and part
    of every chunk's name. The due queries (one per task, at once) read the
    settings a claim is decided on and each user's update time; claims start
    while they still stream. Each task's chunks are cut from its query's
    results in the order they come (due time, then user id). A user is
    claimed, once its chunks are cut, with one write (all its due tasks), in
    batches of `CLAIM_USERS`, on condition that it is unchanged since read. A
    user changed since (edited, claimed by an overlapping run) fails its
    batch, which is split down to it: it is then claimed, or not, by a
    transaction that reads it anew. A chunk whose enqueue fails is released
    (its users' `nextRun` put back, the lease dropped), so the next run claims
    it again.
    """
    started = time.perf_counter()
    queues = queues or QUEUES
    report = FanOutReport(slot=slot.isoformat())
    tasks = tuple(task for task in TASKS if task in queues)
    lock = threading.Lock()
    seen: dict[str, dict[str, Snapshot]] = {}  # uid → task → what its due query read
    cutting: dict[str, list[str]] = {task: [] for task in tasks}
    ended: set[str] = set()
    names: dict[tuple[str, str], str] = {}  # (uid, task) → its chunk
    sizes: dict[str, int] = {}
    ready: list[str] = []
    waiting: set[str] = set()
    jobs: list[Future[None]] = []
    pending: dict[str, list[Claim]] = {}

    def count(counts: dict[str, int], task: str, n: int) -> None:
        with lock:
            _add(counts, task, n)

    def owner_of(uid: str, task: str) -> str | None:
        return names.get((uid, task))  # only a task the user was found due for

    def cut(task: str) -> list[str]:
        """Name the task's chunk being filled (lock held); return its users."""
        uids, cutting[task] = cutting[task], []
        if uids:
            name = chunk_name(task, slot, sorted(uids))
            sizes[name] = len(uids)
            names.update({(uid, task): name for uid in uids})
        return uids

    def check(uids: list[str] | set[str]) -> None:
        """Queue the users whose every chunk is cut, and who will come from no other query
        (lock held)."""
        for uid in list(uids):
            found = seen[uid]
            if all((uid, task) in names if task in found else task in ended
                   for task in tasks):
                waiting.discard(uid)
                ready.append(uid)
            else:
                waiting.add(uid)
        while len(ready) >= CLAIM_USERS:
            batch, ready[:] = ready[:CLAIM_USERS], ready[CLAIM_USERS:]
            jobs.append(pool.submit(claim_and_enqueue, batch))

    reading = READING_TASK if READING_TASK in tasks else tasks[0] if tasks else ""

    def read(task: str) -> None:
        size = queues[task].users_per_chunk
        try:
            for row in due_settings(database, task, slot, limit,
                                    tasks if task == reading else ()):
                with lock:
                    report.due[task] = report.due.get(task, 0) + 1
                    seen.setdefault(row.id, {})[task] = row
                    cutting[task].append(row.id)
                    if len(cutting[task]) >= size:
                        check(cut(task))
        finally:
            with lock:
                report.due.setdefault(task, 0)
                check(cut(task))
                ended.add(task)
                check(waiting)

    def claim_and_enqueue(uids: list[str]) -> None:
        began = time.perf_counter()
        planned, unsure = [], []
        for uid in uids:
            plan = plan_claim(uid, seen[uid], slot, owner_of, QUEUE_LEASE,
                              min_interval_minutes)
            if plan is None:
                unsure.append(uid)
            elif plan.claims:
                planned.append(plan)
        claims = write_or_split(planned)
        for i in range(0, len(unsure), TRANSACTION_USERS):
            claims += transact(unsure[i:i + TRANSACTION_USERS])
        wrote = time.perf_counter()
        claimed(claims)
        with lock:
            report.claim_thread_seconds += wrote - began
            report.enqueue_thread_seconds += time.perf_counter() - wrote

    def write_or_split(planned: list[PlannedClaim]) -> list[Claim]:
        """Write the batch; when a user in it changed since read, split it to find which."""
        if not planned:
            return []
        try:
            write_claims(database, planned)
        except StaleWrite:
            if len(planned) <= SPLIT_USERS:
                return transact([plan.uid for plan in planned])
            half = len(planned) // 2
            return write_or_split(planned[:half]) + write_or_split(planned[half:])
        return [claim for plan in planned for claim in plan.claims]

    def transact(uids: list[str]) -> list[Claim]:
        claims = claim_tasks(database, uids, tasks, slot, owner_of, QUEUE_LEASE,
                             min_interval_minutes)
        with lock:
            report.transacted += len(uids)
        return claims

    def claimed(claims: list[Claim]) -> None:
        chunks: dict[str, list[Claim]] = {}
        for claim in claims:
            count(report.claimed, claim.task, 1)
            chunks.setdefault(claim.run_id, []).append(claim)
        for name, members in chunks.items():
            enqueue_chunk(name, members)

    def enqueue_chunk(name: str, members: list[Claim]) -> None:
        """Enqueue a chunk once all its claimed users are in (a chunk may span batches)."""
        task = members[0].task
        with lock:
            gathered = pending.setdefault(name, [])
            gathered.extend(members)
            if len(gathered) < sizes[name]:
                return
            del pending[name]
        send(task, name, gathered)

    def send(task: str, name: str, members: list[Claim]) -> None:
        # In the order the chunk was named in, whichever batch finished first.
        data = {"task": task, "chunk": name, "uids": sorted(c.uid for c in members),
                "claimedAt": slot.isoformat()}
        try:
            queued = enqueue(queues[task].function, name, data)
        except Exception as failure:
            log.error("enqueue failed; the chunk is released", extra={
                "chunk": name, "task": task, "error": f"{type(failure).__name__}: {failure}"})
            count(report.released, task, release(database, members))
            return
        count(report.enqueued if queued else report.already_queued, task, 1)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fan-out") as pool:
        # The due queries stream at once, each on a thread of its own; the pool claims
        # and enqueues meanwhile.
        with ThreadPoolExecutor(max_workers=max(len(tasks), 1),
                                thread_name_prefix="due") as queries:
            list(queries.map(read, tasks))
        report.query_seconds = time.perf_counter() - started
        with lock:
            jobs.extend(pool.submit(claim_and_enqueue, ready[i:i + CLAIM_USERS])
                        for i in range(0, len(ready), CLAIM_USERS))
            ready.clear()
        for job in jobs:
            job.result()
    # Chunks some of whose users were not claimed (changed, or claimed by another run).
    for name, members in list(pending.items()):
        send(members[0].task, name, members)
    report.seconds = time.perf_counter() - started
    report.claim_seconds = report.seconds - report.query_seconds
    log.info("scheduler fan-out", extra={
        "slot": report.slot, "due": report.due, "claimed": report.claimed,
        "enqueued": report.enqueued, "alreadyQueued": report.already_queued,
        "released": report.released, "claimedTotal": sum(report.claimed.values()),
        "transacted": report.transacted, "querySeconds": round(report.query_seconds, 3),
        "seconds": round(report.seconds, 3)})
    return report


def release(database: Database, claims: list[Claim]) -> int:
    """Undo claims never enqueued: put `nextRun` back, drop the lease (if still theirs)."""

    def work(tx: Transaction) -> int:
        users = tx.get_many([paths.user(c.uid) for c in claims])
        released = 0
        for claim, user in zip(claims, users, strict=True):
            lease = _lease(user, claim.task)
            if lease.get("runId") != claim.run_id or lease.get("attempt"):
                continue
            tx.update(paths.user(claim.uid), {
                f"automation.{claim.task}.nextRun": claim.settings.get("nextRun"),
                f"automation.{claim.task}.lease": None})
            released += 1
        return released

    return database.run(work)


def _lease(user: Mapping[str, Any] | None, task: str) -> dict[str, Any]:
    automation = (user or {}).get("automation")
    settings = automation.get(task) if isinstance(automation, dict) else None
    lease = settings.get("lease") if isinstance(settings, dict) else None
    return lease if isinstance(lease, dict) else {}


@dataclass(frozen=True)
class Chunk:
    """An enqueued chunk as the queue function receives it."""

    task: str
    name: str
    uids: list[str]
    claimed_at: datetime

    @classmethod
    def of(cls, data: Any) -> Chunk:
        """Read a task's payload; raise ValueError when it is not a chunk."""
        if not isinstance(data, dict):
            raise ValueError("a chunk is an object")
        task, name, uids = data.get("task"), data.get("chunk"), data.get("uids")
        if task not in QUEUES or not isinstance(name, str) or not name:
            raise ValueError(f"not a chunk: task {task!r}, name {name!r}")
        if not isinstance(uids, list) or not all(isinstance(u, str) and u for u in uids):
            raise ValueError("a chunk's uids are a list of user ids")
        claimed_at = datetime.fromisoformat(str(data.get("claimedAt")))
        if claimed_at.tzinfo is None:
            raise ValueError("claimedAt has no time zone")
        return cls(task, name, uids, claimed_at)


def take(database: Database, chunk: Chunk, attempt: str, now: datetime,
         hold: timedelta) -> list[Claim]:
    """Take the chunk's users still leased to it, for this attempt, for `hold`.

    A user is skipped when its lease is no longer the chunk's (recorded already,
    or claimed again after the lease expired) or is held by another attempt
    that has not run out (a duplicate delivery running at the same time).
    """

    def work(tx: Transaction) -> list[Claim]:
        users = tx.get_many([paths.user(uid) for uid in chunk.uids])
        claims = []
        for uid, user in zip(chunk.uids, users, strict=True):
            lease = _lease(user, chunk.task)
            if lease.get("runId") != chunk.name:
                continue
            holder, until = lease.get("attempt"), lease.get("until")
            if holder not in (None, attempt) and isinstance(until, datetime) and until > now:
                continue
            tx.update(paths.user(uid), {f"automation.{chunk.task}.lease": {
                "runId": chunk.name, "attempt": attempt, "until": now + hold}})
            assert user is not None
            settings = user["automation"][chunk.task]
            claims.append(Claim(uid, chunk.task, chunk.name, chunk.claimed_at, dict(settings),
                                user))
        return claims

    return database.run(work)


def let_go(database: Database, chunk: Chunk, attempt: str) -> None:
    """Drop this attempt's hold on the users it left unrecorded, so the retry takes them."""

    def work(tx: Transaction) -> None:
        users = tx.get_many([paths.user(uid) for uid in chunk.uids])
        for uid, user in zip(chunk.uids, users, strict=True):
            lease = _lease(user, chunk.task)
            if lease.get("runId") == chunk.name and lease.get("attempt") == attempt:
                tx.update(paths.user(uid), {f"automation.{chunk.task}.lease": {
                    "runId": chunk.name, "attempt": None, "until": lease.get("until")}})

    database.run(work)


def dead_letter(database: Database, chunk: Chunk, error: str, attempts: int,
                now: datetime) -> list[str]:
    """Record a chunk that failed its last attempt; record its unfinished tasks `error`.

    Returns the users that were left unrecorded (their leases are released).
    """

    def work(tx: Transaction) -> list[str]:
        users = tx.get_many([paths.user(uid) for uid in chunk.uids])
        left = [uid for uid, user in zip(chunk.uids, users, strict=True)
                if _lease(user, chunk.task).get("runId") == chunk.name]
        tx.set(f"{DEAD_LETTERS}/{chunk.name}", {
            "task": chunk.task, "chunk": chunk.name, "uids": chunk.uids, "unfinished": left,
            "claimedAt": chunk.claimed_at, "attempts": attempts, "error": error[:1000],
            "at": now})
        prefix = f"automation.{chunk.task}"
        for uid in left:
            tx.update(paths.user(uid), {
                f"{prefix}.lastRun": now, f"{prefix}.lastStatus": "error",
                f"{prefix}.lastError": f"not run: its chunk failed {attempts} attempts "
                                       f"({error})"[:500],
                f"{prefix}.lease": None})
        return left

    return database.run(work)


@dataclass
class ChunkReport:
    """What one attempt at a chunk did."""

    chunk: str
    task: str
    attempt: int
    taken: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    dead_lettered: list[str] | None = None
    seconds: float = 0.0


async def run_chunk(database: Database, runners: Mapping[str, Runner], chunk: Chunk,
                    retry_count: int, queue: QueueSettings | None = None,
                    clock: Callable[[], datetime] | None = None) -> ChunkReport:
    """Run one delivery of a chunk: take its leases, run, record; dead-letter on the last try.

    `retry_count` is the queue's (`X-CloudTasks-TaskRetryCount`: 0 on the first
    attempt). A failure before the last attempt lets go of the users left
    unrecorded and raises, so the queue retries; on the last attempt it is
    written to `automationDeadLetters` instead and the delivery ends.
    """
    settings = queue or QUEUES[chunk.task]
    now = clock or (lambda: datetime.now(UTC))
    started = time.perf_counter()
    attempt = uuid.uuid4().hex[:12]
    report = ChunkReport(chunk.name, chunk.task, retry_count + 1)
    hold = timedelta(seconds=settings.timeout_sec + 60)
    try:
        claims = await asyncio.to_thread(take, database, chunk, attempt, now(), hold)
        report.taken = len(claims)
        gate = asyncio.Semaphore(settings.concurrency)
        results = await asyncio.gather(*(
            run_claim(c, runners, gate, settings.time_limit, report.outcomes) for c in claims),
            return_exceptions=True)
        outcomes = [result if isinstance(result, Outcome) else
                    Outcome(claim, "error", f"{type(result).__name__}: {result}"[:500], {})
                    for claim, result in zip(claims, results, strict=True)]
        await asyncio.to_thread(record_many, database, outcomes, now())
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
        if retry_count + 1 < settings.max_attempts:
            log.exception("automation chunk failed; the queue retries it", extra={
                "chunk": chunk.name, "task": chunk.task, "attempt": retry_count + 1})
            try:
                await asyncio.to_thread(let_go, database, chunk, attempt)
            except Exception:  # its hold runs out by itself
                log.exception("could not let go of the chunk's users", extra={
                    "chunk": chunk.name})
            raise
        log.error("automation chunk dead-lettered after its last attempt", extra={
            "chunk": chunk.name, "task": chunk.task, "attempt": retry_count + 1,
            "error": error[:500]})
        try:
            report.dead_lettered = await asyncio.to_thread(
                dead_letter, database, chunk, error, retry_count + 1, now())
        except Exception:  # the users' documents cannot be touched: the record alone
            log.exception("could not record the chunk's users", extra={"chunk": chunk.name})
            await asyncio.to_thread(database.set, f"{DEAD_LETTERS}/{chunk.name}", {
                "task": chunk.task, "chunk": chunk.name, "uids": chunk.uids,
                "unfinished": None, "claimedAt": chunk.claimed_at,
                "attempts": retry_count + 1, "error": error[:1000], "at": now()})
            report.dead_lettered = []
    report.seconds = time.perf_counter() - started
    failed = sum(n for key, n in report.outcomes.items() if not key.endswith(":ok"))
    log.info("automation chunk", extra={
        "chunk": report.chunk, "task": report.task, "attempt": report.attempt,
        "taken": report.taken, "outcomes": report.outcomes, "failed": failed,
        "result": "dead-lettered" if report.dead_lettered is not None else
        "failures" if failed else "ok",
        "deadLettered": report.dead_lettered, "seconds": round(report.seconds, 3)})
    return report
