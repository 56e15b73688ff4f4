"""Test-wide settings: the emulator-backed tests fail loudly when run without emulators."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration and tests/e2e as needing the emulators."""
    for item in items:
        if "/tests/integration/" in str(item.fspath) or "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.emulator)


@pytest.fixture(autouse=True)
def _needs_emulators(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("emulator") and not os.environ.get(
        "FIRESTORE_EMULATOR_HOST"
    ):
        pytest.fail("this test needs the emulators: run it through scripts/test.sh")
