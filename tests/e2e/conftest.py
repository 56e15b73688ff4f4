"""The whole system on one machine: emulators (from scripts/test.sh), local KuCoin, worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_emulators
from tests.support.emulator import firestore_client
from tests.support.processes import Exchange


@pytest.fixture(scope="session")
def exchange() -> Iterator[Exchange]:
    require_emulators()
    running = Exchange()
    yield running
    running.close()


@pytest.fixture(scope="session")
def db() -> Any:
    require_emulators()
    return firestore_client()
