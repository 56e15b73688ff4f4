"""Trading settings from `config/trading`, with documented defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

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
