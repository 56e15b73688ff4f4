"""Cloud Functions of the Cogmora backend: triggers declared here, work done in handlers.

Nothing here connects to anything at import time: deploy-time discovery
imports this module without network or credentials.
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import firebase_admin
import functions_framework
from firebase_functions import firestore_fn, https_fn, options, params, scheduler_fn, tasks_fn
from firebase_functions.core import Change
from flask import Request, Response
from google.cloud.firestore_v1 import DocumentSnapshot

from cogmora_backend import handlers
from cogmora_backend.audit import AUDIT_QUEUE
from cogmora_backend.automation.fanout import AGENT_QUEUE, WATCHLIST_QUEUE
from cogmora_backend.logs import configure_logging
from cogmora_backend.taskqueue import QueuePolicy

configure_logging()
# Callable functions verify ID tokens with the default Admin app; creating it
# connects to nothing (credentials load on first use).
if not firebase_admin._apps:
    firebase_admin.initialize_app()
options.set_global_options(region="us-central1")
# The framework's catch-all route misses paths with an encoded newline and would
# answer them with an HTML 404; the API answers them as JSON (a no-op at discovery).
functions_framework.errorhandler(404)(handlers.on_unrouted_request)
#: Gemini for the AI agent; without it the built-in model runs.
GEMINI_API_KEY = params.SecretParam("GEMINI_API_KEY")
UTC = ZoneInfo("Etc/UTC")


def _data(snapshot: DocumentSnapshot[Any] | None) -> dict[str, Any] | None:
    return snapshot.to_dict() if snapshot is not None and snapshot.exists else None


@firestore_fn.on_document_created(document="users/{uid}")
def initializeAccount(event: firestore_fn.Event[DocumentSnapshot[Any] | None]) -> None:
    """Give a new user the starting balance, exactly once."""
    handlers.on_user_created(event.params["uid"])


@firestore_fn.on_document_created(document="users/{uid}/executedTriggers/{executionId}")
def openPositionHandler(event: firestore_fn.Event[DocumentSnapshot[Any] | None]) -> None:
    """Open the position of a pending execution, or reject it with a reason."""
    handlers.on_execution_created(
        event.params["uid"], event.params["executionId"], _data(event.data)
    )


@firestore_fn.on_document_updated(document="users/{uid}/openPositions/{positionId}")
def closePositionHandler(
    event: firestore_fn.Event[Change[DocumentSnapshot[Any] | None]],
) -> None:
    """Settle a position marked `closing` with a price.

    On updates only: a position is created `open` (by settlement) and goes
    `closing` by an update (DESIGN.md §2), and its deletion is the settlement
    itself, so creates and deletes (one of each per trade) fire nothing. A
    position written some other way already priced is the reconciler's.
    """
    after = _data(event.data.after) if event.data is not None else None
    handlers.on_position_written(event.params["uid"], event.params["positionId"], after)


@firestore_fn.on_document_created(document="fundingEvents/{eventId}", timeout_sec=300)
def applyFunding(event: firestore_fn.Event[DocumentSnapshot[Any] | None]) -> None:
    """Apply a perpetual funding settlement the worker marked to every position it concerns."""
    handlers.on_funding_event(event.params["eventId"])


@scheduler_fn.on_schedule(schedule="every 1 minutes", timezone=UTC)
def reconcileMarks(event: scheduler_fn.ScheduledEvent) -> None:
    """Settle marks left unsettled by a handler that failed or never ran."""
    handlers.on_reconcile_tick()


@scheduler_fn.on_schedule(schedule="every 1 minutes", timezone=UTC)
def watchOperations(event: scheduler_fn.ScheduledEvent) -> None:
    """Log stale worker shards, the oldest unsettled mark and the backlog (the alerts' input)."""
    handlers.on_watch_operations()


@https_fn.on_request(timeout_sec=30, invoker="private")
def workerShards(request: Request) -> Response:
    """Answer which worker shards are stale (503 when one is), for on-call and probes."""
    answer = handlers.on_worker_shards()
    return Response(json.dumps(answer), status=200 if answer["ok"] else 503,
                    mimetype="application/json")


@scheduler_fn.on_schedule(schedule="every 1 minutes", timezone=UTC, timeout_sec=120,
                          memory=options.MemoryOption.GB_1)
def mainScheduler(event: scheduler_fn.ScheduledEvent) -> None:
    """Claim each user's due AI agent and watchlist scraper; enqueue them in chunks."""
    handlers.on_main_scheduler(event.schedule_time)


def _queue(settings: QueuePolicy) -> dict[str, Any]:
    """A task queue function's options from its policy (cogmora_backend/taskqueue.py)."""
    return {
        "retry_config": options.RetryConfig(
            max_attempts=settings.max_attempts,
            min_backoff_seconds=settings.min_backoff_seconds,
            max_backoff_seconds=settings.max_backoff_seconds,
            max_doublings=settings.max_doublings),
        "rate_limits": options.RateLimits(
            max_dispatches_per_second=settings.max_dispatches_per_second,
            max_concurrent_dispatches=settings.max_concurrent_dispatches),
        "timeout_sec": settings.timeout_sec,
    }


def _retry_count(request: https_fn.CallableRequest[Any]) -> int:
    raw = request.raw_request.headers.get("X-CloudTasks-TaskRetryCount", "0")
    return int(raw) if raw.isdigit() else 0


@tasks_fn.on_task_dispatched(**_queue(AGENT_QUEUE), secrets=[GEMINI_API_KEY],
                             memory=options.MemoryOption.GB_1)
def runAgentChunk(request: https_fn.CallableRequest[Any]) -> None:
    """Run a queued chunk of AI agent tasks (mainScheduler enqueues them)."""
    handlers.on_automation_chunk(request.data, _retry_count(request))


@tasks_fn.on_task_dispatched(**_queue(WATCHLIST_QUEUE), memory=options.MemoryOption.GB_1)
def runWatchlistChunk(request: https_fn.CallableRequest[Any]) -> None:
    """Run a queued chunk of watchlist scrapes (mainScheduler enqueues them)."""
    handlers.on_automation_chunk(request.data, _retry_count(request))


@tasks_fn.on_task_dispatched(**_queue(AUDIT_QUEUE), memory=options.MemoryOption.GB_1)
def runAuditPage(request: https_fn.CallableRequest[Any]) -> None:
    """Audit a queued page of accounts' journals (auditLedger and runLedgerAudit enqueue them)."""
    handlers.on_audit_page(request.data, _retry_count(request))


@firestore_fn.on_document_written(document="users/{uid}")
def scheduleAutomation(
    event: firestore_fn.Event[Change[DocumentSnapshot[Any] | None]],
) -> None:
    """Make a newly enabled automation task due at once."""
    after = _data(event.data.after) if event.data is not None else None
    handlers.on_user_written(event.params["uid"], after)


@https_fn.on_call(secrets=[GEMINI_API_KEY], timeout_sec=120, memory=options.MemoryOption.GB_1)
def proposePlan(request: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Ask the signed-in user's AI agent for a plan now."""
    if request.auth is None or not request.auth.uid:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAUTHENTICATED, "sign in first")
    answer = handlers.on_propose_plan(request.auth.uid)
    if "refused" in answer:  # past a per-user limit (config/limits)
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.RESOURCE_EXHAUSTED,
                                  answer["refused"], answer)
    return answer


