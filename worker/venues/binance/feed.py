"""Binance connection managers (spot and USDⓈ-M futures) on the `websockets` library.

`BinanceFeed` is the manager of one market (spot and futures are different
hosts). It spreads the market's streams over as many `BinanceConnection`s
as Binance's streams-per-connection limit needs (spot 1024, futures 200),
each opened once it has a stream to carry. On futures, bookTicker is served
on the `/public` route and markPrice on the `/market` route: a stream sent to
the other route subscribes but never pushes data, so each route has its own
connections.

A connection subscribes with ids and counts a stream as subscribed when the
server confirms it (`{"result": null, "id": n}`); it paces its control
messages under Binance's incoming-message limit (spot 5 a second, futures
10, pings and pongs included), reconnects before the server's 24-hour cut
(and at once on `serverShutdown`), with jittered backoff after a failure,
and subscribes everything again. The server pings (spot every 20 s, futures
every 3 min): `websockets` answers, and pings in turn so that a dead socket
is noticed within `ping_interval + ping_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from cogmora_core.model import Tick
from cogmora_core.venues import SymbolType
from worker.metrics import Metrics
from worker.venues.base import (
    FeedDead,
    FrameError,
    FundingClock,
    FundingHandler,
    MarkPrice,
    MarkPriceHandler,
    StreamConnection,
    SubscribedHandler,
    TickHandler,
    serve_together,
)
from worker.venues.binance.protocol import (
    Ack,
    ErrorFrame,
    Shutdown,
    Subscriptions,
    book_stream,
    book_symbols,
    mark_stream,
    parse_frame,
)

log = logging.getLogger(__name__)

#: Streams per connection, as Binance documents them.
STREAM_LIMITS = {SymbolType.SPOT: 1024, SymbolType.FUTURES: 200}
#: Seconds between two control messages on one connection: under 5 a second on
#: spot and 10 on futures, with room for the pings and pongs that count too.
MESSAGE_INTERVALS = {SymbolType.SPOT: 0.3, SymbolType.FUTURES: 0.15}
#: Binance cuts a connection after 24 hours: reconnect a little before.
MAX_AGE = 23.5 * 3600


class BinanceConnection(StreamConnection):
    """One WebSocket to one Binance route, keeping its share of the streams subscribed."""

    def __init__(self, url: str, market: SymbolType, name: str, metrics: Metrics,
                 on_tick: TickHandler, on_mark_price: MarkPriceHandler | None = None,
                 on_subscribed: SubscribedHandler | None = None,
                 message_interval: float = 0.3, max_age: float = MAX_AGE,
                 reconnect_initial: float = 0.2, reconnect_max: float = 30.0,
                 ping_interval: float = 20.0, ping_timeout: float = 20.0,
                 open_timeout: float = 10.0, stable_after: float = 10.0,
                 retry_after: float = 1.0) -> None:
        self.url = url
        self.market = market
        self.name = name
        self.metrics = metrics
        self.on_tick = on_tick
        self.on_mark_price = on_mark_price
        self.on_subscribed = on_subscribed
        self.message_interval = message_interval
        self.max_age = max_age
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        #: A connection that lived this long (or delivered data) resets the backoff.
        self.stable_after = stable_after
        #: Seconds before streams refused in a batch are asked for again, one by one.
        self.retry_after = retry_after
        self.subscriptions = Subscriptions()
        self.connected = False
        self._delivered = False
        self._last_sent = 0.0
        self._changed = asyncio.Event()

    @property
    def desired(self) -> set[str]:
        """Return the streams this connection should carry."""
        return self.subscriptions.wanted

    def update_desired(self, streams: set[str]) -> None:
        """Carry exactly `streams`; (un)subscribe without reconnecting."""
        self.subscriptions.want(streams)
        self._changed.set()

    def wanted(self) -> bool:
        """Return whether a stream is wanted on this route."""
        return bool(self.subscriptions.wanted)

    def forget(self) -> None:
        """Forget the connection's streams, acknowledged or not."""
        self.subscriptions.reset()

    async def serve(self, ws: ClientConnection) -> None:
        """Read the socket, keep its streams in step, reconnect before Binance cuts it."""
        await serve_together(asyncio.create_task(self._read(ws)),
                             asyncio.create_task(self._sync(ws)),
                             asyncio.create_task(self._expire()))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                frame = parse_frame(raw, self.market)
            except FrameError as error:
                self.metrics.frames_rejected.labels(self.name, error.reason).inc()
                log.info("frame dropped", extra={"feed": self.name, "reason": str(error)[:200]})
                continue
            if isinstance(frame, Tick):
                self._delivered = True
                self.metrics.ticks.labels(self.name).inc()
                self.deliver(self.on_tick, frame)
            elif isinstance(frame, MarkPrice):
                self._delivered = True
                if self.on_mark_price is not None:
                    self.deliver(self.on_mark_price, frame)
            elif isinstance(frame, Ack):
                if self.subscriptions.acknowledged(frame.id) is not None:
                    self.metrics.subscribed.labels(self.name).set(
                        len(self.subscriptions.confirmed))
                    self._changed.set()  # what waited on this request can go now
            elif isinstance(frame, ErrorFrame):
                self._on_error(frame)
            elif isinstance(frame, Shutdown):
                raise FeedDead("server shutting down")
        raise FeedDead("connection closed")

    def _on_error(self, frame: ErrorFrame) -> None:
        self.metrics.exchange_errors.labels(self.name, frame.code or "unknown").inc()
        log.warning("exchange error frame", extra={
            "feed": self.name, "code": frame.code, "data": frame.message, "id": frame.id})
        request = self.subscriptions.refuse(frame.id)
        if request is not None and len(request[1]) > 1:
            # One bad stream refuses its whole message: ask again one by one.
            asyncio.get_running_loop().call_later(self.retry_after, self._changed.set)

    async def _sync(self, ws: ClientConnection) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            for message in self.subscriptions.changes():
                if message["method"] == "SUBSCRIBE" and self.on_subscribed is not None:
                    symbols = book_symbols(message["params"])
                    if symbols:  # before sending: no tick of these can arrive ahead of it
                        self.deliver(self.on_subscribed, symbols)
                await self._pace()
                await ws.send(orjson.dumps(message).decode())

    async def _pace(self) -> None:
        """Wait until a control message may be sent without passing the message limit."""
        wait = self._last_sent + self.message_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_sent = time.monotonic()

    async def _expire(self) -> None:
        """Reconnect before the server cuts the connection at 24 hours."""
        await asyncio.sleep(self.max_age)
        raise FeedDead("connection lifetime reached")


