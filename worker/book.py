"""The fast path: an in-memory index of every resting level, by symbol and price.

Per symbol, levels sit in two price-ordered lists: those that fire when the
price falls to them (long stop-loss and liquidation, short take-profit,
`below` triggers) and those that fire when it rises to them (the mirror
images), as the core's `trading.resting_levels` says. A tick looks only at
the ends of the lists, so it costs O(log n + hits) whatever the number of
resting orders. A tick touches no database. Hits are confirmed with the
core's own condition functions.

Market orders and manual closes wait in a per-symbol list for the next tick
(or fire at once on a fresh price, see `PriceIndex.fresh_tick`).

Trailing stops move with the price, so they do not rest in the ordered
lists: each tick advances the peak (high-water mark) of every trailing stop
on its symbol, O(trailing stops on the symbol), and checks it. Peaks that
moved are collected for the worker to persist (`take_moved_peaks`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from sortedcontainers import SortedList

from cogmora_core.model import CloseReason, PositionLevels, Tick, TriggerLevel
from cogmora_core.trading import (
    Crossing,
    advance_peak,
    better_peak,
    close_reason,
    resting_levels,
    stop_loss_hit,
    trailing_stop_price,
    trigger_fires,
)

TRIGGER = "trigger"
#: (venue, symbolType, symbol): one market of one venue (symbols repeat across them).
Market = tuple[str, str, str]
POSITION = "position"


@dataclass(slots=True, frozen=True)
class Armed:
    """One watched document, reduced to what decides when it fires.

    The index keeps only levels, with the update time of the version they
    were read from (`seen`): a position's mark is written blind from them, on
    condition that this version still stands
    (`cogmora_backend.marks.plan_position_mark`). A trigger's execution needs
    the whole order: its mark reads the document again (many in one read).
    """

    path: str
    kind: str
    symbol: str
    symbol_type: str
    venue: str
    trigger: TriggerLevel | None = None
    position: PositionLevels | None = None
    #: Fires on the next fresh price (market orders, manual closes).
    immediate: bool = False
    #: When the index armed it (monotonic; set by `PriceIndex.arm`): a tick
    #: received before that never fires it (DESIGN.md §3, "No hindsight").
    armed_at: float = field(default=0.0, compare=False)
    #: The server's update time of the version read (None: unknown).
    seen: datetime | None = field(default=None, compare=False)

    @property
    def market(self) -> Market:
        """Return (venue, symbolType, symbol): the market whose ticks fire it."""
        return (self.venue, self.symbol_type, self.symbol)

    @property
    def uid(self) -> str:
        """Return the owner's id (`users/{uid}/...`)."""
        return self.path.split("/", 2)[1]

    @property
    def doc_id(self) -> str:
        """Return the document's id."""
        return self.path.rsplit("/", 1)[1]


@dataclass(slots=True, frozen=True)
class Hit:
    """A level the tick crossed: mark this document at this tick."""

    armed: Armed
    tick: Tick
    #: The trailing stop's peak when the hit was seen (positions with one).
    peak: Decimal | None = None
    #: Where the price came from when not a live tick (`gap_recovery`).
    origin: str | None = None


#: Classes of urgency, most urgent first (`urgency`).
LIQUIDATION, STOP, IMMEDIATE, OTHER = range(4)


