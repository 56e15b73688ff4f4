"""The markets the HTTP API lists and accepts: the one explicit list of symbols.

The security rules and `validation` accept any symbol of the right shape for
its venue (`venues.VENUES`: KuCoin `BASE-USDT` spot, `BASEUSDTM` futures;
Backpack `BASE_USDC` spot, `BASE_USDC_PERP` perpetuals); the API is stricter and takes only the
symbols listed here, so a bot's typo fails at once with `unsupported_symbol`
instead of arming a trigger no feed will ever quote.
Every listed symbol passes `validation.parse_symbol` (a unit test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from cogmora_core.venues import DEFAULT_VENUE, VENUES, SymbolType


@dataclass(frozen=True, slots=True)
class Market:
    """One tradable market: its symbol, kind, base asset and venue."""

    symbol: str
    symbol_type: SymbolType
    base: str
    venue: str = DEFAULT_VENUE
    quote: str = "USDT"


#: Each venue's listed spot markets, then its perpetual futures, in the order
#: `venues.VENUES` gives the venues and their bases.
MARKETS: tuple[Market, ...] = tuple(
    Market(spec.symbol(symbol_type, base), symbol_type, base, spec.venue, spec.quote)
    for spec in VENUES.values()
    for symbol_type in (SymbolType.SPOT, SymbolType.FUTURES)
    for base in spec.listed
)

#: By (venue, market, symbol): a venue may write a spot and a perpetual symbol alike.
_BY_MARKET = {(market.venue, market.symbol_type, market.symbol): market for market in MARKETS}


def listed_market(symbol: str, symbol_type: SymbolType, venue: str) -> Market | None:
    """Return the listed market of `symbol` of that type on `venue`, or None."""
    return _BY_MARKET.get((venue, symbol_type, symbol))
