"""Marks in a storm: most urgent first, written blind in batches on condition of the version read.

The blind path (`plan_*_mark` + `write_marks`) must write exactly what the
transaction (`mark_trigger` / `mark_position`) writes, and only while the
version the worker read still stands: a cancelled, edited or already marked
document falls back to the transaction, which decides anew.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora_backend import queries
from cogmora_backend.marks import (
    PlannedMark,
    mark_position,
    mark_trigger,
    plan_position_mark,
    plan_read_trigger_mark,
    plan_trigger_mark,
    write_marks,
)
from cogmora_backend.store import Snapshot, StaleWrite, Transaction
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.events import Skip, Skipped
from cogmora_core.model import Tick
from tests.support.builders import position_doc, trigger_doc
from tests.support.memory import MemoryDatabase
from worker.book import Armed, Hit, PriceIndex, urgency
from worker.documents import armed_position, armed_trigger
from worker.marker import HEAD_START, Marker
from worker.metrics import Metrics

CRASH = Tick("SOLUSDTM", D(80), D("79.9"), D("80.1"))


def _trigger(target: float, **extra: Any) -> dict[str, Any]:
    return trigger_doc(symbol="SOLUSDTM", targetPrice=target, **extra)


def _stop(stop: float) -> dict[str, Any]:  # 1x: liquidation at 0.5, never crossed here
    return position_doc(leverage=1, liquidationPrice=0.5,
                        details={"status": "open", "stopLoss": stop})


def _liquidation(liquidation: float) -> dict[str, Any]:
    return position_doc(liquidationPrice=liquidation)


def _short_take_profit(take: float) -> dict[str, Any]:
    return position_doc(positionType="short", liquidationPrice=150,
                        details={"status": "open", "takeProfit": take})


def _trailing(distance: float) -> dict[str, Any]:
    return position_doc(leverage=1, liquidationPrice=0.5,
                        details={"status": "open", "trailingStop": {"distance": distance}},
                        trailing={"highWaterMark": 100})


def _seen(database: MemoryDatabase) -> dict[str, Armed]:
    """Arm what the database holds as the watcher would: with each version's update time."""
    armed: dict[str, Armed] = {}
    for snapshot in database.query(queries.ACTIVE_TRIGGERS, ("active",)):
        armed[snapshot.path] = armed_trigger(snapshot.path, snapshot.data, snapshot.update_time)
    for snapshot in database.query(queries.LIVE_POSITIONS, (["open", "closing"],)):
        found = armed_position(snapshot.path, snapshot.data, snapshot.update_time)
        if found is not None:
            armed[snapshot.path] = found
    return armed


def _store(documents: dict[str, dict[str, Any]]) -> MemoryDatabase:
    database = MemoryDatabase()
    database.write(lambda batch: [batch.set(path, data) for path, data in documents.items()])
    return database


STORM = {
    "users/a/tradeTriggers/shallow-trigger": _trigger(81),
    "users/a/tradeTriggers/deep-trigger": _trigger(95),
    "users/a/tradeTriggers/market": _trigger(None, condition="market"),
    "users/b/openPositions/shallow-liquidation": _liquidation(82),
    "users/b/openPositions/deep-liquidation": _liquidation(90.5),
    "users/b/openPositions/stop": _stop(85),
    "users/b/openPositions/trailing": _trailing(5),  # stop at 95: deeper than 85
    "users/c/openPositions/take-profit": _short_take_profit(84),
    "users/c/openPositions/manual": position_doc(details={"status": "closing"}),
}
URGENT_FIRST = ["deep-liquidation", "shallow-liquidation", "trailing", "stop", "market",
                "manual", "deep-trigger", "take-profit", "shallow-trigger"]


