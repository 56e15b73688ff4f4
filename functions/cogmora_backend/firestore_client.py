"""Lazy Firestore client: nothing connects at import (deploy-time discovery)."""

from __future__ import annotations

import functools
import os
from typing import Any

from cogmora_backend.firestore import FirestoreDatabase


def project_id() -> str | None:
    """Return the project id from the environment, or None to let the client infer it."""
    for name in ("GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        value = os.environ.get(name)
        if value:
            return value
    return None


@functools.cache
def client() -> Any:
    """Return the process's Firestore client, created on first use.

    With `FIRESTORE_EMULATOR_HOST` set, the client talks to the emulator with
    anonymous credentials; otherwise it uses the default credentials of the
    runtime (the service account on Cloud Functions and Cloud Run).
    """
    from google.cloud import firestore

    return firestore.Client(project=project_id())


@functools.cache
def database() -> FirestoreDatabase:
    """Return the process's database, created on first use."""
    return FirestoreDatabase(client())
