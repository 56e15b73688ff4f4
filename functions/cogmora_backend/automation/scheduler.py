"""mainScheduler's job: run each user's due automation tasks, each exactly once.

A run finds the users whose `automation.ai` or `automation.watchlist` task is
enabled and due (`nextRun <= now`), claims each task (moves `nextRun` forward
by the task's interval and records a lease: `claim_fields`, in a transaction
here, on condition of the user's update time in `fanout`), so overlapping runs
never run a task twice, then runs the claimed tasks with bounded
concurrency and a per-task time limit, and records `lastRun`, `lastStatus`
(`ok`, `partial`, `error`, `timeout`) and `lastError`. A failure of one task
touches no other.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cogmora_backend import paths, queries
from cogmora_backend.store import Database, Snapshot, Transaction

log = logging.getLogger(__name__)

TASKS = ("ai", "watchlist")
DEFAULT_INTERVAL_MINUTES = {"ai": 60, "watchlist": 15}
MIN_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES = 1, 1440
DUE_QUERIES = {"ai": queries.DUE_AI, "watchlist": queries.DUE_WATCHLISTS}


@dataclass(frozen=True)
class Claim:
    """A task this run owns until `lease_until`."""

    uid: str
    task: str
    run_id: str
    claimed_at: datetime
    settings: dict[str, Any]
    user: dict[str, Any]


@dataclass(frozen=True)
class TaskResult:
    """What a task did: `ok` or `partial` (with an error summary), and fields to record."""

    status: str = "ok"
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[Claim], Awaitable[TaskResult]]


@dataclass
class SchedulerReport:
    """Counts of one run: due, claimed, and outcomes by task and status."""

    run_id: str
    due: dict[str, int] = field(default_factory=dict)
    claimed: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def interval_of(settings: Mapping[str, Any], task: str,
                minimum: float = MIN_INTERVAL_MINUTES) -> timedelta:
    """Return the task's interval, the default when absent, clamped to `minimum` .. 1 day.

    `minimum` is 1 minute, or `minAiIntervalMinutes` of `config/limits` for the agent.
    """
    raw = settings.get("intervalMinutes")
    minutes = raw if isinstance(raw, int | float) and not isinstance(raw, bool) else (
        DEFAULT_INTERVAL_MINUTES[task])
    return timedelta(minutes=min(max(float(minutes), minimum), MAX_INTERVAL_MINUTES))


def due_users(database: Database, task: str, now: datetime, limit: int) -> list[str]:
    """Return the ids of users whose `task` is enabled with `nextRun <= now`, oldest first
    (their ids only: the claim reads each user in its transaction)."""
    return database.ids(DUE_QUERIES[task], (True,), now, limit=limit)


#: The fields of a task's settings a claim is decided on (`claim_fields`).
CLAIM_FIELDS = ("enabled", "nextRun", "intervalMinutes", "lease")


def due_settings(database: Database, task: str, now: datetime, limit: int,
                 read: tuple[str, ...]) -> Iterator[Snapshot]:
    """Yield the users whose `task` is enabled with `nextRun <= now`, oldest first, as
    they arrive, each with its update time and, of the tasks `read`, only the settings
    a claim is decided on (`CLAIM_FIELDS`; none: the ids and times alone), so that the
    claim can be written on condition that the user is unchanged since."""
    return database.stream(DUE_QUERIES[task], (True,), now, limit=limit, fields=tuple(
        f"automation.{other}.{name}" for other in read for name in CLAIM_FIELDS))


#: Users claimed and recorded per transaction (one `get_all` and one commit each).
CHUNK = 100


def settings_of(user: Mapping[str, Any] | None, task: str) -> dict[str, Any] | None:
    """Return the user's settings of `task` (`automation.<task>`), or None."""
    automation = (user or {}).get("automation")
    settings = automation.get(task) if isinstance(automation, dict) else None
    return settings if isinstance(settings, dict) else None


