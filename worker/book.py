"""The fast path: an in-memory index of every resting level, by symbol and price.

Per symbol, levels sit in two price-ordered lists: those that fire when the
price falls to them (long stop-loss and liquidation, short take-profit,
`below` triggers) and those that fire when it rises to them (the mirror
images). A tick looks only at the ends of the lists, so it costs
O(log n + hits) whatever the number of resting orders. A tick touches no
database. Hits are confirmed with the core's own condition functions.

Market orders and manual closes wait in a per-symbol list for the next tick
(or fire at once on a fresh price, see `PriceIndex.fresh_tick`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sortedcontainers import SortedList

from cogmora_core.model import Condition, PositionLevels, PositionType, Tick, TriggerLevel
from cogmora_core.trading import close_reason, trigger_fires

TRIGGER = "trigger"
POSITION = "position"


@dataclass(slots=True, frozen=True)
class Armed:
    """One watched document, reduced to what decides when it fires.

    The index keeps only levels: the mark's transaction reads the whole
    document again, so nothing else needs to stay in memory.
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


#: Where a level rests: its list, and its (level, path) entry in that list.
_Entry = tuple[SortedList, tuple[Decimal, str]]


@dataclass(slots=True)
class _Book:
    falling: SortedList = field(default_factory=SortedList)  # (level, path)
    rising: SortedList = field(default_factory=SortedList)
    waiting: dict[str, Armed] = field(default_factory=dict)
    last: Tick | None = None
    last_at: float = 0.0


class PriceIndex:
    """Every armed trigger and position, by symbol, ordered by level."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._armed: dict[str, tuple[Armed, tuple[_Entry, ...]]] = {}

    def __len__(self) -> int:
        return len(self._armed)

    def __contains__(self, path: object) -> bool:
        return path in self._armed

    def levels(self) -> int:
        """Return how many price levels rest in the index."""
        return sum(len(b.falling) + len(b.rising) for b in self._books.values())

    def arm(self, armed: Armed) -> None:
        """Watch `armed` (replacing an earlier version of the same document)."""
        self.disarm(armed.path)
        book = self._books.get(armed.symbol)
        if book is None:
            book = self._books[armed.symbol] = _Book()
        entries: list[_Entry] = []
        if armed.immediate:
            book.waiting[armed.path] = armed
        else:
            for falling, level in _levels(armed):
                target = book.falling if falling else book.rising
                entry = (level, armed.path)
                target.add(entry)
                entries.append((target, entry))
        self._armed[armed.path] = (armed, tuple(entries))

    def disarm(self, path: str) -> Armed | None:
        """Stop watching the document at `path`; return what was armed, if anything."""
        found = self._armed.pop(path, None)
        if found is None:
            return None
        armed, entries = found
        for target, entry in entries:
            target.discard(entry)
        book = self._books.get(armed.symbol)
        if book is not None:
            book.waiting.pop(path, None)
            if not (book.falling or book.rising or book.waiting) and book.last is None:
                del self._books[armed.symbol]
        return armed

    def get(self, path: str) -> Armed | None:
        """Return what is armed for `path`, if anything."""
        found = self._armed.get(path)
        return found[0] if found else None

    def paths(self) -> Iterable[str]:
        """Return the paths of every armed document."""
        return self._armed.keys()

    def markets(self) -> set[tuple[str, str, str]]:
        """Return (venue, symbolType, symbol) of every symbol something is armed on."""
        return {(a.venue, a.symbol_type, a.symbol) for a, _ in self._armed.values()}

    def fresh_tick(self, symbol: str, max_age_seconds: float) -> Tick | None:
        """Return the symbol's latest tick if it is at most `max_age_seconds` old."""
        book = self._books.get(symbol)
        if book is None or book.last is None:
            return None
        if time.monotonic() - book.last_at > max_age_seconds:
            return None
        return book.last

    def on_tick(self, tick: Tick) -> list[Hit]:
        """Return every document `tick` fires, disarmed so that each fires once."""
        book = self._books.get(tick.symbol)
        if book is None:
            self._books[tick.symbol] = _Book(last=tick, last_at=time.monotonic())
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
        if not fired:
            return []
        hits: list[Hit] = []
        for path in dict.fromkeys(fired):  # a position may cross two levels at once
            armed = self.disarm(path)
            if armed is None:
                continue
            if fires(armed, price):
                hits.append(Hit(armed, tick))
            else:  # the ordering and the core disagree: keep watching, never drop
                self.arm(armed)
        return hits


def fires(armed: Armed, price: Decimal) -> bool:
    """Return whether `armed` must execute at the last `price`, by the core's rules."""
    if armed.immediate:
        return True
    if armed.trigger is not None:
        return trigger_fires(armed.trigger.condition, armed.trigger.target_price, price)
    assert armed.position is not None
    return close_reason(armed.position, price) is not None


def _levels(armed: Armed) -> list[tuple[bool, Decimal]]:
    """Return (fires when falling?, level) for each level of a trigger or position."""
    if armed.trigger is not None:
        order = armed.trigger
        assert order.target_price is not None and order.condition is not Condition.MARKET
        return [(order.condition is Condition.BELOW, order.target_price)]
    position = armed.position
    assert position is not None
    long = position.position_type is PositionType.LONG
    levels: list[tuple[bool, Decimal]] = []
    if position.stop_loss is not None:
        levels.append((long, position.stop_loss))
    if position.liquidation_price is not None:
        levels.append((long, position.liquidation_price))
    if position.take_profit is not None:
        levels.append((not long, position.take_profit))
    return levels