def test_hits_sort_by_urgency_then_depth() -> None:
    index = PriceIndex()
    for armed in _seen(_store(STORM)).values():
        index.arm(armed)
    hits = index.on_tick(CRASH)
    assert len(hits) == len(STORM)
    order = [hit.armed.doc_id for hit in sorted(hits, key=urgency)]
    # market orders and manual closes tie (no depth): either order
    assert order[:4] == URGENT_FIRST[:4] and set(order[4:6]) == {"market", "manual"}
    assert order[6:] == URGENT_FIRST[6:]


def test_depth_is_relative_to_the_level() -> None:
    index = PriceIndex()
    index.arm(armed_trigger("users/a/tradeTriggers/cheap",
                            trigger_doc(symbol="SOLUSDTM", targetPrice=1)))
    index.arm(armed_trigger("users/a/tradeTriggers/dear",
                            trigger_doc(symbol="SOLUSDTM", targetPrice=100)))
    hits = index.on_tick(Tick("SOLUSDTM", D("0.5")))
    # 1 → 0.5 is a fall of half the level; 100 → 0.5 of almost all of it
    assert [h.armed.doc_id for h in sorted(hits, key=urgency)] == ["dear", "cheap"]


class RecordingDatabase(MemoryDatabase):
    """Records what each batch and transaction wrote, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.transactions = 0

    def write(self, work: Any) -> None:
        paths: list[str] = []

        def recording(batch: Transaction) -> None:
            work(batch)
            paths.extend(batch._paths)  # type: ignore[attr-defined]

        super().write(recording)
        self.batches.append(paths)

    def run(self, work: Any, done: Any = None) -> Any:
        self.transactions += 1
        return super().run(work, done)


def _storm(database: MemoryDatabase, markers: list[Marker], index: PriceIndex,
           tick: Tick = CRASH) -> list[Hit]:
    hits = index.on_tick(tick)

    async def scenario() -> None:
        for marker in markers:
            for hit in hits:
                marker.submit(hit, time.monotonic())
        for marker in markers:
            await marker.drain(timeout=10)

    asyncio.run(scenario())
    return hits


def test_a_storm_is_marked_most_urgent_first_in_growing_batches() -> None:
    database = RecordingDatabase()
    documents = dict(STORM)
    database.write(lambda batch: [batch.set(p, d) for p, d in documents.items()])
    database.batches.clear()
    index, metrics = PriceIndex(), Metrics()
    for armed in _seen(database).values():
        index.arm(armed)
    marker = Marker(database, index, metrics, "w", concurrency=1, batch_size=4)
    _storm(database, [marker], index)

    marked = [path.rsplit("/", 1)[1] for batch in database.batches for path in batch
              if "/executedTriggers/" not in path]
    assert marked[:4] == URGENT_FIRST[:4] and marked[6:] == URGENT_FIRST[6:]
    # 1, 2, 4, 4, 4 writes at most (a trigger's mark writes two documents): the first
    # mark is never held behind a large batch, and no batch goes past its writes
    assert [len(batch) for batch in database.batches] == [1, 2, 4, 3, 2]
    assert [len([p for p in b if "/executedTriggers/" not in p]) for b in database.batches] \
        == [1, 2, 3, 2, 1]
    assert database.transactions == 0  # nothing read: every mark written blind
    assert metrics.registry.get_sample_value("cogmora_marks_total",
                                             {"reason": "liquidation"}) == 2


def test_a_large_storm_fills_each_batch_up_to_500_writes() -> None:
    """1,000 stop-losses and 600 triggers: a position's mark is one write, a trigger's two
    (its execution and its deletion), so the batches grow to 500 marks of positions and
    250 of triggers, never past Firestore's 500 writes."""
    documents = {f"users/u{n % 50}/openPositions/p{n}": _stop(81 + n / 100) for n in range(1000)}
    documents.update({f"users/u{n % 50}/tradeTriggers/t{n}": _trigger(81 + n / 100)
                      for n in range(600)})
    database = RecordingDatabase()
    database.write(lambda batch: [batch.set(p, d) for p, d in documents.items()])
    database.batches.clear()
    index = _one_armed(database)
    _storm(database, [Marker(database, index, Metrics(), "w", concurrency=1)], index)
    writes = [len(batch) for batch in database.batches]
    # the stop-losses first: 511, then 489 and 5 triggers (499: a sixth would make 501)
    assert writes[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 499]
    assert writes[10:] == [500, 500, 190]  # 250, 250 and 95 triggers
    assert sum(writes) == 1000 + 2 * 600 and database.transactions == 0


