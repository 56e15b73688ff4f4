"""Wire the worker's pieces together and run them until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from aiohttp import web

from cogmora_backend import firestore_client
from cogmora_backend.logs import configure_logging
from cogmora_core.model import Tick
from worker.book import PriceIndex
from worker.endpoints import make_app
from worker.feeds.backpack import BackpackFeed
from worker.feeds.kucoin import KucoinFeed
from worker.marker import Marker
from worker.metrics import Metrics
from worker.settings import Settings
from worker.watcher import Watcher

log = logging.getLogger(__name__)


class Worker:
    """The running worker: feeds → index → marks, with Firestore kept in the index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.index = PriceIndex()
        self.database = firestore_client.database()
        self.marker = Marker(self.database, self.index, self.metrics, settings.worker_id,
                             settings.mark_concurrency)
        # One Backpack connection carries both of its markets (spot and perpetuals).
        backpack = BackpackFeed(settings.backpack_ws_url, self.on_tick, self.metrics)
        self.feeds: dict[tuple[str, str], KucoinFeed | BackpackFeed] = {
            ("kucoin", "spot"): KucoinFeed("spot", settings.kucoin_spot_api, self.on_tick,
                                           self.metrics, topic_limit=settings.topic_limit),
            ("kucoin", "futures"): KucoinFeed("futures", settings.kucoin_futures_api,
                                              self.on_tick, self.metrics,
                                              topic_limit=settings.topic_limit),
            ("backpack", "spot"): backpack,
            ("backpack", "futures"): backpack,
        }
        self.watcher = Watcher(self.database, self.index, self.marker, self.metrics,
                               self.update_subscriptions, owns=settings.owns)
        self.stopping = asyncio.Event()

    def on_tick(self, tick: Tick) -> None:
        """Apply a tick to the index and mark what it fires (no database on this path)."""
        received = time.monotonic()
        for hit in self.index.on_tick(tick):
            self.marker.submit(hit, received)

    def unique_feeds(self) -> list[KucoinFeed | BackpackFeed]:
        """Return each feed once (one feed may serve several markets)."""
        return list({id(feed): feed for feed in self.feeds.values()}.values())

    def update_subscriptions(self) -> None:
        """Subscribe each feed to the symbols something is armed on."""
        wanted: dict[int, set[str]] = {id(feed): set() for feed in self.feeds.values()}
        for venue, symbol_type, symbol in self.index.markets():
            feed = self.feeds.get((venue, symbol_type))
            if feed is not None:
                wanted[id(feed)].add(symbol)
        for feed in self.unique_feeds():
            feed.update_desired(wanted[id(feed)])

    def health(self) -> dict[str, bool]:
        """Return each part's health: every feed with symbols, and Firestore."""
        parts = {feed.name: feed.healthy for feed in self.unique_feeds()}
        parts["firestore"] = self.watcher.healthy
        return parts

    async def run(self) -> None:
        """Run until `stopping` is set, then stop gracefully."""
        runner = web.AppRunner(make_app(self.health, self.metrics, self.index),
                               handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", self.settings.port).start()
        for feed in self.unique_feeds():
            feed.start()
        await self.watcher.resync()  # the slow path, before listening
        self.watcher.start_listeners()
        resync = asyncio.create_task(self.watcher.resync_forever(
            self.settings.resync_seconds, self.settings.full_resync_seconds))
        log.info("worker running", extra={
            "armed": len(self.index), "workerId": self.settings.worker_id,
            "shard": f"{self.settings.shard_index}/{self.settings.shard_count}"})
        await self.stopping.wait()
        log.info("worker stopping")
        resync.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resync
        self.watcher.stop()
        await asyncio.gather(*(feed.stop() for feed in self.unique_feeds()))
        await self.marker.drain(timeout=8)
        await runner.cleanup()


async def main() -> None:
    """Run the worker with settings from the environment; SIGTERM and SIGINT stop it."""
    configure_logging()
    worker = Worker(Settings.from_env())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stopping.set)
    await worker.run()
