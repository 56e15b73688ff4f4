"""Cloud Functions of the Cogmora backend: triggers declared here, work done in handlers.

Nothing here connects to anything at import time: deploy-time discovery
imports this module without network or credentials.
"""

from __future__ import annotations

from firebase_functions import firestore_fn, options, scheduler_fn

from cogmora_backend import handlers
from cogmora_backend.logs import configure_logging

configure_logging()
options.set_global_options(region="us-central1")


def _data(snapshot: firestore_fn.DocumentSnapshot | None) -> dict | None:
    return snapshot.to_dict() if snapshot is not None and snapshot.exists else None


@firestore_fn.on_document_created(document="users/{uid}")
def initializeAccount(event: firestore_fn.Event[firestore_fn.DocumentSnapshot | None]) -> None:
    """Give a new user the starting balance, exactly once."""
    handlers.on_user_created(event.params["uid"])


@firestore_fn.on_document_created(document="users/{uid}/executedTriggers/{executionId}")
def openPositionHandler(event: firestore_fn.Event[firestore_fn.DocumentSnapshot | None]) -> None:
    """Open the position of a pending execution, or reject it with a reason."""
    handlers.on_execution_created(
        event.params["uid"], event.params["executionId"], _data(event.data)
    )


@firestore_fn.on_document_written(document="users/{uid}/openPositions/{positionId}")
def closePositionHandler(
    event: firestore_fn.Event[firestore_fn.Change[firestore_fn.DocumentSnapshot | None]],
) -> None:
    """Settle a position marked `closing` with a price."""
    after = _data(event.data.after) if event.data is not None else None
    handlers.on_position_written(event.params["uid"], event.params["positionId"], after)


@scheduler_fn.on_schedule(schedule="every 1 minutes", timezone="Etc/UTC")
def reconcileMarks(event: scheduler_fn.ScheduledEvent) -> None:
    """Settle marks left unsettled by a handler that failed or never ran."""
    handlers.on_reconcile_tick()
