"""Steps of end-to-end scenarios: fund a user, open through the functions, cross a level."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from tests.support.emulator import document, new_uid, wait_for


def funded_user(db: Any, prefix: str = "e2e") -> str:
    """Create a user and wait for initializeAccount to fund it."""
    uid = new_uid(prefix)
    db.document(f"users/{uid}").set({"displayName": prefix})
    wait_for(lambda: "balance" in (document(db, f"users/{uid}") or {}))
    return uid


def open_through_functions(db: Any, uid: str, eid: str,
                           execution: dict[str, Any]) -> dict[str, Any]:
    """Write a pending execution (as a worker would) and wait for its position."""
    db.document(f"users/{uid}/executedTriggers/{eid}").set(
        {**execution, "status": "pending", "executedAt": firestore.SERVER_TIMESTAMP})
    done = wait_for(lambda: (d := document(db, f"users/{uid}/executedTriggers/{eid}"))
                    and d["status"] != "pending" and d)
    assert done["status"] == "filled", done
    position = document(db, f"users/{uid}/openPositions/{eid}")
    assert position is not None
    return position


def keep_publishing(publish: Callable[[], object], until: Callable[[], object],
                    timeout: float = 20.0) -> Any:
    """Publish the same tick until `until()` is truthy: a crossed level stays crossed."""
    deadline = time.monotonic() + timeout
    while True:
        publish()
        result = until()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("the system did not react to the tick in time")
        time.sleep(0.05)


def closed_history(db: Any, uid: str, pid: str) -> dict[str, Any] | None:
    """Return the history record once it is closed, else None."""
    record = document(db, f"users/{uid}/tradeHistory/{pid}")
    return record if record and record.get("status") == "closed" else None


def execution_of(db: Any, uid: str, trigger_id: str) -> dict[str, Any] | None:
    """Return the execution of a trigger once it has been settled, else None."""
    record = document(db, f"users/{uid}/executedTriggers/{trigger_id}")
    return record if record and record.get("status") != "pending" else None