def urgency(hit: Hit) -> tuple[int, Decimal]:
    """Return where `hit` goes in a storm's marking order: smaller first.

    First by class: liquidations (the exchange's own forced close, and the
    loss the user can least afford to have delayed), then stop-losses and
    trailing stops (risk the user asked to cut), then market orders and manual
    closes (the user asked for the next price), then triggers and
    take-profits. Within a class, the deepest crossed first: the level
    farthest from the price, relative to the level (the one the price passed
    first on its way, and the fill that is furthest already). A level the tick
    no longer crosses (it cannot happen from the index) sorts last.
    """
    armed, price = hit.armed, hit.tick.price
    if armed.immediate:
        return IMMEDIATE, Decimal(0)
    if armed.trigger is not None:
        return OTHER, -_depth(armed.trigger.target_price, price)
    position = armed.position
    assert position is not None
    if position.trailing_stop is not None:
        position = replace(position,
                           peak=better_peak(position.position_type, position.peak, hit.peak))
    reason = close_reason(position, price)
    if reason is CloseReason.LIQUIDATION:
        return LIQUIDATION, -_depth(position.liquidation_price, price)
    if reason is CloseReason.STOP_LOSS:
        level = position.stop_loss
        if level is None or not stop_loss_hit(position.position_type, level, price):
            assert position.trailing_stop is not None and position.peak is not None
            level = trailing_stop_price(position.position_type, position.trailing_stop,
                                        position.peak)
        return STOP, -_depth(level, price)
    if reason is CloseReason.TAKE_PROFIT:
        return OTHER, -_depth(position.take_profit, price)
    return OTHER + 1, Decimal(0)


def _depth(level: Decimal | None, price: Decimal) -> Decimal:
    """Return how far `price` is past `level`, as a fraction of the level."""
    if level is None or level <= 0:
        return Decimal(0)
    return abs(price - level) / level


#: Where a level rests: its list, and its (level, path) entry in that list.
_Entry = tuple[SortedList, tuple[Decimal, str]]


@dataclass(slots=True)
class _Book:
    falling: SortedList = field(default_factory=SortedList)  # (level, path)
    rising: SortedList = field(default_factory=SortedList)
    waiting: dict[str, Armed] = field(default_factory=dict)
    trailing: dict[str, Armed] = field(default_factory=dict)
    last: Tick | None = None
    last_at: float = 0.0


