"""A reduced flash crash (a few hundred levels, one tick) through the whole system, exactly once.

The storm of `bench/storm.py` at a size CI can afford: triggers, stop-losses
and liquidations over 20 users and a 60-level whale, crossed by one tick; the
local exchange, the worker and the functions mark and settle them. It checks
what the benchmark checks (every level executed once, every balance equal
to an independent Decimal model), then delivers settled marks' events again
and runs the reconciler: nothing changes. Not its timing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bench.storm import STOP, TRIGGER, storm, verify
from cogmora_backend import handlers
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.reconcile import reconcile
from tests.support.processes import Exchange


def test_a_flash_crash_executes_every_level_once_with_exact_balances(
        db: Any, exchange: Exchange) -> None:
    figures, levels = storm(db, exchange, levels=300, users=20, whale=60, timeout=600)
    assert figures.levels == 300 and figures.all_settled >= figures.all_marked > 0
    kinds = {level.kind for level in levels}
    assert kinds == {TRIGGER, STOP, "liquidation"}

    for level in levels[::7]:  # every function event again: each settles nothing
        if level.kind == TRIGGER:
            outcome = handlers.on_execution_created(level.uid, level.doc_id,
                                                    {"status": "pending"})
        else:
            outcome = handlers.on_position_written(level.uid, level.doc_id, {"details": {
                "status": "closing", "closeRequest": {"reason": "stop_loss", "price": 50}}})
        assert outcome.kind == "skipped", (level, outcome)
    report = reconcile(FirestoreDatabase(db), datetime.now(UTC) + timedelta(minutes=5))
    ours = {level.uid for level in levels}
    assert not [failure for failure in report.failures if failure.split("/")[1] in ours]
    assert verify(db, levels) == []
