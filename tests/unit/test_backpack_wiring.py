"""The worker routes Backpack symbols of both markets to one Backpack feed, started once."""

from __future__ import annotations

import asyncio

from tests.support.builders import position_doc, trigger_doc
from tests.support.memory import MemoryDatabase
from worker.app import Worker
from worker.book import PriceIndex
from worker.documents import armed_position, armed_trigger
from worker.listings import Listings
from worker.marker import Marker
from worker.metrics import Metrics
from worker.settings import Settings
from worker.subscriptions import Subscriptions
from worker.venues import backpack, kucoin
from worker.venues.backpack.feed import BackpackFeed
from worker.venues.base import FeedHandlers
from worker.venues.kucoin.feed import KucoinFeed


def wired_worker() -> Worker:
    """Return a worker with its feeds and index, without Firestore (not needed here)."""
    worker = Worker.__new__(Worker)
    worker.settings = Settings(environ={"BACKPACK_WS_URL": "ws://127.0.0.1:9",
                                        "KUCOIN_SPOT_API": "http://127.0.0.1:9",
                                        "KUCOIN_FUTURES_API": "http://127.0.0.1:9"})
    worker.metrics = Metrics()
    worker.index = PriceIndex()
    worker.last_seen = {}
    worker.recovering = {}
    worker.marker = Marker(MemoryDatabase(), worker.index, worker.metrics, "wiring")
    worker.subscriptions = Subscriptions(worker.settings.subscription_linger_seconds,
                                         worker.metrics, worker.update_subscriptions)
    worker.listings = Listings({}, lambda: None)  # no venue to ask: every symbol listed
    worker.feeds = {}
    handlers = FeedHandlers(worker.on_tick, lambda funding: None, lambda market, symbols: None)
    for adapter in (kucoin.Adapter, backpack.Adapter):
        venue = adapter(worker.settings.environ)
        for market, feed in venue.feeds(handlers, worker.metrics).items():
            worker.feeds[(adapter.venue, market)] = feed
            worker.subscriptions.add_feed(feed, venue.subscription_limits(market))
    return worker


def test_both_backpack_markets_share_one_feed_that_carries_both_symbol_kinds() -> None:
    async def scenario() -> None:
        worker = wired_worker()
        index = worker.index
        index.arm(armed_trigger("users/u/tradeTriggers/a", trigger_doc(
            venue="backpack", symbol="SOL_USDC_PERP")))
        index.arm(armed_trigger("users/u/tradeTriggers/b", trigger_doc(
            venue="backpack", symbol="ETH_USDC", symbolType="spot", action="buy",
            leverage=1)))
        index.arm(armed_position("users/u/openPositions/c", position_doc(
            venue="backpack", symbol="BTC_USDC_PERP")))
        index.arm(armed_trigger("users/u/tradeTriggers/d", trigger_doc()))

        worker.update_subscriptions()

        backpack = worker.feeds[("backpack", "futures")]
        assert isinstance(backpack, BackpackFeed)
        assert backpack.desired == {"SOL_USDC_PERP", "ETH_USDC", "BTC_USDC_PERP"}
        kucoin = worker.feeds[("kucoin", "futures")]
        assert isinstance(kucoin, KucoinFeed)
        assert kucoin.connections[0].desired == {"XBTUSDTM"}
        assert [feed.name for feed in worker.unique_feeds()] == [
            "kucoin-spot", "kucoin-futures", "backpack"]

    asyncio.run(scenario())


def test_a_backpack_feed_starts_once_however_often_it_is_started() -> None:
    async def scenario() -> None:
        feed = BackpackFeed("ws://127.0.0.1:9", lambda tick: None, Metrics(),
                            reconnect_initial=5, reconnect_max=5)
        feed.start()
        first = feed._task
        feed.start()
        assert feed._task is first
        assert feed.healthy  # nothing desired
        feed.update_desired({"SOL_USDC"})
        await asyncio.sleep(0.2)  # port 9 refuses: not connected
        assert not feed.healthy
        await feed.stop()

    asyncio.run(scenario())
