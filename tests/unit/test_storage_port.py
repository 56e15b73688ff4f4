"""The storage port: the in-memory fake keeps the contract, and the watcher runs on the port alone.

The contract's checks (tests/support/storage_contract.py) run on the
Firestore emulator too (tests/integration/test_storage_port.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.store import Database, millis
from tests.support.builders import position_doc, trigger_doc
from tests.support.memory import MemoryDatabase
from tests.support.storage_contract import CHECKS, Check
from worker.book import PriceIndex
from worker.metrics import Metrics
from worker.watcher import Watcher

T1 = "users/u1/tradeTriggers/t1"
T2 = "users/u1/tradeTriggers/t2"
P1 = "users/u1/openPositions/p1"


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_fake_keeps_the_storage_contract(check: Check) -> None:
    check(MemoryDatabase(), "port")


def test_both_adapters_are_the_port() -> None:
    adapters: list[type[Database]] = [FirestoreDatabase, MemoryDatabase]  # checked by mypy
    assert all(callable(getattr(adapter, name)) for adapter in adapters
               for name in ("run", "write", "read", "read_many", "set", "list", "list_ids",
                            "query", "ids", "count", "listen", "page"))


def test_millis_are_exact_and_rounded_down() -> None:
    assert millis(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert millis(datetime(2026, 1, 1, 0, 0, 0, 123999, tzinfo=UTC)) == 1767225600123
    assert millis(datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)) == -1


class RecordingMarker:
    def __init__(self) -> None:
        self.rejected: list[tuple[str, str]] = []

    def reject(self, path: str, uid: str, doc_id: str, reason: str, detail: str) -> None:
        self.rejected.append((path, reason))

    def submit(self, hit: Any, received_at: float) -> None:
        raise AssertionError("nothing fires here")


def on_the_fake(db: MemoryDatabase) -> tuple[Watcher, PriceIndex, RecordingMarker]:
    index, marker = PriceIndex(), RecordingMarker()
    watcher = Watcher(db, index, marker, Metrics(), lambda: None)  # type: ignore[arg-type]
    return watcher, index, marker


def test_the_watcher_reads_listens_and_counts_through_the_port() -> None:
    db = MemoryDatabase({T1: trigger_doc(), P1: position_doc(),
                         T2: trigger_doc(details={"status": "cancelled"})})
    watcher, index, _ = on_the_fake(db)

    async def scenario() -> None:
        await watcher.resync()
        assert watcher.last_resync_ok
        assert set(index.paths()) == {T1, P1}
        assert not watcher.healthy  # not listening yet
        watcher.start_listeners()
        assert watcher.healthy
        assert await watcher.counts_match()

        await asyncio.to_thread(db.set, T2, trigger_doc())  # from another thread, as Firestore
        await asyncio.to_thread(db.write, lambda batch: batch.delete(P1))
        await asyncio.sleep(0.01)
        assert set(index.paths()) == {T1, T2}
        assert await watcher.counts_match()

        db.documents["users/u2/tradeTriggers/t9"] = trigger_doc()  # behind the listener's back
        assert not await watcher.counts_match()
        await watcher.resync()
        assert "users/u2/tradeTriggers/t9" in index
        assert await watcher.counts_match()

        watcher.stop()
        assert not watcher.healthy
        db.set(T1, trigger_doc(details={"status": "cancelled"}))
        await asyncio.sleep(0.01)
        assert T1 in index  # no longer listening

    asyncio.run(scenario())


def test_levels_date_from_the_server_time_the_watcher_first_saw_them() -> None:
    db = MemoryDatabase()
    watcher, _, _ = on_the_fake(db)
    first = datetime(2026, 2, 1, 9, 30, 0, 250000, tzinfo=UTC)

    async def scenario() -> None:
        watcher.start_listeners()
        db.now = first
        db.set(T1, trigger_doc())
        await asyncio.sleep(0.01)
        assert watcher.levels_since(T1) == millis(first)

        db.now = first + timedelta(minutes=5)  # same levels, another field: still `first`
        db.write(lambda batch: batch.update(T1, {"note": "x"}))
        await asyncio.sleep(0.01)
        assert watcher.levels_since(T1) == millis(first)

        db.write(lambda batch: batch.update(T1, {"targetPrice": 59000}))  # new levels
        await asyncio.sleep(0.01)
        assert watcher.levels_since(T1) == millis(first + timedelta(minutes=5))
        watcher.stop()

    asyncio.run(scenario())


def test_triggers_past_the_limit_are_ranked_by_creation_time() -> None:
    db = MemoryDatabase({"config/limits": {"maxActiveTriggers": 1}})
    watcher, index, marker = on_the_fake(db)

    async def scenario() -> None:
        await watcher.resync()
        watcher.start_listeners()
        db.now = datetime(2026, 2, 1, tzinfo=UTC)
        db.set(T2, trigger_doc())  # created first, though its path sorts later
        db.now += timedelta(seconds=1)
        db.set(T1, trigger_doc())
        await asyncio.sleep(0.01)
        assert T2 in index and T1 not in index
        await watcher.resync()  # a full read ranks them by creation time again
        assert T2 in index and T1 not in index
        assert set(marker.rejected) == {(T1, "too_many_triggers")}  # never T2
        watcher.stop()

    asyncio.run(scenario())


def test_a_cold_full_read_arms_the_earliest_triggers_whatever_their_paths() -> None:
    db = MemoryDatabase({"config/limits": {"maxActiveTriggers": 1}})
    db.now = datetime(2026, 2, 1, tzinfo=UTC)
    db.set(T2, trigger_doc())  # created first, though its path sorts later
    db.now += timedelta(seconds=1)
    db.set(T1, trigger_doc())
    watcher, index, marker = on_the_fake(db)

    async def scenario() -> None:
        await watcher.resync()  # a worker starting: nothing known before this read
        assert T2 in index and T1 not in index
        assert set(marker.rejected) == {(T1, "too_many_triggers")}

    asyncio.run(scenario())
