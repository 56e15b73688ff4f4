"""What each feed carries: held symbols, the linger after them, changes paced by venue limits.

The pure parts (`Linger`, `TokenBucket`, `Pacer`) run on an injected clock;
the worker's part (what holds a market) on a wired worker without Firestore.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from cogmora_core.model import SymbolType, Tick
from tests.support.builders import position_doc, trigger_doc
from tests.unit.test_backpack_wiring import wired_worker
from worker.book import Hit
from worker.documents import armed_position, armed_trigger
from worker.metrics import Metrics
from worker.subscriptions import Linger, Pacer, Subscriptions, TokenBucket
from worker.venues import backpack, kucoin
from worker.venues.base import SubscriptionLimits
from worker.venues.kucoin.feed import KucoinFeed

BTC = ("kucoin", "futures", "XBTUSDTM")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- Linger -------------------------------------------------------------------------


def test_a_key_stays_wanted_for_the_linger_after_its_last_reason_goes() -> None:
    linger: Linger[str] = Linger(60)
    assert linger.wanted({"A"}, 0) == {"A"}
    assert linger.wanted(set(), 10) == {"A"}  # released at 10
    assert linger.lingering() == {"A"} and linger.next_expiry() == 70
    assert linger.wanted(set(), 69.9) == {"A"}
    assert linger.wanted(set(), 70) == set()
    assert linger.next_expiry() is None


def test_held_again_while_lingering_restarts_the_linger_from_the_next_release() -> None:
    linger: Linger[str] = Linger(60)
    linger.wanted({"A"}, 0)
    linger.wanted(set(), 10)
    assert linger.wanted({"A"}, 50) == {"A"} and linger.lingering() == set()
    linger.wanted(set(), 100)
    assert linger.wanted(set(), 159) == {"A"}
    assert linger.wanted(set(), 160) == set()


def test_churn_never_lets_a_key_go_and_a_zero_linger_lets_it_go_at_once() -> None:
    linger: Linger[str] = Linger(60)
    for second in range(0, 600, 5):  # armed and fired every 5 s for ten minutes
        held = {"A"} if second % 10 == 0 else set()
        assert "A" in linger.wanted(held, second)
    immediate: Linger[str] = Linger(0)
    immediate.wanted({"A"}, 0)
    assert immediate.wanted(set(), 0) == set()
    with pytest.raises(ValueError):
        Linger(-1)


# --- TokenBucket and limits ---------------------------------------------------------


def test_the_bucket_refills_at_its_rate_up_to_its_capacity_and_resizes() -> None:
    bucket = TokenBucket(rate=2, capacity=10, now=0)
    assert bucket.available(0) == 10
    bucket.take(10, 0)
    assert bucket.available(1) == 2
    assert bucket.ready_at(5, 1) == 2.5
    assert bucket.available(100) == 10
    assert bucket.ready_at(50, 100) == 100  # more than the capacity: when full
    bucket.resize(rate=4, capacity=20, now=100)  # a second connection: twice the room
    assert bucket.available(100) == 20
    bucket.resize(rate=2, capacity=10, now=100)
    assert bucket.available(100) == 10


def test_limits_count_messages_symbols_and_connections() -> None:
    spot = kucoin.Adapter({}).subscription_limits(kucoin.SymbolType.SPOT)
    futures = kucoin.Adapter({"TOPIC_LIMIT": "10"}).subscription_limits(
        kucoin.SymbolType.FUTURES)
    assert (spot.messages(1), spot.messages(100), spot.messages(101)) == (1, 1, 2)
    assert (futures.messages(1), futures.messages(3)) == (2, 6)  # ticker + funding topics
    assert (spot.symbols_within(2.9), futures.symbols_within(5)) == (200, 2)
    assert (futures.connections(0), futures.connections(5), futures.connections(6)) == (1, 1, 2)
    assert spot.connections(301) == 2
    perps = backpack.Adapter({}).subscription_limits(backpack.SymbolType.FUTURES)
    assert perps.messages(25) == 1 and perps.messages(26) == 2
    with pytest.raises(ValueError):
        SubscriptionLimits(burst=1, topics_per_symbol=2)  # one symbol could never go


# --- Pacer --------------------------------------------------------------------------


def test_subscribes_go_at_once_within_the_burst_and_the_rest_at_the_rate() -> None:
    limits = SubscriptionLimits(messages_per_second=2, burst=4)
    pacer = Pacer(limits, now=0)
    change = pacer.step({"A", "B", "C", "D", "E", "F"}, 0)
    assert change is not None
    assert (change.added, change.removed, change.messages) == (("A", "B", "C", "D"), (), 4)
    assert change.desired == {"A", "B", "C", "D"}
    assert pacer.retry_at == 0.5
    assert pacer.step({"A", "B", "C", "D", "E", "F"}, 0.2) is None
    change = pacer.step({"A", "B", "C", "D", "E", "F", "G"}, 1.0)  # G joins the wait
    assert change is not None and change.added == ("E", "F")
    assert pacer.retry_at == 1.5
    change = pacer.step({"A", "B", "C", "D", "E", "F", "G"}, 1.5)
    assert change is not None and change.added == ("G",) and pacer.retry_at is None


def test_unsubscribes_wait_until_nothing_is_left_to_subscribe() -> None:
    pacer = Pacer(SubscriptionLimits(messages_per_second=1, burst=2), now=0)
    pacer.step({"A", "B"}, 0)
    change = pacer.step({"C", "D", "E"}, 10)  # A and B go, three come
    assert change is not None and (change.added, change.removed) == (("C", "D"), ())
    change = pacer.step({"C", "D", "E"}, 11)
    assert change is not None and (change.added, change.removed) == (("E",), ())
    change = pacer.step({"C", "D", "E"}, 13)
    assert change is not None and (change.added, change.removed) == ((), ("A", "B"))
    assert change.desired == {"C", "D", "E"} and pacer.retry_at is None


def test_a_batch_of_spot_symbols_takes_one_message_per_hundred() -> None:
    pacer = Pacer(kucoin.Adapter({}).subscription_limits(kucoin.SymbolType.SPOT), now=0)
    symbols = {f"S{i:03}-USDT" for i in range(250)}
    change = pacer.step(symbols, 0)
    assert change is not None and len(change.added) == 250 and change.messages == 3


def test_more_connections_give_more_room() -> None:
    limits = SubscriptionLimits(messages_per_second=1, burst=2, symbols_per_connection=2)
    pacer = Pacer(limits, now=0)
    change = pacer.step({"A", "B", "C", "D", "E", "F"}, 0)  # three connections: six messages
    assert change is not None and len(change.added) == 6


# --- Subscriptions: the driver -------------------------------------------------------


def test_the_driver_counts_each_change_per_symbol_and_wakes_for_the_linger() -> None:
    async def scenario() -> None:
        clock, metrics, refreshed = Clock(), Metrics(), []
        subscriptions = Subscriptions(30, metrics, lambda: refreshed.append(clock.now),
                                      clock=clock)
        feed = KucoinFeed("futures", "http://127.0.0.1:9", lambda tick: None, metrics,
                          on_funding=lambda funding: None)
        subscriptions.add_feed(feed, kucoin.Adapter({}).subscription_limits(
            kucoin.SymbolType.FUTURES))
        wanted = subscriptions.wanted({BTC})
        subscriptions.push({feed.name: {m[2] for m in wanted}})
        assert feed.connections[0].desired == {"XBTUSDTM"}
        clock.now += 1
        wanted = subscriptions.wanted(set())  # the last level fired
        assert wanted == {BTC}
        subscriptions.push({feed.name: {m[2] for m in wanted}})
        assert feed.connections[0].desired == {"XBTUSDTM"}
        assert subscriptions._timer_at == 1031
        clock.now += 30
        subscriptions.push({feed.name: {m[2] for m in subscriptions.wanted(set())}})
        assert feed.connections[0].desired == set()

        def changes(op: str) -> float | None:
            return metrics.registry.get_sample_value(
                "cogmora_subscription_changes_total",
                {"feed": "kucoin-futures", "symbol": "XBTUSDTM", "op": op})

        assert (changes("subscribe"), changes("unsubscribe")) == (1, 1)
        assert metrics.registry.get_sample_value(
            "cogmora_subscription_messages_total", {"feed": "kucoin-futures"}) == 4
        subscriptions.stop()

    asyncio.run(scenario())


def test_the_timer_runs_the_refresh_when_the_linger_ends() -> None:
    async def scenario() -> None:
        refreshed = asyncio.Event()
        subscriptions = Subscriptions(0.05, Metrics(), refreshed.set)
        subscriptions.wanted({BTC})
        subscriptions.wanted(set())
        subscriptions.push({})
        await asyncio.wait_for(refreshed.wait(), timeout=2)

    asyncio.run(scenario())


# --- The worker: what holds a market -------------------------------------------------


def test_a_fired_level_keeps_its_symbol_through_its_mark_and_the_linger() -> None:
    async def scenario() -> None:
        worker = wired_worker()
        feed = worker.feeds[("kucoin", "futures")]
        assert isinstance(feed, KucoinFeed)
        path = "users/u/tradeTriggers/t"
        worker.index.arm(armed_trigger(path, trigger_doc()))  # XBTUSDTM below 60,000
        worker.update_subscriptions()
        assert feed.connections[0].desired == {"XBTUSDTM"}
        tick = Tick("XBTUSDTM", D("59000"), D("58999"), D("59001"), 1, venue="kucoin",
                    symbol_type=SymbolType.FUTURES)
        hits = worker.index.on_tick(tick)
        assert [hit.armed.path for hit in hits] == [path] and not worker.index.markets()
        blocked = asyncio.Event()
        worker.marker._call = lambda *args: blocked.wait()  # type: ignore[method-assign]
        worker.marker.submit(Hit(hits[0].armed, tick), 0.0)
        assert worker.held_markets() == {BTC}  # the mark is queued
        await asyncio.sleep(0)  # its batch starts
        assert worker.marker._running and worker.held_markets() == {BTC}  # in flight
        worker.subscriptions.linger.seconds = 0  # nothing lingers: only the mark holds it
        worker.update_subscriptions()
        assert feed.connections[0].desired == {"XBTUSDTM"}
        worker.marker.stopping = True
        tasks = list(worker.marker._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # the mark's done callback
        assert worker.held_markets() == set()
        worker.update_subscriptions()
        assert feed.connections[0].desired == set()
        worker.subscriptions.stop()

    asyncio.run(scenario())


def test_a_perpetual_position_and_a_pending_close_hold_their_symbols() -> None:
    async def scenario() -> None:
        worker = wired_worker()
        # No stop-loss or take-profit: only its liquidation price (funding is followed).
        worker.index.arm(armed_position("users/u/openPositions/p", position_doc()))
        worker.index.arm(armed_position("users/u/openPositions/c", position_doc(
            symbol="ETH-USDT", symbolType="spot", leverage=1, details={"status": "closing"})))
        assert worker.held_markets() == {("kucoin", "futures", "SOLUSDTM"),
                                         ("kucoin", "spot", "ETH-USDT")}
        worker.subscriptions.stop()

    asyncio.run(scenario())
