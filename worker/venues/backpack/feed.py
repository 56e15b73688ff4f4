"""The Backpack connection manager on the `websockets` library.

One `BackpackFeed` serves both Backpack markets (spot `BASE_USDC` and
perpetuals `BASE_USDC_PERP`) over one WebSocket, opened once a symbol is
desired: it subscribes
`bookTicker.<symbol>` for every desired symbol and `markPrice.<symbol>` for
perpetuals, changes subscriptions without reconnecting (Backpack sends no
acknowledgement, so a stream counts as subscribed once its message is sent),
reconnects with jittered backoff and subscribes everything again. The server
pings every 60 s and drops a client silent for 120 s: `websockets` answers
those pings itself, and pings the server in turn so that a dead socket is
noticed within `ping_interval + ping_timeout`.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from websockets.asyncio.client import ClientConnection

from cogmora_core.model import Tick
from worker.metrics import Metrics
from worker.venues.backpack.protocol import (
    BOOK_TICKER,
    MAX_STREAMS_PER_MESSAGE,
    ErrorFrame,
    parse_frame,
    streams_for,
    subscription_messages,
)
from worker.venues.base import (
    FeedDead,
    FrameError,
    FundingClock,
    FundingHandler,
    MarkPrice,
    MarkPriceHandler,
    SendPacer,
    StreamConnection,
    SubscribedHandler,
    SubscriptionLimits,
    TickHandler,
    serve_together,
)

log = logging.getLogger(__name__)
#: What Backpack allows for subscription messages on one connection (the adapter's
#: limits): changes are paced by them, and so are a reconnect's resubscriptions.
LIMITS = SubscriptionLimits(messages_per_second=5.0, burst=40, topics_per_symbol=2,
                            topics_per_message=MAX_STREAMS_PER_MESSAGE)


class BackpackFeed(StreamConnection):
    """The manager of Backpack's market data: one connection carrying every desired symbol."""

    def __init__(self, url: str, on_tick: TickHandler, metrics: Metrics,
                 on_mark_price: MarkPriceHandler | None = None,
                 on_funding: FundingHandler | None = None,
                 on_subscribed: SubscribedHandler | None = None, name: str = "backpack",
                 reconnect_initial: float = 0.2, reconnect_max: float = 30.0,
                 ping_interval: float = 20.0, ping_timeout: float = 20.0,
                 open_timeout: float = 10.0, stable_after: float = 10.0,
                 limits: SubscriptionLimits = LIMITS) -> None:
        self.url = url
        self.limits = limits
        self.name = name
        self.on_tick = on_tick
        self.on_mark_price = on_mark_price
        self.on_funding = on_funding
        #: Funding settlements seen in the markPrice streams (kept across reconnects).
        self.funding_clock = FundingClock()
        self.on_subscribed = on_subscribed
        self.metrics = metrics
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        #: A connection that lived this long (or delivered data) resets the backoff.
        self.stable_after = stable_after
        self.desired: set[str] = set()
        #: Streams subscribed on the current connection (sent; Backpack does not ack).
        self.streams: set[str] = set()
        self.connected = False
        self._delivered = False
        self._changed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        """Return whether the feed is connected, or has nothing to carry."""
        return self.connected or not self.desired

    def subscribed(self) -> set[str]:
        """Return the symbols whose bookTicker stream is subscribed."""
        return set(_book_symbols(list(self.streams)))

    def update_desired(self, symbols: set[str]) -> None:
        """Carry exactly `symbols` (spot and perpetuals); (un)subscribe without reconnecting."""
        self.desired = set(symbols)
        self._changed.set()

    def wanted(self) -> bool:
        """Return whether a symbol is desired (spot or perpetual)."""
        return bool(self.desired)

    def forget(self) -> None:
        """Forget the connection's streams (Backpack does not ack: what was sent)."""
        self.streams.clear()

    async def serve(self, ws: ClientConnection) -> None:
        """Read the socket and keep its subscriptions in step with `desired`."""
        await serve_together(asyncio.create_task(self._read(ws)),
                             asyncio.create_task(self._sync_subscriptions(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                frame = parse_frame(raw)
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
                settled = self.funding_clock.observe(frame)
                if settled is not None and self.on_funding is not None:
                    self.deliver(self.on_funding, settled)
            else:
                self._on_error(frame)
        raise FeedDead("connection closed")

    def _on_error(self, frame: ErrorFrame) -> None:
        self.metrics.exchange_errors.labels(self.name, frame.code or "unknown").inc()
        log.warning("exchange error frame",
                    extra={"feed": self.name, "code": frame.code, "data": frame.message})

    async def _sync_subscriptions(self, ws: ClientConnection) -> None:
        pacer = SendPacer(self.limits)  # a new connection: the venue's budget is whole again
        while True:
            await self._changed.wait()
            self._changed.clear()
            wanted = {stream for symbol in self.desired for stream in streams_for(symbol)}
            remove = sorted(self.streams - wanted)
            add = sorted(wanted - self.streams)
            for method, streams in (("UNSUBSCRIBE", remove), ("SUBSCRIBE", add)):
                for message in subscription_messages(method, streams):
                    if method == "SUBSCRIBE" and self.on_subscribed is not None:
                        # Before sending: no tick of these symbols can arrive ahead of it.
                        self.deliver(self.on_subscribed, _book_symbols(message["params"]))
                    await pacer.send(ws, orjson.dumps(message).decode())
                    if method == "SUBSCRIBE":
                        self.streams.update(message["params"])
                    else:
                        self.streams.difference_update(message["params"])
            self.metrics.subscribed.labels(self.name).set(len(self.subscribed()))


def _book_symbols(streams: list[str]) -> list[str]:
    prefix = BOOK_TICKER + "."
    return [s[len(prefix):] for s in streams if s.startswith(prefix)]
