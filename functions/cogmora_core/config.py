"""Trading settings from `config/trading`, with documented defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from cogmora_core.money import ZERO, parse_number


@dataclass(frozen=True)
class TradingConfig:
    """Fee rates, starting balance and risk settings.

    Defaults: spot taker 0.1 %, futures taker 0.06 %, maintenance margin
    0.5 %, starting balance 10,000 USDT, prices older than 10 s are stale.
    """

    starting_balance: Decimal = Decimal("10000")
    spot_taker_fee: Decimal = Decimal("0.001")
    futures_taker_fee: Decimal = Decimal("0.0006")
    maintenance_margin_rate: Decimal = Decimal("0.005")
    max_price_age_seconds: Decimal = Decimal("10")
    #: Problems found in the document (field: why it was ignored).
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_document(cls, data: Mapping[str, object] | None) -> TradingConfig:
        """Build the config from a `config/trading` document.

        A missing field takes its default; an invalid one takes its default too
        and is listed in `problems`, so a bad admin edit never stops settlement.
        """
        config = cls()
        if not data:
            return config
        names = {
            "startingBalance": "starting_balance",
            "spotTakerFee": "spot_taker_fee",
            "futuresTakerFee": "futures_taker_fee",
            "maintenanceMarginRate": "maintenance_margin_rate",
            "maxPriceAgeSeconds": "max_price_age_seconds",
        }
        changes: dict[str, Decimal] = {}
        problems: list[str] = []
        for doc_name, attr in names.items():
            if doc_name not in data:
                continue
            value = parse_number(data[doc_name])
            if value is None or not _in_range(attr, value):
                problems.append(f"{doc_name}: invalid value {data[doc_name]!r}, default used")
                continue
            changes[attr] = value
        return replace(config, **changes, problems=tuple(problems))

    def taker_fee(self, symbol_type: str) -> Decimal:
        """Return the taker fee rate for `spot` or `futures`."""
        return self.spot_taker_fee if symbol_type == "spot" else self.futures_taker_fee


_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    # attr: (lowest allowed, highest allowed), both inclusive
    "starting_balance": (ZERO, Decimal("1000000")),
    "spot_taker_fee": (ZERO, Decimal("0.05")),
    "futures_taker_fee": (ZERO, Decimal("0.05")),
    "maintenance_margin_rate": (ZERO, Decimal("0.5")),
    "max_price_age_seconds": (Decimal("0.001"), Decimal("3600")),
}


def _in_range(attr: str, value: Decimal) -> bool:
    low, high = _RANGES[attr]
    return low <= value <= high


@dataclass(frozen=True)
class AutomationConfig:
    """Caps on what the AI agent may propose, from `config/automation`.

    Every proposal is checked against them by `risk.check_proposal`, whatever
    the model. Defaults, and why:

    - `maxLeverage` 10: a 10 % move against a 10x position takes its margin;
      past that, the stop-loss budget rests on one level holding through every
      wick, and an unattended agent should not arm that.
    - `maxAmountPercent` 25: one proposal commits at most a quarter of the
      balance (margin or cost), so a plan is never one bet; the built-in
      model sizes to at most a fifth.
    - `maxPriceDistancePercent` 20: a target more than 20 % from the market is
      beyond what a listed market usually moves in a day, so not a level for
      a plan renewed every hour; it is what a confused model writes, such as
      `above 1` for a coin at 88,000.
    - `maxQuoteAgeSeconds` 60: the market price a proposal is checked against
      is at most a minute old. A KuCoin futures ticker is timed at its last
      trade, and the thinner listed perpetuals can go tens of seconds
      without one; older than a minute, the price no longer describes the
      market the trigger will be armed in.
    """

    max_leverage: int = 10
    max_amount_percent: Decimal = Decimal("25")
    max_price_distance_percent: Decimal = Decimal("20")
    max_quote_age_seconds: Decimal = Decimal("60")
    #: Problems found in the document (field: why it was ignored).
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_document(cls, data: Mapping[str, object] | None) -> AutomationConfig:
        """Build the caps from a `config/automation` document.

        A missing field takes its default; an invalid one (not a number, out of
        range, a fractional leverage) takes its default too and is listed in
        `problems`, so a bad admin edit never lets a proposal through unchecked.
        """
        changes, problems = _read_fields(data, _AUTOMATION_FIELDS, whole={"max_leverage"})
        return replace(cls(), **changes, problems=problems)


#: `config/automation` field → (attribute, lowest allowed, highest allowed), both inclusive.
_AUTOMATION_FIELDS: dict[str, tuple[str, Decimal, Decimal]] = {
    "maxLeverage": ("max_leverage", Decimal(1), Decimal(100)),
    "maxAmountPercent": ("max_amount_percent", Decimal("0.01"), Decimal(100)),
    "maxPriceDistancePercent": ("max_price_distance_percent", Decimal("0.01"), Decimal(1000)),
    "maxQuoteAgeSeconds": ("max_quote_age_seconds", Decimal(1), Decimal(3600)),
}


@dataclass(frozen=True)
class LimitsConfig:
    """Per-user limits from `config/limits` (DESIGN.md §2): no user exhausts what all share.

    Defaults: 200 active triggers, 200 open positions, 50 watchlist symbols,
    an AI interval of at least 15 minutes, 96 AI runs a day (one per 15 minutes,
    scheduled and on demand together), 2 `proposePlan` calls a minute, 120 API
    requests a minute.
    """

    max_active_triggers: int = 200
    max_open_positions: int = 200
    max_watchlist_symbols: int = 50
    min_ai_interval_minutes: int = 15
    max_ai_runs_per_day: int = 96
    max_propose_plan_per_minute: int = 2
    api_requests_per_minute: int = 120
    #: Problems found in the document (field: why it was ignored).
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_document(cls, data: Mapping[str, object] | None) -> LimitsConfig:
        """Build the limits from a `config/limits` document.

        A missing field takes its default; an invalid one (not a whole number,
        out of range) takes its default too and is listed in `problems`.
        """
        changes, problems = _read_fields(data, _LIMIT_FIELDS,
                                         whole={attr for attr, _, _ in _LIMIT_FIELDS.values()})
        return replace(cls(), **changes, problems=problems)


#: `config/limits` field → (attribute, lowest allowed, highest allowed), both inclusive.
_LIMIT_FIELDS: dict[str, tuple[str, int, int]] = {
    "maxActiveTriggers": ("max_active_triggers", 1, 100_000),
    "maxOpenPositions": ("max_open_positions", 1, 100_000),
    "maxWatchlistSymbols": ("max_watchlist_symbols", 1, 10_000),
    "minAiIntervalMinutes": ("min_ai_interval_minutes", 1, 1440),
    "maxAiRunsPerDay": ("max_ai_runs_per_day", 1, 1440),
    "maxProposePlanPerMinute": ("max_propose_plan_per_minute", 1, 1000),
    "apiRequestsPerMinute": ("api_requests_per_minute", 1, 1_000_000),
}


def _read_fields(data: Mapping[str, object] | None,
                 fields: Mapping[str, tuple[str, Decimal | int, Decimal | int]],
                 whole: set[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Return (attribute → value, problems) of the valid fields of a config document.

    `fields` maps a document field to (attribute, lowest, highest allowed, both
    inclusive); an attribute in `whole` must be a whole number and becomes an
    `int`. A missing field is left out; an invalid one is listed in the problems.
    """
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for doc_name, (attr, low, high) in fields.items():
        if not data or doc_name not in data:
            continue
        value = parse_number(data[doc_name])
        if (value is None or not low <= value <= high
                or (attr in whole and value != value.to_integral_value())):
            problems.append(f"{doc_name}: invalid value {data[doc_name]!r}, default used")
            continue
        changes[attr] = int(value) if attr in whole else value
    return changes, tuple(problems)
