"""The contract's venue list is one list: the core, the worker, the local exchange, the
security rules and the OpenAPI document name the same venues and symbol forms."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cogmora_core.venues import DEFAULT_VENUE, VENUES, SymbolType, Venue, venue_of
from localkucoin.venues import LOCAL_VENUES
from worker.venues.registry import ADAPTERS

ROOT = Path(__file__).resolve().parents[2]


def test_every_venue_has_one_worker_adapter_and_one_local_stand_in() -> None:
    assert sorted(adapter.venue for adapter in ADAPTERS) == sorted(Venue)
    assert sorted(VENUES) == sorted(Venue)
    assert sorted(LOCAL_VENUES) == sorted(Venue)


def test_the_security_rules_accept_exactly_the_contracts_venues_and_symbol_forms() -> None:
    rules = (ROOT / "firestore.rules").read_text()
    listed = re.search(r"venueOf\(t\) in \[([^\]]*)\]", rules)
    assert listed is not None
    assert sorted(v.strip(" '") for v in listed.group(1).split(",")) == sorted(Venue)
    assert f"== null ? '{DEFAULT_VENUE}' : t.venue" in rules
    for spec in VENUES.values():
        for symbol_type, form in spec.symbols.items():
            assert f"t.symbolType == '{symbol_type}'" in rules
            assert f"matches('{form.pattern.pattern}')" in rules, (spec.venue, symbol_type)


def test_the_openapi_document_names_every_venue() -> None:
    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    order = document["components"]["schemas"]["TriggerRequest"]["properties"]["venue"]
    assert sorted(v for v in order["enum"] if v is not None) == sorted(Venue)
    named = set()
    for schema in document["components"]["schemas"].values():
        venue = schema.get("properties", {}).get("venue", {}) if isinstance(schema, dict) else {}
        named.update(v for v in venue.get("enum", [venue.get("const")]) if v)
    assert named == set(Venue)


def test_a_document_without_a_venue_is_on_the_default_and_an_unknown_one_is_none() -> None:
    assert venue_of(None) is DEFAULT_VENUE is Venue.KUCOIN
    assert venue_of("backpack") is Venue.BACKPACK
    assert venue_of("Backpack") is None
    assert venue_of(1) is None


def test_each_venue_tells_its_markets_apart_by_symbol_form() -> None:
    assert VENUES[Venue.KUCOIN].market_of("XBTUSDTM") is SymbolType.FUTURES
    assert VENUES[Venue.KUCOIN].market_of("BTC-USDT") is SymbolType.SPOT
    assert VENUES[Venue.BACKPACK].market_of("SOL_USDC_PERP") is SymbolType.FUTURES
    assert VENUES[Venue.KUCOIN].market_of("SOL_USDC") is None
    assert VENUES[Venue.KUCOIN].symbol(SymbolType.FUTURES, "BTC") == "XBTUSDTM"


def test_binance_writes_both_markets_alike_so_its_ticks_name_their_market() -> None:
    spec = VENUES[Venue.BINANCE]
    assert spec.symbol(SymbolType.SPOT, "BTC") == spec.symbol(SymbolType.FUTURES, "BTC") == (
        "BTCUSDT")
    for symbol_type in SymbolType:
        assert spec.symbols[symbol_type].pattern.match("BTCUSDT")
        assert not spec.symbols[symbol_type].pattern.match("XBTUSDTM")


def test_every_venue_declares_subscription_limits_a_burst_can_honour() -> None:
    for adapter in ADAPTERS:
        for market in adapter.markets:
            limits = adapter({}).subscription_limits(market)
            assert limits.messages(1) <= limits.burst, (adapter.venue, market)
            assert limits.symbols_within(limits.burst) >= 1, (adapter.venue, market)