@scheduler_fn.on_schedule(schedule="every 15 minutes", timezone=UTC, timeout_sec=540,
                          memory=options.MemoryOption.GB_1)
def auditLedger(event: scheduler_fn.ScheduledEvent) -> None:
    """Plan the day's journal audit in pages on runAuditPage (later runs of the day go on,
    enqueue again what failed, or do nothing)."""
    handlers.on_ledger_audit()


def _require_admin(request: https_fn.CallableRequest[Any]) -> None:
    """Refuse a callable to anyone without the `admin` custom claim."""
    if request.auth is None or not request.auth.uid:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAUTHENTICATED, "sign in first")
    if request.auth.token.get("admin") is not True:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.PERMISSION_DENIED, "admins only")


@https_fn.on_call(timeout_sec=540, memory=options.MemoryOption.GB_1)
def runLedgerAudit(request: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Audit the journals now (admins): `{restart: true}` audits today again from the start."""
    _require_admin(request)
    data = request.data if isinstance(request.data, dict) else {}
    return handlers.on_ledger_audit(restart=data.get("restart") is True)


@https_fn.on_call(timeout_sec=540)
def migrateLedger(request: https_fn.CallableRequest[Any]) -> dict[str, Any]:
    """Write the opening journal entry of every account older than the journal (admins)."""
    _require_admin(request)
    return handlers.on_migrate_ledger()


@https_fn.on_request(timeout_sec=30)
def api(request: Request) -> Response:
    """Serve the HTTP API for bots and scripts (docs/openapi.yaml)."""
    response: Response = handlers.on_api_request(request)
    return response
