"""KuCoin connection managers (spot and futures) on the `websockets` library.

`KucoinFeed` is the manager of one market: it spreads the desired symbols
over as many `KucoinConnection`s as the per-connection topic limit needs.
Each connection gets a token from `bullet-public` (cached, retried with
backoff, honouring 429), waits for `welcome`, pings every `pingInterval`,
treats a missing pong or a silent socket as dead, reconnects with jittered
backoff (reset after a healthy connection) and resubscribes everything.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from cogmora_core.model import Tick
from worker.metrics import Metrics
from worker.venues.base import (
    BackgroundLoop,
    FeedDead,
    FrameError,
    Funding,
    FundingHandler,
    SendPacer,
    SubscribedHandler,
    SubscriptionLimits,
    TickHandler,
    backoff,
    serve_together,
)
from worker.venues.kucoin.protocol import (
    Control,
    parse_frame,
    ping_message,
    subscribe_messages,
    symbols_of,
)

log = logging.getLogger(__name__)


class TokenRejected(FeedDead):
    """The server refused the token: fetch a new one."""


@dataclass(frozen=True)
class Instance:
    """A token and the instance server to use it on."""

    token: str
    endpoint: str
    ping_interval: float
    ping_timeout: float
    fetched_at: float


class TokenSource:
    """Tokens from `POST {api}/api/v1/bullet-public`, cached until rejected or old."""

    def __init__(self, api: str, feed: str, metrics: Metrics, max_age: float = 23 * 3600,
                 initial_delay: float = 0.5, max_delay: float = 60.0) -> None:
        self.api = api.rstrip("/")
        self.feed = feed
        self.metrics = metrics
        self.max_age = max_age
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self._cached: Instance | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the cached token (the server refused it)."""
        self._cached = None

    async def get(self) -> Instance:
        """Return a usable token, fetching one (with retries) when needed."""
        async with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached.fetched_at < self.max_age:
                return cached
            self._cached = await self._fetch()
            return self._cached

    async def _fetch(self) -> Instance:
        delays = backoff(self.initial_delay, self.max_delay)
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                try:
                    response = await client.post(f"{self.api}/api/v1/bullet-public")
                    if response.status_code == 200:
                        instance = self._parse(response.json())
                        self.metrics.token_requests.labels(self.feed, "ok").inc()
                        return instance
                    outcome = str(response.status_code)
                    wait = next(delays)
                    if response.status_code == 429:
                        # Over the public weight budget: wait at least the window's rest.
                        retry_after = response.headers.get("Retry-After", "")
                        wait = max(wait, float(retry_after) if retry_after.isdigit() else 0.0,
                                   self.initial_delay * 4)
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                    outcome, wait = type(error).__name__, next(delays)
                self.metrics.token_requests.labels(self.feed, outcome).inc()
                log.warning("token request failed, retrying",
                            extra={"feed": self.feed, "outcome": outcome, "wait": wait})
                await asyncio.sleep(wait)

    @staticmethod
    def _parse(body: dict[str, Any]) -> Instance:
        if body.get("code") != "200000":
            raise ValueError(f"bullet-public answered code {body.get('code')!r}")
        data = body["data"]
        server = data["instanceServers"][0]
        return Instance(
            token=str(data["token"]),
            endpoint=str(server["endpoint"]),
            ping_interval=float(server["pingInterval"]) / 1000,
            ping_timeout=float(server["pingTimeout"]) / 1000,
            fetched_at=time.monotonic(),
        )