def claim_fields(settings: Mapping[str, Any] | None, task: str, now: datetime, owner: str,
                 lease: timedelta, minimum: float = MIN_INTERVAL_MINUTES
                 ) -> dict[str, Any] | None:
    """Decide whether `owner` claims `task` from its settings as read; return the fields
    that claim it (`nextRun` moved by the interval, the lease), or None.

    None when the task is disabled, not due (another run claimed it) or leased
    to another owner until after `now`. The one rule of every claim: in a
    transaction (`claim_tasks`) or written on condition that the user is still
    the version read (`fanout`).
    """
    if settings is None or settings.get("enabled") is not True:
        return None
    next_run = settings.get("nextRun")
    if isinstance(next_run, datetime) and next_run > now:
        return None
    held = settings.get("lease")
    if isinstance(held, dict) and isinstance(held.get("until"), datetime) and (
            held["until"] > now and held.get("runId") != owner):
        return None
    return {f"automation.{task}.nextRun": now + interval_of(settings, task, minimum),
            f"automation.{task}.lease": {"runId": owner, "until": now + lease}}


def claim_many(database: Database, uids: list[str], task: str, now: datetime, run_id: str,
               lease: timedelta, minimum: float = MIN_INTERVAL_MINUTES,
               run_ids: Mapping[str, str] | None = None) -> list[Claim]:
    """Claim the due tasks of `uids` in one transaction: move `nextRun`, record the lease.

    A task is left out when it is disabled, not due (another run claimed it)
    or leased to another run that has not finished. `run_ids` (uid → run id)
    leases users to several runs in one transaction (the queue's chunks);
    the others are leased to `run_id`.
    """
    return claim_tasks(database, uids, (task,), now,
                       lambda uid, _: run_ids.get(uid, run_id) if run_ids else run_id,
                       lease, {task: minimum})


def claim_tasks(database: Database, uids: list[str], tasks: tuple[str, ...], now: datetime,
                owner_of: Callable[[str, str], str | None], lease: timedelta,
                minimum: Mapping[str, float] | None = None) -> list[Claim]:
    """Claim every due task of `tasks` of each of `uids` in one transaction (one write
    per user), each leased to `owner_of(uid, task)` (None: that task of that user is
    not to be claimed here); as `claim_many`."""

    def work(tx: Transaction) -> list[Claim]:
        users = tx.get_many([paths.user(uid) for uid in uids])
        claims = []
        for uid, user in zip(uids, users, strict=True):
            update: dict[str, Any] = {}
            for task in tasks:
                owner = owner_of(uid, task)
                settings = settings_of(user, task)
                fields = None if owner is None else claim_fields(
                    settings, task, now, owner, lease,
                    (minimum or {}).get(task, MIN_INTERVAL_MINUTES))
                if owner is None or settings is None or fields is None:
                    continue
                update.update(fields)
                assert user is not None
                claims.append(Claim(uid, task, owner, now, dict(settings), user))
            if update:
                tx.update(paths.user(uid), update)
        return claims

    return database.run(work)


@dataclass(frozen=True)
class Outcome:
    """How a claimed task ended."""

    claim: Claim
    status: str
    error: str | None
    fields: Mapping[str, Any]


def record_many(database: Database, outcomes: list[Outcome], finished_at: datetime) -> None:
    """Record outcomes and release leases in one transaction (only leases this run holds)."""
    if not outcomes:
        return

    def work(tx: Transaction) -> None:
        users = tx.get_many([paths.user(o.claim.uid) for o in outcomes])
        for outcome, user in zip(outcomes, users, strict=True):
            lease = (settings_of(user, outcome.claim.task) or {}).get("lease")
            if isinstance(lease, dict) and lease.get("runId") not in (None, outcome.claim.run_id):
                continue
            prefix = f"automation.{outcome.claim.task}"
            tx.update(paths.user(outcome.claim.uid), {
                f"{prefix}.lastRun": finished_at,
                f"{prefix}.lastStatus": outcome.status,
                f"{prefix}.lastError": outcome.error,
                f"{prefix}.lease": None,
                **{f"{prefix}.{key}": value for key, value in outcome.fields.items()},
            })

    database.run(work)


