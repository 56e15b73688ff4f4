"""The reconciler: settle marks whose trigger never ran or failed.

Python Firestore triggers deploy with retries off, so a handler that fails
leaves its mark unsettled. Every minute the reconciler finds executions still
`pending`, priced `closing` positions and `pending` funding events older than
a threshold and settles them through the same services the triggers use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cogmora_backend import queries
from cogmora_backend.funding import apply_event
from cogmora_backend.settlement import Outcome, load_config, settle_close, settle_execution
from cogmora_backend.store import FirestoreDatabase
from cogmora_core.config import TradingConfig

log = logging.getLogger(__name__)

#: A mark younger than this is left to its own trigger.
DEFAULT_GRACE = timedelta(seconds=30)
#: Most marks of each kind handled in one run; the rest wait a minute.
DEFAULT_BATCH = 500


@dataclass
class ReconcileReport:
    """What one run found and did: outcome kind → count, and failures."""

    executions: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    funding: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def reconcile(
    database: FirestoreDatabase,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    batch: int = DEFAULT_BATCH,
) -> ReconcileReport:
    """Settle pending executions and priced closes marked before `now − grace`."""
    cutoff = now - grace
    config = load_config(database)
    report = ReconcileReport()
    client = database.client
    pending = queries.PENDING_EXECUTIONS.build(client, ("pending",), cutoff).limit(batch)
    for snapshot in pending.stream():
        _settle_one(settle_execution, database, config, snapshot, report.executions, report)
    closing = queries.STALE_PRICED_CLOSES.build(client, ("closing",), cutoff).limit(batch)
    for snapshot in closing.stream():
        _settle_one(settle_close, database, config, snapshot, report.closes, report)
    stale_funding = queries.PENDING_FUNDING.build(client, ("pending",), cutoff).limit(batch)
    for snapshot in stale_funding.stream():
        try:
            kind = apply_event(database, snapshot.id).kind
        except Exception as error:
            report.failures.append(f"{snapshot.reference.path}: {error!r}")
            log.exception("reconcile failed for a funding event",
                          extra={"path": snapshot.reference.path})
            continue
        report.funding[kind] = report.funding.get(kind, 0) + 1
    log.info(
        "reconciled",
        extra={
            "executions": report.executions,
            "closes": report.closes,
            "funding": report.funding,
            "failures": len(report.failures),
        },
    )
    return report


def _settle_one(
    service: Callable[[FirestoreDatabase, str, str, TradingConfig], Outcome],
    database: FirestoreDatabase,
    config: TradingConfig,
    snapshot: Any,
    counts: dict[str, int],
    report: ReconcileReport,
) -> None:
    uid = str(snapshot.reference.parent.parent.id)
    try:
        kind = service(database, uid, snapshot.id, config).kind
    except Exception as error:  # one bad mark must not stop the run
        report.failures.append(f"{snapshot.reference.path}: {error!r}")
        log.exception("reconcile failed for one mark", extra={"path": snapshot.reference.path})
        return
    counts[kind] = counts.get(kind, 0) + 1