class KucoinConnection(BackgroundLoop):
    """One WebSocket to one KuCoin market, keeping its share of the symbols subscribed."""

    def __init__(self, market: str, name: str, tokens: TokenSource, on_tick: TickHandler,
                 metrics: Metrics, on_funding: FundingHandler | None = None,
                 on_subscribed: SubscribedHandler | None = None, welcome_timeout: float = 5.0,
                 reconnect_initial: float = 0.2, reconnect_max: float = 30.0,
                 resubscribe_delay: float = 1.0, limits: SubscriptionLimits | None = None
                 ) -> None:
        self.market = market
        #: The venue's limits on control messages (None: not paced, for tests).
        self.limits = limits
        self.name = name
        self.tokens = tokens
        self.on_tick = on_tick
        self.on_funding = on_funding
        self.on_subscribed = on_subscribed
        self.metrics = metrics
        self.welcome_timeout = welcome_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.resubscribe_delay = resubscribe_delay
        self.desired: set[str] = set()
        self.subscribed: set[str] = set()
        self.rejected: dict[str, str] = {}
        self.connected = False
        self._pending: dict[str, tuple[str, list[str]]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._pong = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._welcomed = False
        self._pacer: SendPacer | None = None

    def update_desired(self, symbols: set[str]) -> None:
        """Set the symbols this connection should carry; (un)subscribe without reconnecting."""
        self.desired = set(symbols)
        for symbol in list(self.rejected):
            if symbol not in self.desired:
                del self.rejected[symbol]
        self._changed.set()

    async def connect_and_serve(self) -> None:
        """Get a token, connect, wait for the welcome and serve the socket."""
        self._welcomed = False
        instance = await self.tokens.get()
        url = f"{instance.endpoint}?" + urlencode(
            {"token": instance.token, "connectId": uuid.uuid4().hex})
        async with websockets.connect(url, ping_interval=None, open_timeout=10,
                                      close_timeout=2, max_size=2**22) as ws:
            self._ws = ws
            await self._await_welcome(ws)
            self._welcomed = True
            self.connected = True
            await self._serve(ws, instance)

    def handled(self, error: Exception) -> bool:
        """Drop a token the server refused (a new one is fetched on reconnecting)."""
        if not isinstance(error, TokenRejected):
            return False
        self.tokens.invalidate()
        log.warning("token rejected", extra={"feed": self.name, "error": str(error)})
        return True

    def disconnected(self) -> None:
        """Forget the connection's subscriptions: the next one subscribes everything again."""
        self.connected = False
        self._ws = None
        self.subscribed.clear()
        self._pending.clear()
        self.metrics.subscribed.labels(self.name).set(0)

    def was_healthy(self, opened: float) -> bool:
        """Return whether the server welcomed the connection (the backoff starts over)."""
        return self._welcomed

    async def _await_welcome(self, ws: ClientConnection) -> None:
        deadline = time.monotonic() + self.welcome_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FeedDead("no welcome")
            raw = await asyncio.wait_for(ws.recv(), timeout=remaining)
            try:
                frame = parse_frame(raw, self.market)
            except FrameError as error:
                self.metrics.frames_rejected.labels(self.name, error.reason).inc()
                continue
            if isinstance(frame, Control) and frame.type == "welcome":
                return
            if isinstance(frame, Control) and frame.type == "error":
                self._on_error(frame)

    async def _serve(self, ws: ClientConnection, instance: Instance) -> None:
        self._changed.set()  # resubscribe everything on a new connection, at the venue's pace
        self._pacer = SendPacer(self.limits) if self.limits is not None else None
        await serve_together(
            asyncio.create_task(self._read(ws, instance)),
            asyncio.create_task(self._ping(ws, instance)),
            asyncio.create_task(self._sync_subscriptions(ws)),
            asyncio.create_task(self._expire(instance)),
        )

    async def _read(self, ws: ClientConnection, instance: Instance) -> None:
        silence = instance.ping_interval + instance.ping_timeout
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=silence)
            except TimeoutError:
                raise FeedDead(f"silent for {silence} s") from None
            try:
                frame = parse_frame(raw, self.market)
            except FrameError as error:
                self.metrics.frames_rejected.labels(self.name, error.reason).inc()
                log.info("frame dropped", extra={"feed": self.name, "reason": error.reason})
                continue
            if isinstance(frame, Tick):
                self.metrics.ticks.labels(self.name).inc()
                self.deliver(self.on_tick, frame)
            elif isinstance(frame, Funding):
                if self.on_funding is not None:
                    self.deliver(self.on_funding, frame)
            else:
                self._on_control(frame)

    def _on_control(self, frame: Control) -> None:
        if frame.type == "pong":
            self._pong.set()
        elif frame.type == "ack":
            pending = self._pending.pop(frame.id, None)
            if pending is not None:
                op, symbols = pending
                if op == "subscribe":
                    self.subscribed.update(symbols)
                    if self.on_subscribed is not None:
                        self.deliver(self.on_subscribed, symbols)
                elif op == "unsubscribe":
                    self.subscribed.difference_update(symbols)
                self.metrics.subscribed.labels(self.name).set(len(self.subscribed))
        elif frame.type == "error":
            self._on_error(frame)

    def _on_error(self, frame: Control) -> None:
        self.metrics.exchange_errors.labels(self.name, str(frame.code)).inc()
        log.warning("exchange error frame",
                    extra={"feed": self.name, "code": frame.code, "data": str(frame.data)[:200]})
        pending = self._pending.pop(frame.id, None)
        if frame.code == 401:
            raise TokenRejected(str(frame.data))
        if pending is None or pending[0].startswith("funding"):
            return  # funding topics are best effort: never stop the tickers for them
        op, symbols = pending
        if frame.code in (400, 404, 406) and op == "subscribe":
            for symbol in symbols:  # the exchange does not know it: stop asking
                self.rejected[symbol] = f"{frame.code} {frame.data}"
        else:  # 509 limits, 500 busy: ask again after a pause
            asyncio.get_running_loop().call_later(self.resubscribe_delay, self._changed.set)

    async def _expire(self, instance: Instance) -> None:
        """Reconnect with a new token before the server drops the old one (after ~24 h)."""
        age = time.monotonic() - instance.fetched_at
        await asyncio.sleep(max(0.0, self.tokens.max_age - age))
        self.tokens.invalidate()
        raise FeedDead("token expired")

    async def _ping(self, ws: ClientConnection, instance: Instance) -> None:
        while True:
            await asyncio.sleep(instance.ping_interval)
            self._pong.clear()
            await ws.send(_dumps(ping_message(next(self._ids))))
            try:
                await asyncio.wait_for(self._pong.wait(), timeout=instance.ping_timeout)
            except TimeoutError:
                raise FeedDead("no pong") from None

    async def _sync_subscriptions(self, ws: ClientConnection) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            in_flight = {s for op, symbols in self._pending.values() for s in symbols}
            wanted = self.desired - set(self.rejected)
            add = sorted(wanted - self.subscribed - in_flight)
            remove = sorted(self.subscribed - wanted - in_flight)
            for op, symbols in (("unsubscribe", remove), ("subscribe", add)):
                if not symbols:
                    continue
                for message in subscribe_messages(self.market, symbols, op, self._ids):
                    self._pending[str(message["id"])] = (op, symbols_of(message))
                    await self._send(ws, message)
                if self.on_funding is None:
                    continue
                for message in subscribe_messages(self.market, symbols, op, self._ids,
                                                  funding=True):
                    self._pending[str(message["id"])] = (f"funding-{op}", symbols_of(message))
                    await self._send(ws, message)

    async def _send(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        if self._pacer is None:
            await ws.send(_dumps(message))
        else:
            await self._pacer.send(ws, _dumps(message))


class KucoinFeed:
    """The manager of one KuCoin market: symbols spread over connections within the limit."""

    def __init__(self, market: str, api: str, on_tick: TickHandler, metrics: Metrics,
                 topic_limit: int = 300, on_funding: FundingHandler | None = None,
                 on_subscribed: SubscribedHandler | None = None,
                 limits: SubscriptionLimits | None = None,
                 **connection_options: float) -> None:
        self.market = market
        #: Each connection's pace for control messages (the adapter's limits).
        self.limits = limits
        self.name = f"kucoin-{market}"
        self.on_tick = on_tick
        self.on_funding = on_funding if market == "futures" else None
        self.on_subscribed = on_subscribed
        # A futures symbol takes two topics when funding is followed (ticker + funding).
        topic_limit = topic_limit // 2 if self.on_funding is not None else topic_limit
        self.metrics = metrics
        self.topic_limit = topic_limit
        self.tokens = TokenSource(api, self.name, metrics)
        self.connection_options = connection_options
        self.connections: list[KucoinConnection] = []
        self._started = False

    def start(self) -> None:
        """Start every connection (and those opened later)."""
        self._started = True
        for connection in self.connections:
            connection.start()

    async def stop(self) -> None:
        """Stop every connection."""
        await asyncio.gather(*(c.stop() for c in self.connections))

    @property
    def healthy(self) -> bool:
        """Return whether every connection that carries symbols is connected."""
        return all(c.connected for c in self.connections if c.desired)

    def subscribed(self) -> set[str]:
        """Return the symbols subscribed across connections."""
        return set().union(*(c.subscribed for c in self.connections)) if self.connections else set()

    def update_desired(self, symbols: set[str]) -> None:
        """Carry exactly `symbols`, keeping each where it is and filling connections in order."""
        unplaced = set(symbols)
        for connection in self.connections:
            keep = connection.desired & unplaced
            unplaced -= keep
            room = self.topic_limit - len(keep)
            extra = set(sorted(unplaced)[:max(0, room)])
            unplaced -= extra
            connection.update_desired(keep | extra)
        while unplaced:
            batch = set(sorted(unplaced)[: self.topic_limit])
            unplaced -= batch
            connection = KucoinConnection(
                self.market, f"{self.name}-{len(self.connections)}", self.tokens, self.on_tick,
                self.metrics, self.on_funding, self.on_subscribed, limits=self.limits,
                **self.connection_options)
            connection.update_desired(batch)
            self.connections.append(connection)
            if self._started:
                connection.start()


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()