class PriceIndex:
    """Every armed trigger and position, by symbol, ordered by level."""

    def __init__(self) -> None:
        self._books: dict[Market, _Book] = {}
        self._armed: dict[str, tuple[Armed, tuple[_Entry, ...]]] = {}
        #: Trailing stops' peaks by path, kept across re-arms of the same document.
        self._peaks: dict[str, Decimal] = {}
        self._moved: set[str] = set()

    def __len__(self) -> int:
        return len(self._armed)

    def __contains__(self, path: object) -> bool:
        return path in self._armed

    def levels(self) -> int:
        """Return how many price levels rest in the index."""
        return sum(len(b.falling) + len(b.rising) for b in self._books.values())

    def arm(self, armed: Armed) -> None:
        """Watch `armed` (replacing an earlier version of the same document)."""
        self._remove(armed.path)
        if not armed.armed_at:
            armed = replace(armed, armed_at=time.monotonic())
        book = self._books.get(armed.market)
        if book is None:
            book = self._books[armed.market] = _Book()
        entries: list[_Entry] = []
        if armed.immediate:
            book.waiting[armed.path] = armed
        else:
            position = armed.position
            if position is not None and position.trailing_stop is not None:
                book.trailing[armed.path] = armed
                peak = better_peak(position.position_type, self._peaks.get(armed.path),
                                   position.peak)
                if peak is not None:
                    self._peaks[armed.path] = peak
            else:
                self._peaks.pop(armed.path, None)
            levels = armed.trigger if armed.trigger is not None else armed.position
            assert levels is not None
            for crossing, level in resting_levels(levels):
                target = book.falling if crossing is Crossing.FALLING else book.rising
                entry = (level, armed.path)
                target.add(entry)
                entries.append((target, entry))
        self._armed[armed.path] = (armed, tuple(entries))

    def disarm(self, path: str) -> Armed | None:
        """Stop watching the document at `path`; return what was armed, if anything."""
        self._peaks.pop(path, None)
        self._moved.discard(path)
        return self._remove(path)

    def peak(self, path: str) -> Decimal | None:
        """Return the trailing stop's peak the index holds for `path`."""
        return self._peaks.get(path)

    def take_moved_peaks(self) -> dict[str, Decimal]:
        """Return the peaks that moved since the last call (to persist them)."""
        moved = {path: self._peaks[path] for path in self._moved if path in self._peaks}
        self._moved.clear()
        return moved

    def _remove(self, path: str) -> Armed | None:
        found = self._armed.pop(path, None)
        if found is None:
            return None
        armed, entries = found
        for target, entry in entries:
            target.discard(entry)
        book = self._books.get(armed.market)
        if book is not None:
            book.waiting.pop(path, None)
            book.trailing.pop(path, None)
            if not (book.falling or book.rising or book.waiting or book.trailing) \
                    and book.last is None:
                del self._books[armed.market]
        return armed

    def get(self, path: str) -> Armed | None:
        """Return what is armed for `path`, if anything."""
        found = self._armed.get(path)
        return found[0] if found else None

    def armed_on(self, market: Market) -> list[Armed]:
        """Return everything armed on `market`."""
        return [armed for armed, _ in self._armed.values() if armed.market == market]

    def paths(self) -> Iterable[str]:
        """Return the paths of every armed document."""
        return self._armed.keys()

    def markets(self) -> set[Market]:
        """Return (venue, symbolType, symbol) of every market something is armed on."""
        return {a.market for a, _ in self._armed.values()}

    def fresh_tick(self, market: Market, max_age_seconds: float) -> Tick | None:
        """Return the market's latest tick if it is at most `max_age_seconds` old."""
        book = self._books.get(market)
        if book is None or book.last is None:
            return None
        if time.monotonic() - book.last_at > max_age_seconds:
            return None
        return book.last

    def on_tick(self, tick: Tick, received: float | None = None) -> list[Hit]:
        """Return every document `tick` fires, disarmed so that each fires once.

        `received` is when the tick arrived (monotonic; now when None): a
        document armed after that is neither fired nor trailed by it, since the
        price was printed before its levels were set (a tick held back while a
        gap is recovered arrives late).
        """
        if received is None:
            received = time.monotonic()
        market = tick.market
        book = self._books.get(market)
        if book is None:
            self._books[market] = _Book(last=tick, last_at=time.monotonic())
            return []
        book.last = tick
        book.last_at = time.monotonic()
        price = tick.price
        fired: list[str] = []
        falling, rising = book.falling, book.rising
        while falling and falling[-1][0] >= price:
            fired.append(falling.pop()[1])
        while rising and rising[0][0] <= price:
            fired.append(rising.pop(0)[1])
        if book.waiting:
            fired.extend(book.waiting)
        if book.trailing:
            fired.extend(self._trail(book, price, received))
        if not fired:
            return []
        hits: list[Hit] = []
        for path in dict.fromkeys(fired):  # a position may cross two levels at once
            peak = self._peaks.get(path)
            armed = self._remove(path)
            if armed is None:
                continue
            if armed.armed_at <= received and fires(armed, price, peak):
                hits.append(Hit(armed, tick, peak))
            else:  # the ordering and the core disagree: keep watching, never drop
                self.arm(armed)
        return hits

    def _trail(self, book: _Book, price: Decimal, received: float) -> list[str]:
        """Advance every trailing stop of `book` to `price`; return those it crosses."""
        crossed: list[str] = []
        for path, armed in book.trailing.items():
            if armed.armed_at > received:
                continue  # set after this price was printed
            position = armed.position
            assert position is not None and position.trailing_stop is not None
            old = self._peaks.get(path)
            new = advance_peak(position.position_type, position.trailing_stop, old, price)
            if new is None:
                continue
            if new != old:
                self._peaks[path] = new
                self._moved.add(path)
            if fires(armed, price, new):
                crossed.append(path)
        return crossed


def fires(armed: Armed, price: Decimal, peak: Decimal | None = None) -> bool:
    """Return whether `armed` must execute at the last `price`, by the core's rules.

    `peak` is the trailing stop's current high-water mark (the index's, which
    may be ahead of the one the document was armed with).
    """
    if armed.immediate:
        return True
    if armed.trigger is not None:
        return trigger_fires(armed.trigger.condition, armed.trigger.target_price, price)
    position = armed.position
    assert position is not None
    if position.trailing_stop is not None:
        position = replace(position,
                           peak=better_peak(position.position_type, position.peak, peak))
    return close_reason(position, price) is not None