class SlowFirstDatabase(RecordingDatabase):
    """Logs when each write starts and ends; the first takes `first_seconds`."""

    def __init__(self, first_seconds: float) -> None:
        super().__init__()
        self.first_seconds = first_seconds
        self.log: list[str] = []

    def write(self, work: Any) -> None:
        first = not self.log
        self.log.append("start")
        if first:
            time.sleep(self.first_seconds)
        super().write(work)
        self.log.append("end")


def _slow_first_storm(first_seconds: float) -> SlowFirstDatabase:
    database = SlowFirstDatabase(first_seconds)
    documents = dict(STORM)
    MemoryDatabase.write(database, lambda batch: [batch.set(p, d) for p, d in documents.items()])
    index = PriceIndex()
    for armed in _seen(database).values():
        index.arm(armed)
    _storm(database, [Marker(database, index, Metrics(), "w", concurrency=16, batch_size=4)],
           index)
    return database


def test_the_first_mark_of_a_burst_is_written_alone() -> None:
    database = _slow_first_storm(0.02)  # shorter than HEAD_START: the others wait for it
    assert database.log[:2] == ["start", "end"]
    assert len(database.batches) == 5  # 1, 2, 3, 2, 1 marks: every mark written


def test_a_slow_first_mark_does_not_hold_the_burst_back_for_long() -> None:
    database = _slow_first_storm(HEAD_START * 6)  # the others start after HEAD_START
    assert database.log[:2] == ["start", "start"]
    assert len(database.batches) == 5


def test_blind_marks_write_what_the_transaction_writes() -> None:
    documents = {"users/a/tradeTriggers/t": _trigger(95, stopLoss=70, takeProfit=120),
                 "users/b/openPositions/p": _stop(85),
                 "users/b/openPositions/trail": _trailing(5),
                 "users/c/openPositions/manual": position_doc(details={"status": "closing"})}
    blind, read = _store(documents), _store(documents)
    armed = _seen(blind)
    tick = Tick("SOLUSDTM", D(80), D("79.9"), D("80.1"), time_ms=1234)
    planned = []
    for found in armed.values():
        if found.trigger is not None:
            [snapshot] = blind.read_many([found.path])
            planned.append(plan_read_trigger_mark(snapshot, found.uid, found.doc_id, tick, "w"))
            assert mark_trigger(read, found.uid, found.doc_id, tick, "w").kind == "marked"
        else:
            assert found.position is not None and found.seen is not None
            planned.append(plan_position_mark(found.uid, found.doc_id, found.position,
                                              found.immediate, found.seen, tick, "w", D(101)))
            assert mark_position(read, found.uid, found.doc_id, tick, "w",
                                 D(101)).kind == "marked"
    write_marks(blind, [mark for mark in planned if isinstance(mark, PlannedMark)])
    assert all(isinstance(mark, PlannedMark) for mark in planned)
    assert blind.documents == read.documents
    closing = blind.documents["users/b/openPositions/trail"]
    assert closing["details"]["closeRequest"]["detail"] == "trailing_stop"
    assert closing["trailing"]["highWaterMark"] == 101


