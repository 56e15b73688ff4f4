"""Which symbols each feed carries, and how fast that may change: one place for every venue.

A market is *held* while anything on it needs its prices: a level armed in
the index (triggers, stop-losses, take-profits, liquidations: every open
perpetual has one, so funding is followed), a market order or manual close
waiting for a price, a trailing stop, a mark in flight, a gap being
recovered (the worker says which, `Worker.held_markets`). It stays *wanted*
for `linger` seconds after the last reason goes (`Linger`): levels firing in
a storm leave the index and come back as positions a moment later, and a
symbol that flapped (unsubscribed, subscribed again) would lose the ticks
published in between and spend messages against the venue's limits.

A feed is told its wanted symbols in batches no faster than its venue allows
(`Pacer`): a token bucket sized from the adapter's `SubscriptionLimits`. Each
connection also sends its control messages through its own bucket of the same
limits (`worker.venues.base.SendPacer`), so a reconnect that subscribes
everything again goes at the venue's pace too.
Subscribes go first; unsubscribes wait until nothing is left to subscribe.
What the bucket cannot pay now waits, and later changes join it.

`Linger` and `Pacer` are pure (the clock is passed in); `Subscriptions`
drives them on the event loop and counts every change per symbol
(`cogmora_subscription_changes_total`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Mapping, Set
from dataclasses import dataclass
from typing import Generic, TypeVar

from worker.book import Market
from worker.metrics import Metrics
from worker.venues.base import Feed, SubscriptionLimits, TokenBucket

K = TypeVar("K", bound=Hashable)


class Linger(Generic[K]):
    """Keys stay wanted `seconds` after they were last held (pure: `now` is passed in)."""

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a linger of {seconds} s")
        self.seconds = seconds
        self._held: set[K] = set()
        #: Keys no longer held, and since when.
        self._released: dict[K, float] = {}

    def wanted(self, held: Set[K], now: float) -> set[K]:
        """Return the keys wanted at `now`: those held, and those released < `seconds` ago."""
        for key in self._held - held:
            self._released[key] = now
        for key in held:
            self._released.pop(key, None)
        self._held = set(held)
        for key in [k for k, since in self._released.items() if now - since >= self.seconds]:
            del self._released[key]
        return self._held | self._released.keys()

    def lingering(self) -> set[K]:
        """Return the keys wanted only because they linger."""
        return set(self._released)

    def next_expiry(self) -> float | None:
        """Return when the first lingering key stops being wanted, if any lingers."""
        if not self._released:
            return None
        return min(self._released.values()) + self.seconds


@dataclass(frozen=True, slots=True)
class Change:
    """What one step tells a feed: its new symbols, and what changed."""

    desired: frozenset[str]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    #: The control messages the change costs at the venue.
    messages: int


class Pacer:
    """One feed's subscription changes, in batches within its venue's limits (pure).

    `pushed` is what the feed was last told. Each `step` sends what the
    token bucket can pay for: subscribes first (sorted, as many whole messages
    as the tokens cover), then, once nothing is left to subscribe,
    unsubscribes. `retry_at` says when the rest can go.
    """

    def __init__(self, limits: SubscriptionLimits, now: float) -> None:
        self.limits = limits
        self.pushed: set[str] = set()
        self.bucket = TokenBucket(limits.messages_per_second, limits.burst, now)
        self.retry_at: float | None = None

    def step(self, wanted: Set[str], now: float) -> Change | None:
        """Return the change to tell the feed now (None: nothing), and set `retry_at`."""
        limits = self.limits
        connections = limits.connections(len(self.pushed | wanted))
        self.bucket.resize(limits.messages_per_second * connections,
                           limits.burst * connections, now)
        add = sorted(wanted - self.pushed)
        remove = sorted(self.pushed - wanted)
        added = self._afford(add, now)
        removed = self._afford(remove, now) if len(added) == len(add) else []
        left = len(add) - len(added) + len(remove) - len(removed)
        self.retry_at = self.bucket.ready_at(limits.messages(1), now) if left else None
        if not added and not removed:
            return None
        self.pushed.update(added)
        self.pushed.difference_update(removed)
        return Change(frozenset(self.pushed), tuple(added), tuple(removed),
                      limits.messages(len(added)) + limits.messages(len(removed)))

    def _afford(self, symbols: list[str], now: float) -> list[str]:
        """Return the first of `symbols` the bucket pays for now, their messages taken."""
        if not symbols:
            return []
        affordable = symbols[:self.limits.symbols_within(self.bucket.available(now))]
        if affordable:
            self.bucket.take(self.limits.messages(len(affordable)), now)
        return affordable


class Subscriptions:
    """Keeps every feed carrying its wanted symbols: held, lingering, changed at its pace.

    `refresh` recomputes what is held and calls `update` again: it runs when a
    lingering symbol expires, when the bucket can pay for what waits, and
    every `poll_seconds` while marks are in flight (they end without telling).
    """

    def __init__(self, linger_seconds: float, metrics: Metrics, refresh: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic, poll_seconds: float = 1.0) -> None:
        self.linger: Linger[Market] = Linger(linger_seconds)
        self.metrics = metrics
        self.refresh = refresh
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.feeds: dict[str, tuple[Feed, Pacer]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def add_feed(self, feed: Feed, limits: SubscriptionLimits) -> None:
        """Pace `feed` by `limits` (a feed added twice keeps its first limits)."""
        if feed.name not in self.feeds:
            self.feeds[feed.name] = (feed, Pacer(limits, self.clock()))

    def wanted(self, held: Set[Market]) -> set[Market]:
        """Return the markets wanted now: `held` and those lingering after it."""
        return self.linger.wanted(held, self.clock())

    def push(self, wanted: Mapping[str, Set[str]], polling: bool = False) -> None:
        """Tell each feed (by name) what it can carry of its `wanted` symbols now.

        `polling`: something held ends without telling (a mark in flight), so
        look again within `poll_seconds`.
        """
        now = self.clock()
        wakes = [self.linger.next_expiry()]
        if polling:
            wakes.append(now + self.poll_seconds)
        for name, (feed, pacer) in self.feeds.items():
            symbols = wanted.get(name, set())
            change = pacer.step(symbols, now)
            if change is not None:
                self._count(name, change)
                feed.update_desired(set(change.desired))
            wakes.append(pacer.retry_at)
            waiting = len(symbols - pacer.pushed)
            self.metrics.subscriptions_waiting.labels(name).set(waiting)
        self.metrics.lingering.set(len(self.linger.lingering()))
        self._wake_at(min((w for w in wakes if w is not None), default=None), now)

    def _count(self, feed: str, change: Change) -> None:
        for op, symbols in (("subscribe", change.added), ("unsubscribe", change.removed)):
            for symbol in symbols:
                self.metrics.subscription_changes.labels(feed, symbol, op).inc()
        if change.messages:
            self.metrics.subscription_messages.labels(feed).inc(change.messages)

    def _wake_at(self, at: float | None, now: float) -> None:
        """Run `refresh` at `at` (monotonic), keeping an earlier wake already set."""
        if at is None:
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= at \
                and not self._timer.cancelled():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.get_running_loop().call_later(max(0.0, at - now), self._wake)

    def _wake(self) -> None:
        self._timer = self._timer_at = None
        self.refresh()

    def stop(self) -> None:
        """Cancel the pending wake."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
