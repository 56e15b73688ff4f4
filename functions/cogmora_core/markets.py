"""The markets the HTTP API lists and accepts: the one explicit list of symbols.

The security rules and `validation` accept any symbol of the right shape for
its venue (KuCoin `BASE-USDT` spot, `BASEUSDTM` futures; Backpack `BASE_USDC`
spot, `BASE_USDC_PERP` perpetuals); the API is stricter and takes only the
symbols listed here, so a bot's typo fails at once with `unsupported_symbol`
instead of arming a trigger no feed will ever quote.
Every listed symbol passes `validation.parse_symbol` (a unit test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from cogmora_core.model import SymbolType


@dataclass(frozen=True, slots=True)
class Market:
    """One tradable market: its symbol, kind, base asset and venue."""

    symbol: str
    symbol_type: SymbolType
    base: str
    venue: str = "kucoin"
    quote: str = "USDT"


_BASES = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "BNB", "LTC", "AVAX", "LINK")
#: Backpack's most traded markets, spot and perpetual, quoted in USDC.
_BACKPACK_BASES = ("BTC", "ETH", "SOL")


def _futures_symbol(base: str) -> str:
    # KuCoin Futures names Bitcoin XBT.
    return f"{'XBT' if base == 'BTC' else base}USDTM"


#: KuCoin's spot markets, then its USDT-margined perpetual futures, in `_BASES`
#: order; then Backpack's, alike.
MARKETS: tuple[Market, ...] = (
    *(Market(f"{base}-USDT", SymbolType.SPOT, base) for base in _BASES),
    *(Market(_futures_symbol(base), SymbolType.FUTURES, base) for base in _BASES),
    *(Market(f"{base}_USDC", SymbolType.SPOT, base, "backpack", "USDC")
      for base in _BACKPACK_BASES),
    *(Market(f"{base}_USDC_PERP", SymbolType.FUTURES, base, "backpack", "USDC")
      for base in _BACKPACK_BASES),
)

_BY_SYMBOL = {(market.venue, market.symbol): market for market in MARKETS}


def listed_market(symbol: str, symbol_type: SymbolType, venue: str) -> Market | None:
    """Return the listed market of `symbol` of that type on `venue`, or None."""
    market = _BY_SYMBOL.get((venue, symbol))
    if market is None or market.symbol_type is not symbol_type:
        return None
    return market
