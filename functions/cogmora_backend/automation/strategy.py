"""The built-in model's strategy: deterministic breakout / mean-reversion levels.

For each watched symbol with a price and a 24 h high/low (and no open
position on it), with the 24 h range R = high − low as the volatility
measure (an ATR-style stop distance) and z = (price − low) / R:

- **breakout long**: z ≥ 0.8 and the 24 h change > 0 → buy `above` the high
  (+0.1 %), stop-loss 0.5 R below the entry, take-profit 1 R above it;
- **breakout fade short** (futures only): z ≥ 0.8 and the change < 0 →
  short `above` the high (+0.1 %), stop 0.5 R above, take-profit 1 R below;
- **mean reversion long**: z ≤ 0.2 → buy `below` the low (−0.1 %), stop
  0.5 R below the entry, take-profit 0.5 R above it (back toward the middle).

Size: the loss at the stop is at most `maxRiskPercent` of the balance:
amount = balance × risk% × entry / (leverage × |entry − stop|), rounded down
to cents and capped at a fifth of the balance. Futures use 3x leverage, spot
1x; both within the caps of `config/automation` (`limits`: leverage at most
maxLeverage, amount at most maxAmountPercent of the balance). Levels are
rounded to 8 decimals. Symbols are taken in alphabetical order.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from cogmora_backend.automation.plan import AgentInput, ModelPlan, Proposal
from cogmora_core.money import quantize
from cogmora_core.risk import amount_for_budget, risk_budget
from cogmora_core.venues import DEFAULT_VENUE, VENUES, SymbolType

FUTURES_LEVERAGE = 3
EDGE = Decimal("0.001")
HALF = Decimal("0.5")
CENTS = Decimal("0.01")
MAX_SHARE_OF_BALANCE = Decimal("0.2")
NAME = "cogmora/rules-v1"


def _d(value: float) -> Decimal:
    return Decimal(repr(value))


def propose(data: AgentInput) -> ModelPlan:
    """Return the strategy's proposals for `data`, with a one-line summary."""
    balance = _d(data.balance)
    risk = risk_budget(balance, _d(data.maxRiskPercent))
    share = min(MAX_SHARE_OF_BALANCE, _d(data.limits.maxAmountPercent) / 100)
    held = {position.symbol for position in data.positions}
    proposals: list[Proposal] = []
    for market in sorted(data.watchlist, key=lambda m: m.symbol):
        if market.symbol in held or None in (market.price, market.high24h, market.low24h):
            continue
        symbol_type = VENUES[DEFAULT_VENUE].market_of(market.symbol)
        if symbol_type is None:
            continue
        futures = symbol_type is SymbolType.FUTURES
        price, high, low = _d(market.price), _d(market.high24h), _d(market.low24h)  # type: ignore[arg-type]
        spread = high - low
        if spread <= 0 or not low <= price <= high:
            continue
        z = (price - low) / spread
        change = _d(market.change24h or 0.0)
        leverage = min(FUTURES_LEVERAGE, data.limits.maxLeverage) if futures else 1
        if z >= Decimal("0.8") and change > 0:
            entry = high * (1 + EDGE)
            plan = ("above", "long" if futures else "buy", entry - HALF * spread,
                    entry + spread, f"breakout: price in the top fifth of the 24 h range, "
                    f"up {change}%")
        elif z >= Decimal("0.8") and change < 0 and futures:
            entry = high * (1 + EDGE)
            plan = ("above", "short", entry + HALF * spread, entry - spread,
                    f"fade: a push above the 24 h high while down {change}% on the day")
        elif z <= Decimal("0.2"):
            entry = low * (1 - EDGE)
            plan = ("below", "long" if futures else "buy", entry - HALF * spread,
                    entry + HALF * spread, "mean reversion: buy a dip under the 24 h low")
        else:
            continue
        condition, action, stop, take, reason = plan
        if stop <= 0 or take <= 0:
            continue
        amount = min(amount_for_budget(risk, entry, stop, leverage),
                     balance * share).quantize(CENTS, rounding=ROUND_DOWN)
        if amount <= 0:
            continue
        proposals.append(Proposal(
            symbol=market.symbol, symbolType="futures" if futures else "spot",
            condition=condition, targetPrice=float(quantize(entry)), action=action,
            amount=float(amount), leverage=leverage, stopLoss=float(quantize(stop)),
            takeProfit=float(quantize(take)), rationale=rationale_of(reason, spread)))
    summary = (f"{len(proposals)} proposal(s) from {len(data.watchlist)} watched symbol(s); "
               f"risk per trade {data.maxRiskPercent}% of {balance} USDT")
    return ModelPlan(proposals=proposals, summary=summary)


def rationale_of(reason: str, spread: Decimal) -> str:
    """Return a proposal's rationale with its stop distance."""
    return f"{reason}; stop distance half the 24 h range ({quantize(spread / 2)})"
