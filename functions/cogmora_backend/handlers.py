"""Event handlers: what each Cloud Function does with its event.

`functions/main.py` declares the triggers and calls these; they look at the
event only to decide whether there is work, then call the services, which
re-read everything inside a transaction.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cogmora_backend import firestore_client, paths
from cogmora_backend.funding import apply_event
from cogmora_backend.limits import load_limits
from cogmora_backend.reconcile import ReconcileReport, reconcile
from cogmora_backend.settlement import (
    initialize_account,
    load_config,
    settle_account,
)
from cogmora_backend.store import SERVER_TIME
from cogmora_core.contract.executions import ExecutionStatus, is_pending
from cogmora_core.contract.positions import is_priced_close
from cogmora_core.events import (
    ExecutionFilled,
    ExecutionRejected,
    FundedFirst,
    Outcome,
    PositionSettled,
    Skip,
    Skipped,
)

log = logging.getLogger(__name__)


class RecentlySettled:
    """The marks this instance settled lately (at most `capacity`, the oldest forgotten).

    A storm's events mostly find their mark settled already, with the rest of its
    account, by an earlier event: on the instance that settled it, such an event
    needs no read. A settled mark is never pending again: a settled position is
    deleted and its id (its execution's) never used again, and a settled
    execution keeps its final status.
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self._paths: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()  # an instance serves concurrent events in threads

    def record(self, outcomes: Mapping[str, Outcome]) -> None:
        """Remember every mark of `outcomes` that is settled for good."""
        with self._lock:
            for path, outcome in outcomes.items():
                if isinstance(outcome, FundedFirst):
                    outcome = outcome.then
                if isinstance(outcome, PositionSettled | ExecutionFilled | ExecutionRejected):
                    self._paths[path] = None
                    self._paths.move_to_end(path)
            while len(self._paths) > self._capacity:
                self._paths.popitem(last=False)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._paths


#: The marks this process settled (an instance serves many events in turn).
SETTLED = RecentlySettled()


def on_funding_event(event_id: str) -> Outcome:
    """Apply a new `fundingEvents` document to the positions it concerns."""
    return apply_event(firestore_client.database(), event_id)


def on_user_created(uid: str) -> Outcome:
    """Initialise the account of a new `users/{uid}` document."""
    database = firestore_client.database()
    return initialize_account(database, uid, load_config(database))


def on_execution_created(uid: str, execution_id: str, data: dict[str, Any] | None) -> Outcome:
    """Settle a new `executedTriggers` document if it is `pending`, with the user's other marks.

    Settled already (another mark's event settled the user's pending marks
    together, or this event came twice): nothing more is read, and nothing at
    all when this instance settled it.
    """
    if data is not None and data.get("status") != ExecutionStatus.PENDING:
        return Skipped(Skip.NOT_PENDING)
    path = paths.execution(uid, execution_id)
    if path in SETTLED:
        return Skipped(Skip.NOT_PENDING)
    database = firestore_client.database()
    if not is_pending(database.read(path)):
        return Skipped(Skip.NOT_PENDING)
    outcomes = settle_account(database, uid, load_config(database), load_limits(database),
                              asked=path)
    SETTLED.record(outcomes)
    return outcomes[path]


def on_position_written(uid: str, position_id: str, after: dict[str, Any] | None) -> Outcome:
    """Settle a position that a write left `closing` with a price, with the user's other marks.

    Every other write is ignored, and so is a close settled already (without a
    read when this instance settled it).
    """
    if not is_priced_close(after):
        return Skipped(Skip.NOT_A_PRICED_CLOSE)
    path = paths.position(uid, position_id)
    if path in SETTLED:
        return Skipped(Skip.NOT_A_PRICED_CLOSE)
    database = firestore_client.database()
    if not is_priced_close(database.read(path)):
        return Skipped(Skip.NOT_A_PRICED_CLOSE)
    outcomes = settle_account(database, uid, load_config(database), asked=path)
    SETTLED.record(outcomes)
    return outcomes[path]


def on_reconcile_tick() -> ReconcileReport:
    """Run the reconciler once, now."""
    return reconcile(firestore_client.database(), datetime.now(UTC))


def on_ledger_audit(restart: bool = False) -> dict[str, Any]:
    """Plan today's (UTC) journal audit and enqueue its pages, going on from the day's last run.

    Returns the run's summary: pages planned, enqueued and enqueued again, whether the
    day is complete.
    """
    from cogmora_backend.audit import audit_enqueue, run_audit

    report = run_audit(firestore_client.database(), datetime.now(UTC).date(), restart=restart,
                       enqueue=audit_enqueue)
    return {"date": report.day.isoformat(), "accounts": report.accounts,
            "drifted": [found.uid for found in report.drifted][:100],
            "complete": report.complete, "outOfTime": report.out_of_time,
            "busy": report.busy, "planned": report.planned, "enqueued": report.enqueued,
            "requeued": report.requeued, "seconds": round(report.seconds, 3)}


def on_audit_page(data: Any, retry_count: int) -> None:
    """Run one delivery of a queued audit page (runAuditPage)."""
    from cogmora_backend.audit import run_page

    run_page(firestore_client.database(), data, retry_count)


def on_migrate_ledger() -> dict[str, Any]:
    """Give every account without a journal beginning its opening entry (idempotent)."""
    from cogmora_backend.journal import migrate_all

    report = migrate_all(firestore_client.database())
    return {"accounts": report.accounts, "migrated": report.migrated,
            "failures": report.failures[:50]}


def on_user_written(uid: str, after: dict[str, Any] | None) -> list[str]:
    """Make a newly enabled automation task due at once (it has no `nextRun` yet)."""
    from cogmora_backend.automation.scheduler import schedule_new_automation, unscheduled_tasks

    if not unscheduled_tasks(after):  # every write to a user lands here: most need nothing
        return []
    return schedule_new_automation(firestore_client.database(), uid, SERVER_TIME)


def on_main_scheduler(slot: datetime | None = None) -> Any:
    """Claim every due automation task and enqueue it in chunks (mainScheduler, every
    minute); `slot` is the run's scheduled time (now when absent)."""
    from cogmora_backend.automation.runtime import fan_out_now

    return fan_out_now(firestore_client.database(), slot or datetime.now(UTC))


def on_automation_chunk(data: Any, retry_count: int) -> Any:
    """Run one delivery of a queued chunk of automation tasks (the queue functions)."""
    from cogmora_backend.automation.runtime import run_chunk_now

    return run_chunk_now(firestore_client.database(), data, retry_count)


def on_watch_operations() -> dict[str, Any]:
    """Log what on-call watches (stale shards, late marks, the backlog) once, now."""
    from cogmora_backend.operations import watch

    return watch(firestore_client.database(), datetime.now(UTC))


def on_worker_shards() -> dict[str, Any]:
    """Return every worker shard's heartbeat state (`workerShards`)."""
    from cogmora_backend.operations import worker_shards

    return worker_shards(firestore_client.database(), datetime.now(UTC)).as_json()


def on_propose_plan(uid: str) -> dict[str, Any]:
    """Run the AI agent for `uid` now (the callable) and return the plan written.

    Past a limit: `{refused: reason, detail, retryAfter}` and nothing runs.
    """
    from cogmora_backend.automation.runtime import propose_now
    from cogmora_backend.limits import Refused

    answer = propose_now(firestore_client.database(), uid)
    if isinstance(answer, Refused):
        return {"refused": answer.reason, "detail": answer.detail,
                "retryAfter": answer.retry_after}
    return answer


def on_api_request(request: Any) -> Any:
    """Answer one request of the HTTP API (a Flask request) with its Flask app."""
    from cogmora_backend.api.app import serve

    return serve(request)


def on_unrouted_request(error: Any) -> Any:
    """Answer a request the functions framework found no route for.

    Its catch-all route does not match a path holding a newline (`%0A`), and
    would answer its own HTML 404: the `api` function lets its app answer
    instead, with its JSON errors. Other functions keep the framework's answer.
    """
    import os

    from flask import request

    if os.environ.get("FUNCTION_TARGET") != "api":
        return error
    return on_api_request(request)