class StreamPool:
    """One route's streams spread over connections, at most `limit` streams each."""

    def __init__(self, limit: int, connect: Callable[[int], BinanceConnection]) -> None:
        self.limit = limit
        self.connect = connect
        self.connections: list[BinanceConnection] = []
        self.started = False

    def place(self, streams: set[str]) -> None:
        """Carry exactly `streams`, keeping each where it is and filling connections in order."""
        unplaced = set(streams)
        for connection in self.connections:
            keep = connection.desired & unplaced
            unplaced -= keep
            extra = set(sorted(unplaced)[:max(0, self.limit - len(keep))])
            unplaced -= extra
            connection.update_desired(keep | extra)
        while unplaced:
            batch = set(sorted(unplaced)[:self.limit])
            unplaced -= batch
            connection = self.connect(len(self.connections))
            connection.update_desired(batch)
            self.connections.append(connection)
            if self.started:
                connection.start()

    def start(self) -> None:
        """Start every connection (and those opened later)."""
        self.started = True
        for connection in self.connections:
            connection.start()


class BinanceFeed:
    """The manager of one Binance market: bookTicker (and markPrice for perpetuals)."""

    def __init__(self, market: SymbolType, ws_base: str, on_tick: TickHandler, metrics: Metrics,
                 on_funding: FundingHandler | None = None,
                 on_mark_price: MarkPriceHandler | None = None,
                 on_subscribed: SubscribedHandler | None = None,
                 stream_limit: int | None = None, **connection_options: Any) -> None:
        self.market = market
        self.name = f"binance-{market}"
        self.on_funding = on_funding
        self.on_mark_price = on_mark_price
        #: Funding settlements seen in the markPrice streams (kept across reconnects).
        self.funding_clock = FundingClock()
        base = ws_base.rstrip("/")
        limit = stream_limit or STREAM_LIMITS[market]
        options = {"message_interval": MESSAGE_INTERVALS[market], **connection_options}

        def route(url: str, suffix: str, **handlers: Any) -> StreamPool:
            return StreamPool(limit, lambda n: BinanceConnection(
                url, market, f"{self.name}{suffix}-{n}", metrics, on_tick,
                **handlers, **options))

        if market is SymbolType.SPOT:
            self.books = route(f"{base}/stream", "", on_subscribed=on_subscribed)
            self.marks: StreamPool | None = None
        else:
            self.books = route(f"{base}/public/stream", "", on_subscribed=on_subscribed)
            follow = on_funding is not None or on_mark_price is not None
            self.marks = route(f"{base}/market/stream", "-mark",
                               on_mark_price=self._on_mark_price) if follow else None

    @property
    def pools(self) -> list[StreamPool]:
        """Return the stream pools of the market's routes."""
        return [self.books] if self.marks is None else [self.books, self.marks]

    @property
    def connections(self) -> list[BinanceConnection]:
        """Return every connection of every route."""
        return [c for pool in self.pools for c in pool.connections]

    @property
    def healthy(self) -> bool:
        """Return whether every connection that carries streams is connected."""
        return all(c.connected for c in self.connections if c.desired)

    def start(self) -> None:
        """Start connecting (once)."""
        for pool in self.pools:
            pool.start()

    async def stop(self) -> None:
        """Stop every connection."""
        await asyncio.gather(*(c.stop() for c in self.connections))

    def update_desired(self, symbols: set[str]) -> None:
        """Carry exactly `symbols`, (un)subscribing without reconnecting."""
        self.books.place({book_stream(s) for s in symbols})
        if self.marks is not None:
            self.marks.place({mark_stream(s) for s in symbols})

    def subscribed(self) -> set[str]:
        """Return the symbols whose bookTicker the server confirmed."""
        return set(book_symbols({s for c in self.books.connections
                                 for s in c.subscriptions.confirmed}))

    def _on_mark_price(self, mark: MarkPrice) -> None:
        if self.on_mark_price is not None:
            self.on_mark_price(mark)
        settled = self.funding_clock.observe(mark)
        if settled is not None and self.on_funding is not None:
            self.on_funding(settled)
