"""Which symbols each venue lists: the worker subscribes nothing else.

A trigger on a symbol the venue does not list would hold a subscription (one
connection per 300 of them on KuCoin) and never execute. Before a symbol is
subscribed the worker asks the venue once about it, and caches the answer:

- KuCoin spot `GET /api/v2/symbols/{symbol}` (`data.enableTrading`), futures
  `GET /api/v1/contracts/{symbol}` (`data.status == "Open"`);
- Backpack `GET /api/v1/market?symbol=` (`orderBookState` open).

A symbol the venue does not list is refused: its triggers are rejected with
`unlisted_symbol` and it is never subscribed; asked again after
`unlisted_seconds`. A listed one is asked again after `listed_seconds`. When
the venue cannot be asked (an HTTP error, a timeout), the symbol is taken as
listed until the next check, so a venue's REST outage never stops trading;
the exchange refuses unknown topics on its own (the feeds stop asking for
them). Lookups run a few at a time, so a burst of symbols cannot exhaust the
venue's REST rate limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from cogmora_core.venues import SymbolType

log = logging.getLogger(__name__)
#: (venue, market, symbol)
Key = tuple[str, str, str]
#: A venue's answer to "do you list this symbol in this market?" (raises when it cannot say).
Lookup = Callable[[httpx.AsyncClient, SymbolType, str], Awaitable[bool]]


@dataclass
class _Entry:
    listed: bool
    until: float


class Listings:
    """The cached answers of each venue about its symbols."""

    def __init__(self, lookups: Mapping[str, Lookup], on_answer: Callable[[], None],
                 client: httpx.AsyncClient | None = None, concurrency: int = 4,
                 listed_seconds: float = 6 * 3600.0, unlisted_seconds: float = 600.0,
                 error_seconds: float = 60.0) -> None:
        #: Each venue's lookup, by venue.
        self.lookups = lookups
        self.on_answer = on_answer
        self.client = client
        self.listed_seconds = listed_seconds
        self.unlisted_seconds = unlisted_seconds
        self.error_seconds = error_seconds
        self._answers: dict[Key, _Entry] = {}
        self._asking: set[Key] = set()
        self._gate = asyncio.Semaphore(concurrency)

    def listed(self, key: Key) -> bool | None:
        """Return the cached answer for `key` (None: not known yet, being asked now)."""
        entry = self._answers.get(key)
        if entry is not None and entry.until > time.monotonic():
            return entry.listed
        if key[0] not in self.lookups:
            return True  # a venue without a lookup: nothing to check against
        if key not in self._asking:
            self._asking.add(key)
            asyncio.get_running_loop().create_task(self._ask(key))
        return entry.listed if entry is not None else None

    async def _ask(self, key: Key) -> None:
        venue, market, symbol = key
        try:
            async with self._gate:
                listed, seconds = await self._lookup(venue, market, symbol)
        except Exception as error:  # the venue cannot be asked: do not stop trading
            log.warning("symbol listing unknown: taken as listed for now",
                        extra={"venue": venue, "symbol": symbol, "error": repr(error)})
            listed, seconds = True, self.error_seconds
        finally:
            self._asking.discard(key)
        self._answers[key] = _Entry(listed, time.monotonic() + seconds)
        if not listed:
            log.warning("symbol not listed by the venue", extra={"venue": venue,
                                                                 "symbol": symbol})
        self.on_answer()

    async def _lookup(self, venue: str, market: str, symbol: str) -> tuple[bool, float]:
        assert self.client is not None
        listed = await self.lookups[venue](self.client, SymbolType(market), symbol)
        return listed, self.listed_seconds if listed else self.unlisted_seconds
