"""The local run's demo accounts are funded and opened through the real functions."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from scripts import demo
from tests.support.emulator import balance_of, document


def test_demo_seed_funds_accounts_and_opens_positions_exactly(db: Any) -> None:
    demo.seed(db)
    demo.seed(db)  # seeding again changes nothing

    # alice: 10000 − (500 + 1.5) − (250 + 1.5); bob: 10000 − (1000 + 1)
    assert balance_of(db, "demo-alice") == D("9247")
    assert balance_of(db, "demo-bob") == D("8999")
    assert balance_of(db, "demo-carol") == D("10000")
    assert balance_of(db, "demo-dave") == D("10000")
    position = document(db, "users/demo-alice/openPositions/demo-1")
    assert position is not None and position["positionType"] == "short"
    assert document(db, "users/demo-carol/tradeTriggers/demo-t0") is not None
    assert "demo-alice" in demo.snapshot(db)
