"""Fixtures for tests on the emulators: an admin client, a fresh, funded user, the exchange."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import require_emulators
from tests.support.emulator import balance_of, firestore_client, new_uid, project, wait_for
from tests.support.processes import Exchange


@pytest.fixture(scope="session")
def admin_app() -> None:
    """The Admin SDK's default app, which enqueues on the Cloud Tasks emulator."""
    import firebase_admin

    if not os.environ.get("CLOUD_TASKS_EMULATOR_HOST"):
        pytest.fail("CLOUD_TASKS_EMULATOR_HOST is unset: run through scripts/test.sh")
    if not firebase_admin._apps:
        firebase_admin.initialize_app(options={"projectId": project()})


@pytest.fixture(scope="session")
def db() -> Any:
    """Return the admin Firestore client of the emulator."""
    require_emulators()
    return firestore_client()


@pytest.fixture
def funded_user(db: Any) -> Iterator[str]:
    """Create a user through the app's path and wait for initializeAccount to fund it."""
    uid = new_uid()
    db.document(f"users/{uid}").set({"displayName": "Test"})
    wait_for(lambda: (db.document(f"users/{uid}").get().to_dict() or {}).get("balance"))
    assert balance_of(db, uid) == Decimal("10000")
    yield uid


@pytest.fixture(scope="session")
def exchange() -> Iterator[Exchange]:
    """Serve a local KuCoin where KUCOIN_SPOT_API / KUCOIN_FUTURES_API point (scripts/test.sh).

    The Functions emulator was started with those addresses, so the functions
    (the AI agent's market prices) and the tests read the same exchange.
    """
    require_emulators()
    ports = []
    for name in ("KUCOIN_SPOT_API", "KUCOIN_FUTURES_API"):
        url = urlsplit(os.environ.get(name, ""))
        if url.hostname != "127.0.0.1" or url.port is None:
            pytest.fail(f"{name} must name a local port: run the tests through scripts/test.sh")
        ports.append(url.port)
    running = Exchange(*ports)
    yield running
    running.close()
