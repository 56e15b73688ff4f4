"""The reconciler: settle marks whose trigger never ran or failed.

Python Firestore triggers deploy with retries off, so a handler that fails
leaves its mark unsettled. Every minute the reconciler finds executions still
`pending`, priced `closing` positions and `pending` funding events older than
a threshold and settles them through the same services the triggers use. It
pages past what it cannot settle, funds accounts whose initialisation was
lost, and parks (with a reason, logged in every run) what keeps failing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cogmora_backend import queries
from cogmora_backend.funding import apply_event
from cogmora_backend.limits import load_limits
from cogmora_backend.queries import QuerySpec
from cogmora_backend.settlement import (
    initialize_account,
    load_config,
    settle_close,
    settle_execution,
)
from cogmora_backend.store import SERVER_TIME, Database, Snapshot
from cogmora_core.config import LimitsConfig, TradingConfig
from cogmora_core.contract.executions import ExecutionStatus
from cogmora_core.contract.funding import FundingStatus
from cogmora_core.contract.positions import PositionStatus
from cogmora_core.errors import RetryableError
from cogmora_core.events import AccountInitialized, CloseRejected, FundedFirst, Outcome

log = logging.getLogger(__name__)

#: A mark younger than this is left to its own trigger.
DEFAULT_GRACE = timedelta(seconds=30)
#: Marks of each kind read per page.
DEFAULT_BATCH = 200
#: A run stops paging after this long (the job runs every minute).
DEFAULT_BUDGET_SECONDS = 40.0
#: Failed runs, over at least `PARK_MINUTES`, after which a mark is parked (skipped
#: and reported).
PARK_AFTER, PARK_MINUTES = 10, 10


@dataclass
class ReconcileReport:
    """What one run found and did: outcome kind → count, and failures."""

    executions: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    funding: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: Paths of marks parked before this run (skipped), and parked by it.
    parked: list[str] = field(default_factory=list)
    newly_parked: list[str] = field(default_factory=list)
    #: Whether the run stopped paging at its time budget (more is left).
    out_of_time: bool = False

    @property
    def funded(self) -> int:
        """Return how many accounts this run funded (their initialisation was lost)."""
        return sum(n for kind, n in self.executions.items() if kind.startswith("funded_"))


def reconcile(
    database: Database,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    batch: int = DEFAULT_BATCH,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    park_after: int = PARK_AFTER,
) -> ReconcileReport:
    """Settle pending executions, priced closes and funding events marked before `now − grace`.

    Each kind is read in pages of `batch`, oldest first, until none is left or
    `budget_seconds` have passed: what cannot be settled is paged past, so it
    never holds back what can. An execution whose account was never funded
    (its initialisation lost, or no user document at all) gets the starting
    balance first. A document that still fails is counted on itself
    (`reconcile.attempts`, `reconcile.lastError`, `reconcile.firstFailedAt`);
    after `park_after` failed runs over at least `PARK_MINUTES` it is parked
    (`reconcile.parkedAt`, `reconcile.reason`), skipped from then on and
    reported in every run's backlog log until someone repairs it.
    """
    cutoff = now - grace
    deadline = time.monotonic() + budget_seconds
    config = load_config(database)
    limits = load_limits(database)
    report = ReconcileReport()
    pending, closing = ExecutionStatus.PENDING.value, PositionStatus.CLOSING.value
    kinds: list[tuple[str, QuerySpec, str, Callable[[Snapshot], Outcome]]] = [
        ("executions", queries.PENDING_EXECUTIONS, pending,
         lambda snapshot: _settle_execution(database, config, limits, snapshot)),
        ("closes", queries.STALE_PRICED_CLOSES, closing,
         lambda snapshot: _settle_close(database, config, snapshot)),
        ("funding", queries.PENDING_FUNDING, FundingStatus.PENDING.value,
         lambda snapshot: apply_event(database, snapshot.id)),
    ]
    for name, spec, status, settle in kinds:
        counts: dict[str, int] = getattr(report, name)
        for snapshot in _pages(database, spec, (status,), cutoff, batch, deadline, report):
            data = snapshot.data
            if _parked(data):
                report.parked.append(snapshot.path)
                continue
            try:
                outcome = settle(snapshot)
                kind = outcome.kind
            except Exception as error:  # one bad mark must not stop the run
                log.exception("reconcile failed for one mark",
                              extra={"path": snapshot.path})
                kind = "error"
                _count_failure(database, snapshot.path, data, repr(error)[:300],
                               now, park_after, report)
            else:
                if isinstance(outcome, CloseRejected):
                    # A close that cannot settle keeps its mark (settlementError).
                    _count_failure(database, snapshot.path, data, outcome.reason,
                                   now, park_after, report)
            counts[kind] = counts.get(kind, 0) + 1
    log.info(
        "reconciled",
        extra={
            "executions": report.executions,
            "closes": report.closes,
            "funding": report.funding,
            "failures": len(report.failures),
            "funded": report.funded,
            "outOfTime": report.out_of_time,
        },
    )
    # The backlog, for the log-based metric and whoever is on call: what waits, parked.
    log_parked = log.error if report.parked or report.newly_parked else log.info
    log_parked("reconcile backlog", extra={
        "parked": len(report.parked) + len(report.newly_parked),
        "newlyParked": report.newly_parked[:50],
        "parkedPaths": report.parked[:50],
        "outOfTime": report.out_of_time,
    })
    return report


def _pages(database: Database, spec: QuerySpec, equals: tuple[Any, ...], bound: Any,
           batch: int, deadline: float, report: ReconcileReport) -> Iterator[Snapshot]:
    """Yield every document `spec` finds, fetched `batch` at a time, until `deadline`."""
    after = None
    while True:
        if time.monotonic() >= deadline:
            report.out_of_time = True
            return
        snapshots = database.query(spec, equals, bound, limit=batch, after=after)
        yield from snapshots
        if len(snapshots) < batch:
            return
        after = snapshots[-1]


def _parked(data: dict[str, Any]) -> bool:
    state = data.get("reconcile")
    return isinstance(state, dict) and state.get("parkedAt") is not None


def _uid(snapshot: Snapshot) -> str:
    return snapshot.path.split("/")[-3]  # users/{uid}/<collection>/{id}


def _settle_execution(database: Database, config: TradingConfig,
                      limits: LimitsConfig, snapshot: Snapshot) -> Outcome:
    uid = _uid(snapshot)
    try:
        return settle_execution(database, uid, snapshot.id, config, limits)
    except RetryableError:
        # Its account was never funded: initializeAccount failed (it runs once,
        # retries off) or no user document was ever written. Fund it and settle.
        if not isinstance(initialize_account(database, uid, config, create=True),
                          AccountInitialized):
            raise
        log.warning("reconcile funded an account whose initialisation was lost",
                    extra={"uid": uid})
        settled = settle_execution(database, uid, snapshot.id, config, limits)
        return FundedFirst(settled)


def _settle_close(database: Database, config: TradingConfig,
                  snapshot: Snapshot) -> Outcome:
    return settle_close(database, _uid(snapshot), snapshot.id, config)


def _count_failure(database: Database, path: str, data: dict[str, Any], error: str,
                   now: datetime, park_after: int, report: ReconcileReport) -> None:
    """Count a failed run on the document; park it after `park_after` of them.

    Only runs at least `PARK_MINUTES` after its first failure park it, so a
    burst of quick runs against a passing fault parks nothing.
    """
    report.failures.append(f"{path}: {error}")
    state = data.get("reconcile")
    state = state if isinstance(state, dict) else {}
    attempts = state.get("attempts")
    attempts = (attempts if isinstance(attempts, int) else 0) + 1
    first = state.get("firstFailedAt")
    first = first if isinstance(first, datetime) else now
    fields: dict[str, Any] = {"reconcile.attempts": attempts, "reconcile.lastError": error,
                              "reconcile.lastAt": SERVER_TIME,
                              "reconcile.firstFailedAt": first}
    if attempts >= park_after and now - first >= timedelta(minutes=PARK_MINUTES):
        fields |= {"reconcile.parkedAt": SERVER_TIME,
                   "reconcile.reason": f"failed {attempts} reconciler runs: {error}"}
        report.newly_parked.append(path)
        log.error("reconcile parked a mark", extra={"path": path, "attempts": attempts,
                                                   "error": error})
    try:
        database.write(lambda batch: batch.update(path, fields))
    except Exception:
        log.exception("could not record a reconcile failure", extra={"path": path})