def test_nothing_is_planned_that_the_tick_does_not_cross_or_that_needs_a_read() -> None:
    database = _store({"users/a/tradeTriggers/t": _trigger(75),
                       "users/a/tradeTriggers/oco": _trigger(95, ocoTriggerId="t"),
                       "users/a/tradeTriggers/off": _trigger(95, details={"status": "cancelled"}),
                       "users/b/openPositions/p": _stop(79)})
    trigger, oco, off, gone = database.read_many([
        "users/a/tradeTriggers/t", "users/a/tradeTriggers/oco", "users/a/tradeTriggers/off",
        "users/a/tradeTriggers/gone"])
    assert plan_read_trigger_mark(trigger, "a", "t", CRASH, "w") is None
    assert plan_read_trigger_mark(oco, "a", "oco", CRASH, "w") is None  # its partner: read it
    assert plan_read_trigger_mark(off, "a", "off", CRASH, "w") == Skipped(Skip.NOT_ACTIVE)
    assert plan_read_trigger_mark(gone, "a", "gone", CRASH, "w") == Skipped(Skip.NO_TRIGGER)
    position = _seen(database)["users/b/openPositions/p"]
    assert position.position is not None and position.seen is not None
    assert plan_position_mark("b", "p", position.position, False, position.seen, CRASH,
                              "w") is None


def _one_armed(database: MemoryDatabase) -> PriceIndex:
    index = PriceIndex()
    for armed in _seen(database).values():
        index.arm(armed)
    return index


@pytest.mark.parametrize("change", ["cancelled", "deleted", "edited off", "marked"])
def test_a_trigger_changed_since_it_was_read_is_never_marked_from_the_old_version(
        change: str) -> None:
    path = "users/a/tradeTriggers/t"
    database = _store({path: _trigger(95)})
    index = _one_armed(database)  # read now; changed before the tick
    if change == "cancelled":
        database.write(lambda b: b.update(path, {"details.status": "cancelled"}))
    elif change == "deleted":
        database.write(lambda b: b.delete(path))
    elif change == "edited off":
        database.write(lambda b: b.update(path, {"targetPrice": 70}))
    else:  # another worker marked it already
        assert mark_trigger(database, "a", "t", CRASH, "other").kind == "marked"
    before = {p: d for p, d in database.documents.items()}
    metrics = Metrics()
    _storm(database, [Marker(database, index, metrics, "w")], index)
    assert database.documents == before


class RacingDatabase(MemoryDatabase):
    """Another writer changes each document right after the marker has read it."""

    def __init__(self, documents: dict[str, Any], change: Any) -> None:
        super().__init__()
        self.write(lambda batch: [batch.set(p, d) for p, d in documents.items()])
        self.change = change

    def read_many(self, paths: list[str]) -> list[Snapshot | None]:
        found = super().read_many(paths)
        for path in paths:
            self.change(self, path)
        return found


def test_a_trigger_changed_between_its_read_and_its_mark_is_decided_anew() -> None:
    path = "users/a/tradeTriggers/t"
    database = RacingDatabase({path: _trigger(95)}, lambda db, p: db.write(
        lambda b: b.update(p, {"details.status": "cancelled"})))
    index, metrics = _one_armed(database), Metrics()
    _storm(database, [Marker(database, index, metrics, "w")], index)
    assert database.documents[path]["details"]["status"] == "cancelled"
    assert not [p for p in database.documents if "/executedTriggers/" in p]
    assert metrics.registry.get_sample_value("cogmora_mark_outcomes_total",
                                             {"outcome": "stale"}) == 1


def test_an_edit_that_still_crosses_is_marked_from_what_is_there_now() -> None:
    path = "users/a/tradeTriggers/t"
    database = _store({path: _trigger(95)})
    index = _one_armed(database)
    database.write(lambda b: b.update(path, {"amount": 250}))
    _storm(database, [Marker(database, index, Metrics(), "w")], index)
    execution = database.documents["users/a/executedTriggers/t"]
    assert execution["amount"] == 250 and path not in database.documents


