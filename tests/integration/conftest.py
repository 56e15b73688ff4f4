"""Fixtures for tests on the emulators: an admin client and a fresh, funded user."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import require_emulators
from tests.support.emulator import balance_of, firestore_client, new_uid, wait_for


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
