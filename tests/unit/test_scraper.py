"""The watchlist scraper on pages the project writes, served from a local HTTP server."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from cogmora_backend.automation.scraper import USER_AGENT, Scraper, ScraperSource
from tests.support.pages import REDESIGNED, market_page, serving


def scrape(source: ScraperSource, symbols: list[str]) -> tuple[list, int]:
    async def run() -> tuple[list, int]:
        scraper = Scraper(source)
        try:
            return list(await asyncio.gather(*(scraper.get(s) for s in symbols))), \
                scraper.fetches
        finally:
            await scraper.close()

    return asyncio.run(run())


def test_fields_are_parsed_exactly_and_each_page_fetched_once_per_run() -> None:
    with serving() as server:
        server.pages["SOL-USDT"] = market_page("SOL-USDT", price="141.50", change="-1.25",
                                               high="142.8", low="134.43", volume="1.25B",
                                               cap="$78,123,456,789")
        source = ScraperSource(url_pattern=server.url_pattern)

        results, fetches = scrape(source, ["SOL-USDT"] * 25)  # 25 users watch it

        assert fetches == 1 and server.requests["SOL-USDT"] == 1
        assert server.user_agents == {USER_AGENT}
        assert {r.error for r in results} == {None}
        assert results[0].values == {
            "price": D("141.50"), "change24h": D("-1.25"), "high24h": D("142.8"),
            "low24h": D("134.43"), "volume24h": D("1250000000"),
            "marketCap": D("78123456789")}


def test_missing_page_changed_layout_and_timeout_are_per_symbol_errors() -> None:
    with serving() as server:
        server.pages["SOL-USDT"] = market_page("SOL-USDT")
        server.pages["ETH-USDT"] = REDESIGNED
        server.pages["SLOW-USDT"] = market_page("SLOW-USDT")
        server.slow["SLOW-USDT"] = 1.0
        source = ScraperSource(url_pattern=server.url_pattern, timeout_seconds=0.3, attempts=2)

        results, _ = scrape(source, ["SOL-USDT", "ETH-USDT", "GONE-USDT", "SLOW-USDT"])

        errors = {r.symbol: r.error for r in results}
        assert errors["SOL-USDT"] is None
        assert errors["ETH-USDT"] == 'layout_changed: no price ([data-field="price"])'
        assert errors["GONE-USDT"] == "page_not_found"
        assert errors["SLOW-USDT"] == "timeout"
        assert server.requests["GONE-USDT"] == 1  # a 404 is not retried
        assert server.requests["SLOW-USDT"] == 2  # a timeout is


def test_server_errors_are_retried_with_backoff() -> None:
    with serving() as server:
        server.pages["SOL-USDT"] = market_page("SOL-USDT")
        server.failures["SOL-USDT"] = [503, 500]
        results, fetches = scrape(ScraperSource(url_pattern=server.url_pattern, attempts=3),
                                  ["SOL-USDT"])
        assert results[0].error is None and fetches == 3


def test_source_settings_come_from_the_config_document() -> None:
    source = ScraperSource.from_document({
        "urlPattern": "https://example.test/price/{base}",
        "selectors": {"price": ".ticker-price"}, "timeoutSeconds": 5})
    assert source.url("SOL-USDT") == "https://example.test/price/SOL"
    assert source.url("XBTUSDTM") == "https://example.test/price/XBT"
    assert source.selectors["price"] == ".ticker-price"
    assert source.selectors["high24h"] == '[data-field="high24h"]'
    assert source.timeout_seconds == 5
