"""Test-wide settings."""

from __future__ import annotations

import os

import pytest


def require_emulators() -> None:
    """Fail (never skip) a test that needs the emulators when they are not running."""
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        pytest.fail("this test needs the emulators: run it through scripts/test.sh")
