"""What every venue has the same shape of: the adapter protocol and the connection plumbing.

A venue is one folder (`worker/venues/<venue>/`) whose `Adapter` subclasses
`VenueAdapter`: it builds the venue's feeds (the connection managers of its
markets), fetches its one-minute candles to catch up a gap, and says whether
it lists a symbol. `registry.py` registers every adapter; nothing outside a
venue's folder names the venue.

The venues differ in their protocols; they share how a frame is refused
(`FrameError`, its `reason` the metric label), what a funding settlement is
(`Funding`), how a connection is declared dead (`FeedDead`), the jittered
reconnect delays, the reconnect loop itself (`BackgroundLoop.run`), the tasks
that serve one socket together, handing data downstream without letting a
handler's bug take the feed down, and how a candle answer is read. Each
adapter declares what the venue allows for subscription changes
(`SubscriptionLimits`); the worker paces every venue's changes by it in one
place (`worker/subscriptions.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol, TypeVar

import httpx
import orjson
import websockets

from cogmora_backend.retry import backoff as retry_backoff
from cogmora_core.candles import MINUTE_MS, Candle
from cogmora_core.errors import InvalidInput, RetryableError
from cogmora_core.model import SymbolType, Tick
from cogmora_core.money import (
    MAX_MAGNITUDE,
    ZERO,
    parse_decimal_string,
    parse_number,
    writable_price,
)
from cogmora_core.venues import Venue
from worker.gaps import CandleError
from worker.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


class FrameError(InvalidInput):
    """A frame that cannot be used; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def json_object(raw: str | bytes) -> dict[str, Any]:
    """Return a frame's JSON object, or raise `FrameError` (invalid JSON, not an object)."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise FrameError("invalid_json", str(error)) from None
    if not isinstance(frame, dict):
        raise FrameError("not_an_object")
    return frame


def exchange_price(raw: object, name: str) -> Decimal | None:
    """Return an exchange's price string as a Decimal (None when absent), or raise.

    A price must be a decimal string that a document can hold exactly and
    positive (`writable_price`: at most 12 decimal places and 15 significant
    digits, below the range documents hold): anything else would be written
    rounded, to zero at worst, so it is refused here and never reaches a mark.
    """
    if raw is None:
        return None
    value = parse_decimal_string(raw)
    if value is None:
        raise FrameError("bad_price", f"{name} {raw!r}"[:80])
    if value <= ZERO:
        raise FrameError("bad_price", f"{name} {raw!r} is not positive"[:80])
    if value > MAX_MAGNITUDE:
        raise FrameError("bad_price", f"{name} {raw!r} is out of range"[:80])
    if not writable_price(value):
        raise FrameError("inexact_price", f"{name} {raw!r} cannot be written exactly"[:80])
    return value


@dataclass(frozen=True, slots=True)
class Funding:
    """A funding settlement of a perpetual: the rate applied at `funding_time_ms`.

    `mark_price` is set when the feed gives one (Backpack's markPrice); else the
    worker uses the symbol's last price.
    """

    symbol: str
    rate: Decimal
    funding_time_ms: int
    mark_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """A perpetual's mark price and its running funding, from a venue's mark price stream."""

    symbol: str
    mark_price: Decimal
    #: Funding rate of the current interval (a fraction: 0.0000125 = 0.00125 %); may be negative.
    funding_rate: Decimal
    #: Next funding time, milliseconds since the epoch.
    next_funding_ms: int
    #: Event time, milliseconds since the epoch.
    time_ms: int


class FundingClock:
    """Funding settlements read off a perpetual's mark price stream.

    For venues that publish no settlement frame (Backpack, Binance): their mark
    price stream carries the rate of the running interval and the next funding
    time. When a frame's next funding time has moved on and its event time is
    at or past the previous one, funding was settled at the previous one, at
    the last rate and mark price seen before it. A frame older than the last
    one seen is ignored; a schedule moved before its time came settles nothing.
    Settlements that fell while the worker was down are not seen (no history
    is fetched for funding).
    """

    def __init__(self) -> None:
        self._last: dict[str, MarkPrice] = {}

    def observe(self, mark: MarkPrice) -> Funding | None:
        """Take one markPrice; return the funding settled since the previous one, if any."""
        previous = self._last.get(mark.symbol)
        if previous is not None and mark.next_funding_ms < previous.next_funding_ms:
            return None  # out of order
        self._last[mark.symbol] = mark
        if (previous is None or mark.next_funding_ms == previous.next_funding_ms
                or mark.time_ms < previous.next_funding_ms):
            return None
        return Funding(symbol=mark.symbol, rate=previous.funding_rate,
                       funding_time_ms=previous.next_funding_ms,
                       mark_price=previous.mark_price)


class FeedDead(RetryableError):
    """The connection must be dropped and opened again."""


#: What a connection's life is expected to end with now and then.
EXPECTED_ENDINGS = (FeedDead, OSError, TimeoutError, websockets.WebSocketException)


def connection_ended(name: str, error: Exception, unexpected: Callable[[], None]) -> None:
    """Log why a connection ended; the caller reconnects whatever it was.

    Nothing raised during a connection's life ends its manager: an expected
    ending (a drop, a timeout, `FeedDead`) is a warning; anything else (a bug,
    a frame no parser foresaw) is logged with its traceback and counted through
    `unexpected`, and the connection is opened again after the usual backoff.
    """
    if isinstance(error, EXPECTED_ENDINGS):
        log.warning("feed connection lost", extra={"feed": name, "error": repr(error)})
        return
    log.error("feed connection failed unexpectedly", exc_info=error,
              extra={"feed": name, "error": repr(error)})
    unexpected()


def backoff(initial: float, maximum: float) -> Iterator[float]:
    """Yield reconnect delays: doubling up to `maximum`, each uniform in [d/2, d]."""
    return retry_backoff(initial=initial, maximum=maximum, jitter=0.5)


class BackgroundLoop:
    """A connection whose `run` loop is started once in the background and cancelled on stop.

    `run` is the reconnect loop every venue shares: wait until something is
    worth a connection (`ready`), connect and serve (`connect_and_serve`,
    the venue's part), log why it ended, clean up (`disconnected`), reset the
    backoff when the connection was healthy (`was_healthy`), count the
    reconnect and wait the next jittered delay.
    """

    name: str
    metrics: Metrics
    reconnect_initial: float = 0.2
    reconnect_max: float = 30.0
    _task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Connect, serve and reconnect until cancelled."""
        delays = backoff(self.reconnect_initial, self.reconnect_max)
        while True:
            await self.ready()
            opened = time.monotonic()
            try:
                await self.connect_and_serve()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not self.handled(error):
                    connection_ended(self.name, error, self.metrics.exchange_errors.labels(
                        self.name, "unexpected").inc)
            finally:
                self.disconnected()
            if self.was_healthy(opened):
                delays = backoff(self.reconnect_initial, self.reconnect_max)
            self.metrics.reconnects.labels(self.name).inc()
            await asyncio.sleep(next(delays))

    async def ready(self) -> None:
        """Wait until a connection is worth opening (default: at once)."""

    async def connect_and_serve(self) -> None:
        """Open one connection and serve it until it ends (by raising)."""
        raise NotImplementedError

    def handled(self, error: Exception) -> bool:
        """Return whether `error` ending a connection was dealt with here (default: no)."""
        return False

    def disconnected(self) -> None:
        """Forget the state of the connection that ended."""

    def was_healthy(self, opened: float) -> bool:
        """Return whether the connection opened at `opened` (monotonic) was a healthy one."""
        return False

    def start(self) -> None:
        """Start the loop in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        """Stop the loop and close the socket."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def deliver(self, handler: Callable[[T], None], item: T) -> None:
        """Hand `item` to `handler`; a bug downstream is logged, never raised into the feed."""
        try:
            handler(item)
        except Exception:
            log.exception("feed handler failed",
                          extra={"feed": self.name, "item": type(item).__name__})


class StreamConnection(BackgroundLoop):
    """A plain WebSocket of streams (Backpack, Binance): connect when something is wanted.

    The shared part of such a connection: wait until a stream is wanted
    (`wanted`), open the socket with its keep-alive settings, serve it
    (`serve`, the venue's part), forget its streams when it ends (`forget`),
    and call it healthy when it delivered data or lived `stable_after` s.
    """

    url: str
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    open_timeout: float = 10.0
    #: A connection that lived this long (or delivered data) resets the backoff.
    stable_after: float = 10.0
    connected: bool = False
    #: Set when data arrived on the current connection.
    _delivered: bool = False
    #: Set when what the connection should carry changed.
    _changed: asyncio.Event

    def wanted(self) -> bool:
        """Return whether anything is wanted on this connection."""
        raise NotImplementedError

    async def serve(self, ws: websockets.ClientConnection) -> None:
        """Serve an open socket until it ends (by raising)."""
        raise NotImplementedError

    def forget(self) -> None:
        """Forget the streams of the connection that ended."""

    async def ready(self) -> None:
        """Wait until something is wanted: no connection while nothing is armed on it."""
        while not self.wanted():
            self._changed.clear()
            await self._changed.wait()

    async def connect_and_serve(self) -> None:
        """Connect and serve the socket."""
        self._delivered = False
        async with websockets.connect(
            self.url, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            open_timeout=self.open_timeout, close_timeout=2, max_size=2**22,
        ) as ws:
            self.connected = True
            log.info("feed connected", extra={"feed": self.name})
            self._changed.set()  # subscribe everything on a new connection
            await self.serve(ws)

    def disconnected(self) -> None:
        """Forget the connection's streams: the next one subscribes everything again."""
        self.connected = False
        self.forget()
        self.metrics.subscribed.labels(self.name).set(0)

    def was_healthy(self, opened: float) -> bool:
        """Return whether the connection delivered data or lived `stable_after` seconds."""
        return self._delivered or time.monotonic() - opened >= self.stable_after


async def serve_together(*tasks: asyncio.Task[None]) -> None:
    """Wait until one of a socket's tasks fails, raise its error and cancel the rest.

    A task that returns normally also ends the connection (`FeedDead`).
    """
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
        raise FeedDead("connection tasks ended")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def candle(start_ms: int, opened: Decimal, high: Decimal, low: Decimal, closed: Decimal,
           row: object) -> Candle:
    """Return a checked candle, or raise `CandleError` for prices no candle can have."""
    if not (low <= opened <= high and low <= closed <= high and low > 0):
        raise CandleError(f"row {str(row)[:100]} is not a candle")
    return Candle(start_ms, opened, high, low, closed)


def candle_number(value: object) -> Decimal | None:
    """Return a candle value: a decimal string, or a JSON number."""
    return parse_decimal_string(value) if isinstance(value, str) else parse_number(value)


def response_json(response: httpx.Response) -> object:
    """Return a candle answer's JSON, or raise `CandleError`."""
    if response.status_code != 200:
        raise CandleError(f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        return response.json()
    except ValueError:
        raise CandleError(f"not JSON: {response.text[:200]}") from None


def raise_if_busy(response: httpx.Response) -> None:
    """Raise when the venue is busy or failing (429, 5xx): its answer says nothing."""
    if response.status_code >= 500 or response.status_code == 429:
        raise httpx.HTTPStatusError("venue busy", request=response.request, response=response)


def first_minute(start_ms: int) -> int:
    """Return the start of the minute `start_ms` falls in."""
    return start_ms - start_ms % MINUTE_MS


#: What a feed hands downstream.
TickHandler = Callable[[Tick], None]
FundingHandler = Callable[["Funding"], None]
MarkPriceHandler = Callable[["MarkPrice"], None]
#: Called with the symbols whose live data is about to flow (gap recovery).
SubscribedHandler = Callable[[list[str]], None]


class Feed(Protocol):
    """A venue's connection manager for one or more of its markets."""

    name: str

    @property
    def healthy(self) -> bool:
        """Return whether every connection that carries symbols is connected."""

    def start(self) -> None:
        """Start connecting (once)."""

    async def stop(self) -> None:
        """Stop every connection."""

    def update_desired(self, symbols: set[str]) -> None:
        """Carry exactly `symbols`, (un)subscribing without reconnecting."""

    def subscribed(self) -> set[str]:
        """Return the symbols subscribed now."""


@dataclass(frozen=True, slots=True)
class SubscriptionLimits:
    """What a venue allows for subscription changes, per connection (each adapter declares it).

    The worker sends a feed's changes no faster than this
    (`worker/subscriptions.py`): a token bucket of `burst` messages refilled at
    `messages_per_second`, times the connections the feed needs for its symbols
    (`symbols_per_connection`, 0 when one connection carries them all).
    """

    #: Control messages per second, sustained, on one connection.
    messages_per_second: float = 2.0
    #: Control messages that may go at once after a quiet spell.
    burst: int = 10
    #: Topics (streams) one symbol takes: e.g. a ticker and a funding topic.
    topics_per_symbol: int = 1
    #: Topics one (un)subscribe message may carry.
    topics_per_message: int = 1
    #: Symbols one connection carries (0: one connection carries every symbol).
    symbols_per_connection: int = 0

    def __post_init__(self) -> None:
        if (self.messages_per_second <= 0 or self.burst < 1 or self.topics_per_symbol < 1
                or self.topics_per_message < 1 or self.symbols_per_connection < 0
                or self.messages(1) > self.burst):
            raise ValueError(f"{self} are no limits")

    def messages(self, symbols: int) -> int:
        """Return the control messages that (un)subscribe `symbols` symbols."""
        return -(-symbols * self.topics_per_symbol // self.topics_per_message)

    def symbols_within(self, messages: float) -> int:
        """Return how many symbols whole `messages` messages can (un)subscribe."""
        return int(messages) * self.topics_per_message // self.topics_per_symbol

    def connections(self, symbols: int) -> int:
        """Return the connections `symbols` symbols need (at least one)."""
        if self.symbols_per_connection == 0:
            return 1
        return max(1, -(-symbols // self.symbols_per_connection))


class TokenBucket:
    """`capacity` tokens refilled at `rate` a second (pure: `now` is passed in).

    `resize` changes both (a feed that needs more connections may send more).
    """

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._at = now

    def available(self, now: float) -> float:
        """Return the tokens available at `now`."""
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
        return self._tokens

    def take(self, tokens: float, now: float) -> None:
        """Spend `tokens` (the caller checked they are available)."""
        self._tokens = self.available(now) - tokens

    def resize(self, rate: float, capacity: float, now: float) -> None:
        """Change the rate and capacity from `now` on (tokens gained keep, up to the capacity)."""
        available = self.available(now)
        self._tokens = min(capacity, available + max(0.0, capacity - self.capacity))
        self.rate, self.capacity = rate, capacity

    def ready_at(self, tokens: float, now: float) -> float:
        """Return when `tokens` (at most the capacity) will be available."""
        missing = min(tokens, self.capacity) - self.available(now)
        return now if missing <= 0 else now + missing / self.rate


class SendPacer:
    """One connection's control messages, no faster than its venue allows.

    A bucket of the venue's `SubscriptionLimits` (per connection): full when
    the connection opens (the venue counts per connection), so a reconnect
    that subscribes everything again sends `burst` messages at once and the
    rest at `messages_per_second`.
    """

    def __init__(self, limits: SubscriptionLimits, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.limits = limits
        self.clock = clock
        self.bucket = TokenBucket(limits.messages_per_second, limits.burst, clock())

    async def send(self, ws: Any, message: str) -> None:
        """Send `message` on `ws` once the bucket pays for it (waiting if it must)."""
        now = self.clock()
        ready = self.bucket.ready_at(1, now)
        if ready > now:
            await asyncio.sleep(ready - now)
        self.bucket.take(1, self.clock())
        await ws.send(message)


@dataclass(frozen=True, slots=True)
class FeedHandlers:
    """Where a venue's feeds hand what they read (bound to the venue by the worker).

    `on_subscribed` is called with a market and the symbols whose live data is
    about to flow (a (re)subscription): their gaps are recovered first.
    """

    on_tick: Callable[[Tick], None]
    on_funding: Callable[[Funding], None]
    on_subscribed: Callable[[SymbolType, list[str]], None]


class VenueAdapter(ABC):
    """One venue: its feeds, its candles for catching up gaps, its listings.

    Constructed from the environment (each adapter names its own variables
    and defaults); registered in `worker/venues/registry.py`.
    """

    venue: ClassVar[Venue]
    #: The markets the venue serves.
    markets: ClassVar[tuple[SymbolType, ...]] = (SymbolType.SPOT, SymbolType.FUTURES)
    #: What the venue allows for subscription changes (see `subscription_limits`).
    limits: ClassVar[SubscriptionLimits] = SubscriptionLimits()

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def setting(self, name: str, default: str) -> str:
        """Return the environment variable `name`, or `default` when unset or empty."""
        return self.environ.get(name) or default

    def subscription_limits(self, market: SymbolType) -> SubscriptionLimits:
        """Return what the venue allows for subscription changes in `market` (default: `limits`).

        A feed serving several markets is paced by the limits of the first.
        """
        return self.limits

    @abstractmethod
    def feeds(self, handlers: FeedHandlers, metrics: Metrics) -> dict[SymbolType, Feed]:
        """Return the feed of each market (one feed may serve several)."""

    @abstractmethod
    async def fetch_candles(self, client: httpx.AsyncClient, market: SymbolType, symbol: str,
                            start_ms: int, end_ms: int) -> list[Candle]:
        """Return the one-minute candles of `symbol` from `start_ms` to `end_ms`, oldest first.

        Raise `CandleError` when the venue's answer cannot be used.
        """

    @abstractmethod
    async def listed(self, client: httpx.AsyncClient, market: SymbolType, symbol: str) -> bool:
        """Return whether the venue lists `symbol` in `market` and trades it.

        Raise (e.g. `httpx.HTTPError`) when the venue cannot say now.
        """
