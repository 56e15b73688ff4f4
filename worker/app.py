"""Wire the worker's pieces together and run them until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable
from functools import partial

import httpx
from aiohttp import web

from cogmora_backend import firestore_client
from cogmora_backend.logs import configure_logging
from cogmora_core.errors import Reason
from cogmora_core.model import SymbolType, Tick
from worker import gaps
from worker.book import TRIGGER, Market, PriceIndex
from worker.endpoints import make_app
from worker.listings import Listings
from worker.marker import Marker
from worker.metrics import Metrics
from worker.settings import Settings
from worker.subscriptions import Subscriptions
from worker.venues.base import Feed, FeedHandlers, Funding, VenueAdapter
from worker.venues.registry import ADAPTERS
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
                             settings.mark_concurrency, batch_size=settings.mark_batch)
        #: Every registered venue (worker/venues/registry.py), configured from the environment.
        self.venues: dict[str, VenueAdapter] = {
            adapter.venue: adapter(settings.environ) for adapter in ADAPTERS}
        #: The feed of each (venue, market); one feed may serve several markets.
        self.feeds: dict[tuple[str, str], Feed] = {}
        #: What each feed carries: held, lingering, paced by its venue's limits.
        self.subscriptions = Subscriptions(settings.subscription_linger_seconds, self.metrics,
                                           self.update_subscriptions)
        for venue, adapter in self.venues.items():
            handlers = FeedHandlers(on_tick=self.on_tick,
                                    on_funding=partial(self.on_funding, venue),
                                    on_subscribed=partial(self.on_subscribed, venue))
            for market, feed in adapter.feeds(handlers, self.metrics).items():
                self.feeds[(venue, market)] = feed
                self.subscriptions.add_feed(feed, adapter.subscription_limits(market))
        #: Wall-clock ms of the last tick of each wanted market (gap recovery,
        #: heartbeats). A market no longer wanted is forgotten: when it is wanted
        #: again, nothing was armed on it in between, so it has no gap.
        self.last_seen: dict[Market, int] = {}
        #: Where each market's feed stopped before this process started (persisted
        #: per venue, market and symbol): only those have a gap after a restart.
        self.resume_from: dict[Market, int] = {}
        #: Markets being recovered: their live ticks (with when they arrived)
        #: wait here until recovery is done.
        self.recovering: dict[Market, list[tuple[Tick, float]]] = {}
        self._http: httpx.AsyncClient | None = None
        #: What each venue lists: only listed symbols are subscribed.
        self.listings = Listings({venue: adapter.listed for venue, adapter in self.venues.items()},
                                 self.update_subscriptions)
        self._unlisted_positions: set[str] = set()
        self.watcher = Watcher(self.database, self.index, self.marker, self.metrics,
                               self.update_subscriptions, owns=settings.owns)
        self.stopping = asyncio.Event()

    def on_tick(self, tick: Tick, received: float | None = None) -> None:
        """Apply a tick to the index and mark what it fires (no database on this path).

        `received` is when a tick held back during gap recovery first arrived:
        documents armed since then are not fired by it.
        """
        market = tick.market
        if received is None:
            received = time.monotonic()
            self.last_seen[market] = int(time.time() * 1000)
        waiting = self.recovering.get(market)
        if waiting is not None:  # the gap is replayed first
            waiting.append((tick, received))
            return
        for hit in self.index.on_tick(tick, received):
            self.marker.submit(hit, received)

    def on_funding(self, venue: str, funding: Funding) -> None:
        """Mark a funding settlement at the feed's mark price, else the last price."""
        price = funding.mark_price
        if price is None:
            last = self.index.fresh_tick((venue, SymbolType.FUTURES, funding.symbol),
                                         float("inf"))
            price = last.price if last is not None else None
        if price is None:
            log.warning("funding without a price: not marked",
                        extra={"symbol": funding.symbol, "fundingTime": funding.funding_time_ms})
            return
        self.marker.mark_funding(venue, funding, price)

    def on_subscribed(self, venue: str, market: SymbolType, symbols: list[str]) -> None:
        """Recover the gap of each newly subscribed symbol before its live ticks apply.

        `GAP_MAX_SECONDS=0` turns gap recovery off.
        """
        if venue not in self.venues or self.settings.gap_max_seconds <= 0:
            return
        now = int(time.time() * 1000)
        floor = now - int(self.settings.gap_max_seconds * 1000)
        for symbol in symbols:
            key = (venue, str(market), symbol)
            resumed = self.resume_from.pop(key, None)
            since = self.last_seen.get(key) or resumed
            if since is None or key in self.recovering:
                continue  # subscribed for the first time: no gap
            self.recovering[key] = []
            asyncio.get_running_loop().create_task(
                self._recover(key, max(since, floor), now))

    async def _recover(self, key: Market, since: int, until: int) -> None:
        venue, market, symbol = key
        try:
            assert self._http is not None
            candles = await self.venues[venue].fetch_candles(
                self._http, SymbolType(market), symbol, since, until)
            for armed in self.index.armed_on(key):
                levels_since = self.watcher.levels_since(armed.path)
                if levels_since is None:
                    continue  # no proof of when its levels were set: nothing to catch up
                hit = gaps.recover(armed, candles, since, self.index.peak(armed.path),
                                   levels_since)
                if hit is not None:
                    self.index.disarm(armed.path)
                    self.metrics.marks.labels(gaps.ORIGIN).inc()
                    log.info("gap recovery fires", extra={
                        "path": armed.path, "price": str(hit.tick.price),
                        "candle": hit.tick.time_ms})
                    self.marker.submit(hit, time.monotonic())
        except Exception:
            self.metrics.exchange_errors.labels(f"{venue}-{market}", "gap").inc()
            log.exception("gap recovery failed", extra={"symbol": symbol, "since": since})
        finally:
            for tick, received in self.recovering.pop(key, []):
                self.on_tick(tick, received)

    async def heartbeat_forever(self, interval: float) -> None:
        """Persist, per market, when its feed last had a tick (gap recovery after a restart)."""
        written: dict[tuple[str, str], dict[str, int]] = {}
        while True:
            await asyncio.sleep(interval)
            await self.write_heartbeats(written)

    async def write_heartbeats(self, written: dict[tuple[str, str], dict[str, int]]) -> None:
        """Write each market's last tick time per wanted symbol if it moved since `written`."""
        latest: dict[tuple[str, str], dict[str, int]] = {}
        for venue, symbol_type, symbol in self.index.markets():
            seen = self.last_seen.get((venue, symbol_type, symbol))
            if seen is not None and (venue, symbol_type) in self.feeds:
                latest.setdefault((venue, symbol_type), {})[symbol] = seen
        for key, symbols in latest.items():
            if written.get(key) == symbols:
                continue
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self._write_heartbeat, key, symbols)
                written[key] = symbols
            except Exception:
                log.exception("heartbeat not written", extra={"market": "-".join(key)})

    def _heartbeat_path(self, key: tuple[str, str]) -> str:
        return f"workerState/{key[0]}-{key[1]}-{self.settings.shard_index}"

    def _write_heartbeat(self, key: tuple[str, str], seen: dict[str, int]) -> None:
        self.database.set(self._heartbeat_path(key),
                          {"lastTickMs": max(seen.values()), "symbols": seen,
                           "workerId": self.settings.worker_id,
                           "shardCount": self.settings.shard_count})

    def _read_heartbeats(self) -> None:
        for key in self.feeds:
            symbols = (self.database.read(self._heartbeat_path(key)) or {}).get("symbols")
            if not isinstance(symbols, dict):
                continue  # no symbol was being watched: nothing has a gap
            for symbol, seen in symbols.items():
                if isinstance(symbol, str) and isinstance(seen, int):
                    self.resume_from[(*key, symbol)] = seen

    def unique_feeds(self) -> list[Feed]:
        """Return each feed once (one feed may serve several markets)."""
        return list({id(feed): feed for feed in self.feeds.values()}.values())

    def held_markets(self) -> set[Market]:
        """Return the markets something needs the prices of now.

        Whatever is armed in the index (levels, every open perpetual at its
        liquidation price: funding; market orders and manual closes waiting for
        a price; trailing stops), marks in flight, and gaps being recovered.
        """
        return self.index.markets() | self.marker.marking() | self.recovering.keys()

    def update_subscriptions(self) -> None:
        """Subscribe each feed to the listed symbols held now or lingering after.

        A symbol the venue has not answered about yet waits for its answer
        (which calls this again); one it does not list is refused. The feeds are
        told at the pace their venues allow (`worker/subscriptions.py`).
        """
        held = self.held_markets()
        wanted = self.subscriptions.wanted(held)
        carried: dict[str, set[str]] = {}
        for venue, symbol_type, symbol in wanted:
            feed = self.feeds.get((venue, symbol_type))
            if feed is None:
                continue
            listed = self.listings.listed((venue, symbol_type, symbol))
            if listed is False:
                self.refuse_unlisted(venue, symbol_type, symbol)
            elif listed:
                carried.setdefault(feed.name, set()).add(symbol)
        for market in [m for m in self.last_seen if m not in wanted]:
            del self.last_seen[market]
        self.subscriptions.push(carried, polling=bool(self.marker.marking()))

    def refuse_unlisted(self, venue: str, symbol_type: str, symbol: str) -> None:
        """Reject the armed triggers on a symbol the venue does not list (never subscribed)."""
        for armed in self.index.armed_on((venue, symbol_type, symbol)):
            if armed.kind == TRIGGER:
                self.index.disarm(armed.path)
                self.metrics.invalid_documents.labels("tradeTriggers",
                                                      Reason.UNLISTED_SYMBOL).inc()
                self.marker.reject(armed.path, armed.uid, armed.doc_id, Reason.UNLISTED_SYMBOL,
                                   f"{venue} does not list {symbol_type} {symbol}")
            elif armed.path not in self._unlisted_positions:
                # A position cannot be refused: it waits, unsubscribed, counted once.
                self._unlisted_positions.add(armed.path)
                self.metrics.invalid_documents.labels("openPositions",
                                                      Reason.UNLISTED_SYMBOL).inc()
                log.warning("position on a symbol the venue does not list",
                            extra={"path": armed.path, "symbol": symbol})

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
        self._http = httpx.AsyncClient(timeout=10)
        self.listings.client = self._http
        await asyncio.get_running_loop().run_in_executor(None, self._read_heartbeats)
        for feed in self.unique_feeds():
            feed.start()
        await self.watcher.resync()  # the slow path, before listening
        self.watcher.start_listeners()
        resync = asyncio.create_task(self.watcher.resync_forever(
            self.settings.resync_seconds, self.settings.full_resync_seconds))
        peaks = asyncio.create_task(self.marker.persist_peaks_forever(
            self.settings.peak_persist_seconds))
        heartbeats = asyncio.create_task(self.heartbeat_forever(
            self.settings.heartbeat_seconds))
        log.info("worker running", extra={
            "armed": len(self.index), "workerId": self.settings.worker_id,
            "shard": f"{self.settings.shard_index}/{self.settings.shard_count}"})
        await self.stopping.wait()
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        log.info("worker stopping", extra={"graceSeconds": self.settings.stop_grace_seconds})
        self.marker.stopping = True  # no new marks: what is left stays armed in Firestore
        for task in (resync, peaks, heartbeats):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.watcher.stop()
        self.subscriptions.stop()
        # Each step gets a share of the grace period; Firestore or the exchange being
        # slow costs the step, never the deadline.
        await _within(self.marker.persist_peaks(), deadline, 0.25, "persist peaks")
        await _within(self.write_heartbeats({}), deadline, 0.25, "write heartbeats")
        await _within(asyncio.gather(*(feed.stop() for feed in self.unique_feeds())),
                      deadline, 0.25, "stop feeds")
        await _within(self._http.aclose(), deadline, 0.1, "close http")
        left = await self.marker.drain(timeout=deadline - time.monotonic() - 0.5)
        await _within(runner.cleanup(), deadline, 1.0, "stop serving")
        log.info("worker stopped", extra={"abandonedMarks": left})


async def _within(step: Awaitable[object], deadline: float, share: float, name: str) -> None:
    """Run one stop step for at most `share` of the time left before `deadline`."""
    budget = max(0.0, (deadline - time.monotonic()) * share)
    try:
        await asyncio.wait_for(step, timeout=budget)
    except TimeoutError:
        log.warning("stop step cut short", extra={"step": name, "seconds": round(budget, 2)})
    except Exception:
        log.exception("stop step failed", extra={"step": name})


async def main() -> None:
    """Run the worker with settings from the environment; SIGTERM and SIGINT stop it."""
    configure_logging()
    worker = Worker(Settings.from_env())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stopping.set)
    await worker.run()


def run() -> None:
    """Run the worker, then exit at once, whatever threads are still blocked.

    A thread waiting on Firestore (a mark on a locked document, a transaction
    retrying for up to a minute) cannot be interrupted, and Python would wait
    for it at exit, past Cloud Run's 10 s. What such a thread does not finish
    is safe to leave: every write is one idempotent transaction.
    """
    code = 0
    try:
        asyncio.run(main())
    except BaseException:
        log.exception("worker failed")
        code = 1
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