async def run_due_tasks(
    database: Database,
    now: datetime,
    runners: Mapping[str, Runner],
    concurrency: int = 24,
    time_limit: float = 20.0,
    limit: int = 5000,
    clock: Callable[[], datetime] | None = None,
    min_interval_minutes: Mapping[str, float] | None = None,
) -> SchedulerReport:
    """Find, claim and run every due task once; return what happened.

    Tasks are claimed and recorded in chunks of `CHUNK` users per
    transaction; at most `concurrency` tasks run at once, each cut off after
    `time_limit` seconds; `min_interval_minutes` (task → minutes) raises a
    task's shortest interval (`minAiIntervalMinutes`). Firestore calls run in
    threads, one per task that may run at once: more threads only contend for
    the interpreter (measured in bench/scheduler_scale.py with 5,000 users:
    12 at once 68 s, 16 64 s, 24 57 s, 64 95 s).
    """
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=concurrency,
                                                 thread_name_prefix="automation"))
    started = loop.time()
    report = SchedulerReport(run_id=uuid.uuid4().hex[:12])
    lease = timedelta(seconds=time_limit * 3 + 60)
    gate = asyncio.Semaphore(concurrency)
    finished_at = clock or (lambda: now)

    async def run_one(claimed: Claim) -> Outcome:
        return await run_claim(claimed, runners, gate, time_limit, report.outcomes)

    async def run_chunk(task: str, uids: list[str]) -> None:
        minimum = (min_interval_minutes or {}).get(task, MIN_INTERVAL_MINUTES)
        claims = await asyncio.to_thread(claim_many, database, uids, task, now,
                                         report.run_id, lease, minimum)
        report.claimed[task] = report.claimed.get(task, 0) + len(claims)
        results = await asyncio.gather(*(run_one(c) for c in claims), return_exceptions=True)
        # Every claimed task's outcome is recorded and its lease released, whatever escaped.
        outcomes = [result if isinstance(result, Outcome) else
                    Outcome(claim, "error", f"{type(result).__name__}: {result}"[:500], {})
                    for claim, result in zip(claims, results, strict=True)]
        await asyncio.to_thread(record_many, database, outcomes, finished_at())

    work: list[Coroutine[Any, Any, None]] = []
    for task in TASKS:
        if task not in runners:
            continue
        uids = await asyncio.to_thread(due_users, database, task, now, limit)
        report.due[task] = len(uids)
        work.extend(run_chunk(task, uids[i:i + CHUNK]) for i in range(0, len(uids), CHUNK))
    await asyncio.gather(*work)
    report.seconds = loop.time() - started
    log.info("scheduler run", extra={"runId": report.run_id, "due": report.due,
                                     "claimed": report.claimed, "outcomes": report.outcomes,
                                     "seconds": round(report.seconds, 3)})
    return report


async def run_claim(claimed: Claim, runners: Mapping[str, Runner], gate: asyncio.Semaphore,
                    time_limit: float, counts: dict[str, int]) -> Outcome:
    """Run one claimed task under `gate`, cut off after `time_limit` seconds; count its
    outcome (`task:status`) in `counts`. A failure becomes the task's outcome."""
    async with gate:
        try:
            result = await asyncio.wait_for(runners[claimed.task](claimed), time_limit)
            outcome = Outcome(claimed, result.status, result.error, result.fields)
        except TimeoutError:
            outcome = Outcome(claimed, "timeout", f"took longer than {time_limit} s", {})
        except asyncio.CancelledError:
            if _being_cancelled():
                raise  # the run itself is being cancelled
            # Something this task awaited was cancelled by someone else: its failure.
            log.error("automation task cancelled from outside",
                      extra={"uid": claimed.uid, "task": claimed.task})
            outcome = Outcome(claimed, "error", "CancelledError: a shared wait was "
                              "cancelled", {})
        except Exception as failure:  # one task's failure touches no other
            log.exception("automation task failed",
                          extra={"uid": claimed.uid, "task": claimed.task})
            outcome = Outcome(claimed, "error", f"{type(failure).__name__}: {failure}"[:500],
                              {})
    key = f"{claimed.task}:{outcome.status}"
    counts[key] = counts.get(key, 0) + 1
    return outcome


def _being_cancelled() -> bool:
    """Return whether the running task itself has been asked to cancel."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


def unscheduled_tasks(user: dict[str, Any] | None) -> list[str]:
    """Return the user's tasks that are enabled but have no `nextRun` yet."""
    return [task for task in TASKS
            if (settings := settings_of(user, task)) is not None
            and settings.get("enabled") is True and settings.get("nextRun") is None]


def schedule_new_automation(database: Database, uid: str, now: Any) -> list[str]:
    """Make an enabled task without `nextRun` due at once (sets `nextRun = now`)."""
    path = paths.user(uid)

    def work(tx: Transaction) -> list[str]:
        tasks = unscheduled_tasks(tx.get(path))
        if tasks:
            tx.update(path, {f"automation.{task}.nextRun": now for task in tasks})
        return tasks

    return database.run(work)
