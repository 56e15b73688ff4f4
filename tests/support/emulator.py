"""Helpers for tests that run against the Firebase Emulator Suite."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from cogmora_backend.taskqueue import QueuePolicy
from cogmora_core.money import parse_number

T = TypeVar("T")


def project() -> str:
    """Return the emulator project id."""
    return os.environ.get("GCLOUD_PROJECT", "demo-cogmora")


def firestore_client() -> Any:
    """Return an admin Firestore client connected to the emulator."""
    from google.cloud import firestore

    return firestore.Client(project=project())


def new_uid(prefix: str = "user") -> str:
    """Return a user id no other test uses, so tests never share documents."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, every: float = 0.05) -> T:
    """Return the first truthy result of `check`, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        time.sleep(every)


def document(client: Any, path: str) -> dict[str, Any] | None:
    """Return a document's data or None."""
    snapshot = client.document(path).get()
    return snapshot.to_dict() if snapshot.exists else None


def balance_of(client: Any, uid: str) -> Decimal:
    """Return the user's balance as an exact Decimal."""
    data = document(client, f"users/{uid}") or {}
    value = parse_number(data.get("balance"))
    assert value is not None, f"users/{uid} has no numeric balance: {data}"
    return value


def hub_url() -> str:
    """Return the Emulator Hub's base URL."""
    return "http://" + os.environ.get("FIREBASE_EMULATOR_HUB", "127.0.0.1:4400")


def functions_url(name: str) -> str:
    """Return the HTTP URL of function `name` on the running Functions emulator.

    The port comes from the Emulator Hub, so a run on another firebase.json (see
    scripts/test.sh's COGMORA_FIREBASE_CONFIG) finds it too.
    """
    emulators = httpx.get(f"{hub_url()}/emulators", timeout=10).json()
    functions = emulators["functions"]
    return f"http://{functions['host']}:{functions['port']}/{project()}/us-central1/{name}"


def recreate_task_queue(function: str, policy: QueuePolicy, rate: int, concurrency: int) -> None:
    """Create queue function `function`'s queue again on the Cloud Tasks emulator with
    `policy`'s retries and timeout but these limits (rate 0: held); its tasks go."""
    host = os.environ["CLOUD_TASKS_EMULATOR_HOST"]
    response = httpx.post(
        f"http://{host}/projects/{project()}/locations/us-central1/queues/{function}",
        json={"rateLimits": {"maxDispatchesPerSecond": rate,
                             "maxConcurrentDispatches": concurrency},
              "retryConfig": {"maxAttempts": policy.max_attempts,
                              "minBackoffSeconds": policy.min_backoff_seconds,
                              "maxBackoffSeconds": policy.max_backoff_seconds,
                              "maxDoublings": policy.max_doublings},
              "timeoutSeconds": policy.timeout_sec, "retry": True,
              "defaultUri": functions_url(function)}, timeout=30)
    response.raise_for_status()


def clear_firestore() -> None:
    """Delete every document in the Firestore emulator."""
    host = os.environ.get("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8180")
    response = httpx.delete(
        f"http://{host}/emulator/v1/projects/{project()}/databases/(default)/documents",
        timeout=120)
    response.raise_for_status()


def set_background_triggers(enabled: bool) -> None:
    """Switch the Functions emulator's Firestore triggers on or off."""
    path = "enableBackgroundTriggers" if enabled else "disableBackgroundTriggers"
    response = httpx.put(f"{hub_url()}/functions/{path}", timeout=30)
    response.raise_for_status()
