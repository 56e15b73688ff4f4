"""The watcher keeps the index equal to the documents; the marker retries failed marks."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora_core.model import Tick
from tests.support.builders import position_doc, trigger_doc
from tests.support.memory import MemoryDatabase
from worker.book import PriceIndex
from worker.documents import armed_trigger
from worker.marker import Marker
from worker.metrics import Metrics
from worker.watcher import Watcher

T1 = "users/u1/tradeTriggers/t1"
T2 = "users/u1/tradeTriggers/t2"
P1 = "users/u1/openPositions/p1"


class RecordingMarker:
    def __init__(self) -> None:
        self.rejected: list[tuple[str, str]] = []
        self.submitted: list[Any] = []

    def reject(self, path: str, uid: str, doc_id: str, reason: str, detail: str) -> None:
        self.rejected.append((path, reason))

    def submit(self, hit: Any, received_at: float) -> None:
        self.submitted.append(hit)


def watcher() -> tuple[Watcher, PriceIndex, RecordingMarker, Metrics]:
    index, marker, metrics = PriceIndex(), RecordingMarker(), Metrics()
    return Watcher(None, index, marker, metrics, lambda: None), index, marker, metrics  # type: ignore[arg-type]


def test_listener_changes_arm_rearm_and_disarm() -> None:
    w, index, _, _ = watcher()
    w.apply_from_listener([(T1, trigger_doc()), (P1, position_doc())])
    assert T1 in index and P1 in index
    w.apply_from_listener([(T1, trigger_doc(details={"status": "cancelled"})), (P1, None)])
    assert T1 not in index and P1 not in index


def test_invalid_trigger_is_rejected_and_invalid_position_only_counted() -> None:
    w, index, marker, metrics = watcher()
    w.apply_from_listener([(T1, trigger_doc(amount=-1)), (P1, position_doc(size="big"))])
    assert marker.rejected == [(T1, "invalid_amount")]
    assert len(index) == 0
    assert metrics.registry.get_sample_value(
        "cogmora_invalid_documents_total",
        {"collection": "openPositions", "reason": "invalid_size"}) == 1


def test_a_resync_older_than_a_listener_change_does_not_undo_it() -> None:
    w, index, _, _ = watcher()
    started = time.monotonic()
    w.apply_from_listener([(T2, trigger_doc())])  # created while the resync was reading
    w.reconcile("tradeTriggers", [(T1, trigger_doc())], started)
    assert T1 in index and T2 in index

    later = time.monotonic()
    w.reconcile("tradeTriggers", [(T1, trigger_doc())], later)  # a newer full read
    assert T1 in index and T2 not in index


def test_manual_close_with_a_fresh_price_is_marked_at_once() -> None:
    w, index, marker, _ = watcher()
    index.on_tick(Tick("SOLUSDTM", D("101"), D("100.9"), D("101.1")))
    w.apply_from_listener([(P1, position_doc(details={"status": "closing"}))])
    assert [h.tick.price for h in marker.submitted] == [D("101")]
    assert P1 not in index


class FlakyDatabase(MemoryDatabase):
    """Fails its first `failures` transactions, as a contended or unreachable store would."""

    def __init__(self, documents: dict, failures: int) -> None:
        super().__init__(documents)
        self.failures = failures

    def run(self, work: Any, done: Any = None) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        return super().run(work, done)


def test_a_failed_mark_is_retried_until_it_lands() -> None:
    database = FlakyDatabase({T1: trigger_doc()}, failures=2)
    index, metrics = PriceIndex(), Metrics()
    index.arm(armed_trigger(T1, trigger_doc()))
    marker = Marker(database, index, metrics, "test", attempts=5)

    async def scenario() -> None:
        for hit in index.on_tick(Tick("XBTUSDTM", D("59000"), D("58999"), D("59001"))):
            marker.submit(hit, time.monotonic())
        await marker.drain(timeout=10)

    asyncio.run(scenario())

    execution = database.documents["users/u1/executedTriggers/t1"]
    assert (execution["status"], execution["executedPrice"]) == ("pending", 59001)
    assert T1 not in database.documents
    assert metrics.registry.get_sample_value(
        "cogmora_mark_outcomes_total", {"outcome": "error"}) == 2


def test_a_mark_that_keeps_failing_is_armed_again_for_the_next_tick() -> None:
    database = FlakyDatabase({T1: trigger_doc()}, failures=3)
    index, metrics = PriceIndex(), Metrics()
    index.arm(armed_trigger(T1, trigger_doc()))
    marker = Marker(database, index, metrics, "test", attempts=2)

    async def scenario() -> None:
        for hit in index.on_tick(Tick("XBTUSDTM", D("59000"))):
            marker.submit(hit, time.monotonic())
        await marker.drain(timeout=10)

    asyncio.run(scenario())
    assert T1 in index
    assert "users/u1/executedTriggers/t1" not in database.documents


def test_shards_split_symbols_without_overlap_or_gaps() -> None:
    from worker.settings import Settings

    symbols = [f"S{n}USDTM" for n in range(200)]
    shards = [Settings(shard_count=3, shard_index=i) for i in range(3)]
    owners = [[s for s in shards if s.owns(symbol)] for symbol in symbols]
    assert all(len(found) == 1 for found in owners)
    assert all(sum(s.owns(symbol) for symbol in symbols) > 40 for s in shards)
    assert [s.owns(None) for s in shards] == [True, False, False]


def test_a_shard_arms_only_its_own_symbols() -> None:
    from worker.settings import Settings

    index, marker, metrics = PriceIndex(), RecordingMarker(), Metrics()
    mine = Settings(shard_count=2, shard_index=0)
    w = Watcher(None, index, marker, metrics, lambda: None, owns=mine.owns)  # type: ignore[arg-type]
    docs = [(f"users/u/tradeTriggers/t{n}", trigger_doc(symbol=f"S{n}USDTM"))
            for n in range(40)]
    w.apply_from_listener(docs)
    assert sorted(index.paths()) == sorted(p for p, d in docs if mine.owns(d["symbol"]))
    assert 0 < len(index) < 40


def test_known_documents_follow_the_watched_queries_armed_or_not() -> None:
    w, index, _, _ = watcher()
    w.apply_from_listener([
        (T1, trigger_doc()), (T2, trigger_doc(amount=-1)),  # armed; in the query but invalid
        (P1, position_doc(details={"status": "closing",
                                   "closeRequest": {"reason": "manual", "price": 1}})),
    ])
    assert (w.known["tradeTriggers"], w.known["openPositions"]) == ({T1, T2}, {P1})
    assert len(index) == 1  # only T1: T2 is invalid, P1 is the functions' to settle
    w.apply_from_listener([(T1, trigger_doc(details={"status": "cancelled"})), (P1, None)])
    assert (w.known["tradeTriggers"], w.known["openPositions"]) == ({T2}, set())


def test_triggers_past_the_users_limit_are_rejected_and_never_armed() -> None:
    from cogmora_core.config import LimitsConfig

    w, index, marker, metrics = watcher()
    w.limits = LimitsConfig(max_active_triggers=2)
    mine = [f"users/u1/tradeTriggers/t{n}" for n in range(4)]
    other = "users/u2/tradeTriggers/t0"
    w.apply_from_listener([(path, trigger_doc()) for path in [*mine, other]])

    assert [path in index for path in mine] == [True, True, False, False]
    assert other in index  # another user's count is their own
    assert marker.rejected == [(mine[2], "too_many_triggers"), (mine[3], "too_many_triggers")]
    assert metrics.registry.get_sample_value(
        "cogmora_invalid_documents_total",
        {"collection": "tradeTriggers", "reason": "too_many_triggers"}) == 2
    # A slot frees before the rejection lands: the rejected one still is not armed.
    w.apply_from_listener([(mine[0], None), (mine[2], trigger_doc())])
    assert mine[2] not in index
    # A new trigger takes the free slot.
    w.apply_from_listener([(mine[2], trigger_doc(details={"status": "rejected"})),
                           (mine[3], trigger_doc(details={"status": "rejected"})),
                           ("users/u1/tradeTriggers/t9", trigger_doc())])
    assert "users/u1/tradeTriggers/t9" in index and mine[1] in index


def test_limits_take_defaults_for_bad_fields() -> None:
    from cogmora_core.config import LimitsConfig

    limits = LimitsConfig.from_document({"maxActiveTriggers": 5, "maxOpenPositions": 2.5,
                                         "maxWatchlistSymbols": -1, "apiRequestsPerMinute": "x"})
    assert (limits.max_active_triggers, limits.max_open_positions,
            limits.max_watchlist_symbols, limits.api_requests_per_minute) == (5, 200, 50, 120)
    assert len(limits.problems) == 3


def test_ranking_a_batch_twice_keeps_each_triggers_place_as_the_clock_moves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cogmora_core.config import LimitsConfig
    from worker import watcher as watcher_module

    clock = iter(range(1_000_000, 2_000_000, 1000))  # a second later at every look
    monkeypatch.setattr(watcher_module.time, "time", lambda: next(clock))
    w, index, marker, _ = watcher()
    w.limits = LimitsConfig(max_active_triggers=2)
    mine = [f"users/u1/tradeTriggers/t{n}" for n in range(3)]
    w.apply_from_listener([(path, trigger_doc()) for path in mine])

    assert [path in index for path in mine] == [True, True, False]
    assert marker.rejected == [(mine[2], "too_many_triggers")]
