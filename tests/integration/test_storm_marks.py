"""Blind marks on the Firestore emulator: preconditions from a real listener, workers racing.

Two markers armed from the same listener snapshot race over the same crossed
levels: each document is marked exactly once, and a document cancelled or
edited after the snapshot is never marked from it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal as D
from typing import Any

from cogmora_backend import queries
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.store import DocumentChange
from cogmora_core.model import Tick
from tests.support.builders import position_doc, trigger_doc
from tests.support.emulator import new_uid, wait_for
from worker.book import Armed, PriceIndex
from worker.documents import armed_position, armed_trigger
from worker.marker import Marker
from worker.metrics import Metrics


def _listened(database: FirestoreDatabase, uid: str, count: int) -> dict[str, Armed]:
    """Return the user's documents armed as the worker's listeners deliver them."""
    heard: dict[str, Armed] = {}
    lock = threading.Lock()

    def on_changes(changes: list[DocumentChange]) -> None:
        with lock:
            for change in changes:
                snapshot = change.snapshot
                if f"users/{uid}/" not in snapshot.path:
                    continue
                if "/tradeTriggers/" in snapshot.path:
                    heard[snapshot.path] = armed_trigger(snapshot.path, snapshot.data,
                                                         snapshot.update_time)
                else:
                    found = armed_position(snapshot.path, snapshot.data, snapshot.update_time)
                    assert found is not None
                    heard[snapshot.path] = found

    watches = [database.listen(queries.ACTIVE_TRIGGERS, ("active",), on_changes),
               database.listen(queries.LIVE_POSITIONS, (["open", "closing"],), on_changes)]
    try:
        wait_for(lambda: len(heard) >= count)
    finally:
        for watch in watches:
            watch.stop()
    return dict(heard)


def test_two_workers_racing_from_one_snapshot_mark_each_level_once(db: Any) -> None:
    uid = new_uid("race")
    database = FirestoreDatabase(db)
    symbol = "RACEUSDTM"
    batch = db.batch()
    for n in range(12):
        batch.set(db.document(f"users/{uid}/tradeTriggers/t{n}"),
                  trigger_doc(symbol=symbol, targetPrice=90 + n))
        batch.set(db.document(f"users/{uid}/openPositions/p{n}"),
                  position_doc(symbol=symbol, leverage=1, liquidationPrice=0.5,
                               details={"status": "open", "stopLoss": 85 + n}))
    batch.commit()
    armed = _listened(database, uid, 24)
    # After the snapshot: one trigger cancelled, one edited off the crash, one still crossed.
    db.document(f"users/{uid}/tradeTriggers/t0").update({"details.status": "cancelled"})
    db.document(f"users/{uid}/tradeTriggers/t1").update({"targetPrice": 70})
    db.document(f"users/{uid}/tradeTriggers/t2").update({"amount": 250})
    db.document(f"users/{uid}/openPositions/p0").update({"details.stopLoss": 70})
    indexes = [PriceIndex(), PriceIndex()]
    for index in indexes:
        for found in armed.values():
            index.arm(found)
    crash = Tick(symbol, D(80), D("79.9"), D("80.1"))
    metrics = [Metrics(), Metrics()]
    markers = [Marker(database, index, found, name, batch_size=5)
               for index, found, name in zip(indexes, metrics, ("one", "two"), strict=True)]
    hits = [index.on_tick(crash) for index in indexes]
    assert len(hits[0]) == len(hits[1]) == 24

    async def race() -> None:
        for mine, theirs in zip(*hits, strict=True):
            markers[0].submit(mine, time.monotonic())
            markers[1].submit(theirs, time.monotonic())
        await asyncio.gather(*(marker.drain(timeout=60) for marker in markers))

    asyncio.run(race())
    executions = {s.id: s.to_dict() for s in
                  db.collection(f"users/{uid}/executedTriggers").stream()}
    assert sorted(executions) == sorted(f"t{n}" for n in range(2, 12))
    assert executions["t2"]["amount"] == 250  # marked from what was there, not the snapshot
    left = {s.id: s.to_dict() for s in db.collection(f"users/{uid}/tradeTriggers").stream()}
    assert left["t0"]["details"]["status"] == "cancelled" and left["t1"]["targetPrice"] == 70
    assert sorted(left) == ["t0", "t1"]
    positions = {s.id: s.to_dict() for s in
                 db.collection(f"users/{uid}/openPositions").stream()}
    assert positions["p0"]["details"] == {"status": "open", "stopLoss": 70}
    for n in range(1, 12):
        request = positions[f"p{n}"]["details"]["closeRequest"]
        assert (request["reason"], request["price"]) == ("stop_loss", 79.9)
    marked = sum(m.registry.get_sample_value("cogmora_mark_outcomes_total",
                                             {"outcome": "marked"}) or 0 for m in metrics)
    assert marked == 10 + 11  # each of them by exactly one of the two workers