def test_a_position_changed_since_it_was_read_is_decided_anew() -> None:
    stopped, edited = "users/b/openPositions/stopped", "users/b/openPositions/edited"
    database = _store({stopped: _stop(85), edited: _stop(85)})
    index = _one_armed(database)
    mark_position(database, "b", "stopped", Tick("SOLUSDTM", D(84), D("83.9")), "other")
    database.write(lambda b: b.update(edited, {"details.stopLoss": 70}))  # no longer crossed
    _storm(database, [Marker(database, index, Metrics(), "w")], index)
    request = database.documents[stopped]["details"]["closeRequest"]
    assert (request["price"], request["source"]) == (83.9, "other")  # priced once, not again
    assert database.documents[edited]["details"] == {"status": "open", "stopLoss": 70}


def test_one_stale_document_does_not_hold_back_the_others_of_its_batch() -> None:
    documents = {f"users/u{n}/openPositions/p{n}": _stop(85 + n) for n in range(8)}
    database = RecordingDatabase()
    database.write(lambda batch: [batch.set(p, d) for p, d in documents.items()])
    index, metrics = _one_armed(database), Metrics()
    database.write(lambda b: b.update("users/u3/openPositions/p3", {"details.stopLoss": 70}))
    _storm(database, [Marker(database, index, metrics, "w", concurrency=1,
                             batch_size=8)], index)
    for n in range(8):
        details = database.documents[f"users/u{n}/openPositions/p{n}"]["details"]
        assert details["status"] == ("open" if n == 3 else "closing"), n
    assert database.transactions == 1  # only the changed one was read again
    assert metrics.registry.get_sample_value("cogmora_mark_outcomes_total",
                                             {"outcome": "stale"}) >= 1


def test_two_workers_racing_on_the_same_snapshot_mark_once() -> None:
    database = _store(STORM)
    indexes = [_one_armed(database), _one_armed(database)]
    metrics = [Metrics(), Metrics()]
    markers = [Marker(database, index, found, name, batch_size=3)
               for index, found, name in zip(indexes, metrics, ("one", "two"), strict=True)]
    hits = [index.on_tick(CRASH) for index in indexes]

    async def race() -> None:
        for mine, theirs in zip(*hits, strict=True):  # both workers' batches interleave
            markers[0].submit(mine, time.monotonic())
            markers[1].submit(theirs, time.monotonic())
        await asyncio.gather(*(marker.drain(timeout=10) for marker in markers))

    asyncio.run(race())
    assert sorted(p for p in database.documents if "/executedTriggers/" in p) == [
        "users/a/executedTriggers/deep-trigger", "users/a/executedTriggers/market",
        "users/a/executedTriggers/shallow-trigger"]
    assert not [p for p in database.documents if "/tradeTriggers/" in p]
    marked = sum(m.registry.get_sample_value("cogmora_mark_outcomes_total",
                                             {"outcome": "marked"}) or 0 for m in metrics)
    assert marked == len(STORM)  # each document marked by exactly one of the two
    for path in STORM:
        if "/openPositions/" in path:
            assert database.documents[path]["details"]["status"] == "closing"


def test_stale_write_leaves_the_whole_batch_unwritten() -> None:
    database = _store({"users/a/tradeTriggers/t": _trigger(95),
                       "users/a/tradeTriggers/u": _trigger(96)})
    planned = []
    for snapshot in database.read_many(["users/a/tradeTriggers/t", "users/a/tradeTriggers/u"]):
        assert snapshot is not None and snapshot.update_time is not None
        mark = plan_trigger_mark("a", snapshot.id, parse_trigger(snapshot.data),
                                 snapshot.update_time, CRASH, "w")
        assert mark is not None
        planned.append(mark)
    database.write(lambda b: b.update("users/a/tradeTriggers/u", {"amount": 5}))
    before = dict(database.documents)
    with pytest.raises(StaleWrite):
        write_marks(database, planned)
    assert database.documents == before
