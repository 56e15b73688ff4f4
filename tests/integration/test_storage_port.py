"""The storage port's contract on the Firestore emulator (the same checks run on the fake)."""

from __future__ import annotations

from typing import Any

import pytest

from cogmora_backend.firestore import FirestoreDatabase
from tests.support.emulator import new_uid
from tests.support.storage_contract import CHECKS, Check


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_firestore_keeps_the_storage_contract(db: Any, check: Check) -> None:
    check(FirestoreDatabase(db), new_uid("port"))
