"""The venues: every fact about a venue that the core, the API and the rules share.

This is the contract's venue list. Each venue names its symbol forms per
market (a pattern, and the form a rejection names), the quote currency its
markets settle in, and the markets the HTTP API lists. The worker's adapters
(`worker/venues/<venue>/`) register against these members; the security
rules (`firestore.rules`) and the OpenAPI document carry the same list, and a
unit test checks that they agree with `VENUES`.

A document without a venue (absent or null) is on `DEFAULT_VENUE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class SymbolType(StrEnum):
    """A venue's market: spot, or perpetual futures."""

    SPOT = "spot"
    FUTURES = "futures"


class Venue(StrEnum):
    """An exchange whose prices paper trades execute against."""

    KUCOIN = "kucoin"
    BACKPACK = "backpack"
    BINANCE = "binance"


#: The venue of a document that names none (the app's first venue).
DEFAULT_VENUE = Venue.KUCOIN


@dataclass(frozen=True, slots=True)
class SymbolForm:
    """How one market of a venue writes its symbols: a pattern and its name for people."""

    pattern: re.Pattern[str]
    form: str


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """What the contract knows of a venue.

    `listed` holds the bases whose spot and futures markets the API lists;
    `futures_base` renames a base where the venue's futures do (KuCoin's XBT).
    """

    venue: Venue
    quote: str
    symbols: dict[SymbolType, SymbolForm]
    spot_symbol: str
    futures_symbol: str
    listed: tuple[str, ...]
    futures_base: dict[str, str]

    def symbol(self, symbol_type: SymbolType, base: str) -> str:
        """Return the venue's symbol of `base` in the market of `symbol_type`."""
        if symbol_type is SymbolType.SPOT:
            return self.spot_symbol.format(base=base)
        return self.futures_symbol.format(base=self.futures_base.get(base, base))

    def market_of(self, symbol: str) -> SymbolType | None:
        """Return the market whose symbol form `symbol` has, or None."""
        for symbol_type, form in self.symbols.items():
            if form.pattern.match(symbol):
                return symbol_type
        return None


_BASE = "[A-Z0-9]{1,15}"

VENUES: dict[Venue, VenueSpec] = {
    Venue.KUCOIN: VenueSpec(
        Venue.KUCOIN, "USDT",
        {SymbolType.SPOT: SymbolForm(re.compile(rf"^{_BASE}-USDT$"), "BASE-USDT"),
         SymbolType.FUTURES: SymbolForm(re.compile(rf"^{_BASE}USDTM$"), "BASEUSDTM")},
        "{base}-USDT", "{base}USDTM",
        ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "BNB", "LTC", "AVAX", "LINK"),
        {"BTC": "XBT"}),  # KuCoin Futures names Bitcoin XBT
    # Backpack markets are USDC-quoted; paper balances settle them 1:1 in the
    # account's quote.
    Venue.BACKPACK: VenueSpec(
        Venue.BACKPACK, "USDC",
        {SymbolType.SPOT: SymbolForm(re.compile(rf"^{_BASE}_USDC$"), "BASE_USDC"),
         SymbolType.FUTURES: SymbolForm(re.compile(rf"^{_BASE}_USDC_PERP$"), "BASE_USDC_PERP")},
        "{base}_USDC", "{base}_USDC_PERP",
        ("BTC", "ETH", "SOL"), {}),
    # Binance writes its spot and USDⓈ-M perpetual symbols alike (BTCUSDT): the
    # form cannot tell the markets apart (`market_of` answers spot), so every
    # Binance document and tick names its market.
    Venue.BINANCE: VenueSpec(
        Venue.BINANCE, "USDT",
        {SymbolType.SPOT: SymbolForm(re.compile(rf"^{_BASE}USDT$"), "BASEUSDT"),
         SymbolType.FUTURES: SymbolForm(re.compile(rf"^{_BASE}USDT$"), "BASEUSDT")},
        "{base}USDT", "{base}USDT",
        ("BTC", "ETH", "SOL"), {}),
}


def venue_of(raw: object) -> Venue | None:
    """Return the venue a document names (absent or null: the default), or None if unknown."""
    if raw is None:
        return DEFAULT_VENUE
    if not isinstance(raw, str):
        return None
    try:
        return Venue(raw)
    except ValueError:
        return None
