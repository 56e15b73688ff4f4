"""The watchlist scraper: market data from HTML pages, parsed with beautifulsoup4.

The source is a setting (`config/scraper`: `urlPattern` with `{symbol}` and
`{base}`, and a CSS selector per field); the default expects elements marked
with `data-field` attributes. Each symbol's page is fetched once per run,
however many users watch it, with timeouts, retries with backoff on 5xx and
network errors, and a proper User-Agent. A missing page, a changed layout or
a timeout is a per-symbol error; the other symbols still update.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import httpx
from bs4 import BeautifulSoup

from cogmora_backend.retry import backoff
from cogmora_core.errors import InvalidInput

USER_AGENT = "CogmoraWatchlistBot/1.0 (paper-trading watchlist; contact: ops@cogmora.app)"
FIELDS = ("price", "change24h", "high24h", "low24h", "volume24h", "marketCap")
REQUIRED = ("price",)
_SUFFIX = {"K": Decimal(10) ** 3, "M": Decimal(10) ** 6, "B": Decimal(10) ** 9,
           "T": Decimal(10) ** 12}
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")


@dataclass(frozen=True)
class ScraperSource:
    """Where and how to scrape: a URL pattern and a CSS selector per field."""

    name: str = "cogmora-html-v1"
    url_pattern: str = "http://127.0.0.1:8765/markets/{symbol}"
    selectors: Mapping[str, str] = field(default_factory=lambda: {
        name: f'[data-field="{name}"]' for name in FIELDS})
    timeout_seconds: float = 10.0
    attempts: int = 3

    @classmethod
    def from_document(cls, data: Mapping[str, object] | None) -> ScraperSource:
        """Build the source from `config/scraper`, defaults where absent."""
        source = cls()
        if not data:
            return source
        selectors = data.get("selectors")
        return cls(
            name=str(data.get("name", source.name)),
            url_pattern=str(data.get("urlPattern", source.url_pattern)),
            selectors={**source.selectors, **(selectors if isinstance(selectors, dict) else {})},
            timeout_seconds=float(data.get("timeoutSeconds", source.timeout_seconds)),  # type: ignore[arg-type]
            attempts=int(data.get("attempts", source.attempts)),  # type: ignore[call-overload]
        )

    def url(self, symbol: str) -> str:
        """Return the page of `symbol` (`{base}` is the symbol without its quote)."""
        base = symbol.split("-")[0] if "-" in symbol else symbol.removesuffix("USDTM")
        return self.url_pattern.format(symbol=symbol, base=base)


@dataclass(frozen=True)
class Scraped:
    """A symbol's market data, or the reason it could not be read."""

    symbol: str
    values: dict[str, Decimal] = field(default_factory=dict)
    error: str | None = None


class ScrapeError(InvalidInput):
    """A per-symbol failure with a stable reason."""


def parse_number(text: str) -> Decimal:
    """Return a displayed number (`$87,956.10`, `-1.25%`, `1.2B`) as a Decimal."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace("%", "").replace(
        "USDT", "").strip()
    scale = Decimal(1)
    if cleaned[-1:].upper() in _SUFFIX:
        scale = _SUFFIX[cleaned[-1].upper()]
        cleaned = cleaned[:-1].strip()
    if not _NUMBER.match(cleaned):
        raise ScrapeError(f"not a number: {text.strip()[:40]!r}")
    try:
        return Decimal(cleaned) * scale
    except InvalidOperation as error:
        raise ScrapeError(f"not a number: {text.strip()[:40]!r}") from error


def parse_page(html: str, source: ScraperSource) -> dict[str, Decimal]:
    """Return the fields found in a page; raise `ScrapeError` when the layout changed."""
    soup = BeautifulSoup(html, "html.parser")
    values: dict[str, Decimal] = {}
    for name, selector in source.selectors.items():
        element = soup.select_one(selector)
        if element is None:
            if name in REQUIRED:
                raise ScrapeError(f"layout_changed: no {name} ({selector})")
            continue
        try:
            values[name] = parse_number(element.get_text())
        except ScrapeError as error:
            raise ScrapeError(f"layout_changed: {name} {error}") from None
    if values["price"] <= 0:
        raise ScrapeError("layout_changed: price is not positive")
    return values


class Scraper:
    """Fetches each symbol's page at most once per run (one instance per run)."""

    def __init__(self, source: ScraperSource, client: httpx.AsyncClient | None = None) -> None:
        self.source = source
        self.client = client or httpx.AsyncClient(
            timeout=source.timeout_seconds, headers={"User-Agent": USER_AGENT},
            follow_redirects=True)
        self._runs: dict[str, asyncio.Task[Scraped]] = {}
        self.fetches = 0

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def get(self, symbol: str) -> Scraped:
        """Return the symbol's data, fetching its page only the first time in this run."""
        task = self._runs.get(symbol)
        if task is None:
            task = self._runs[symbol] = asyncio.create_task(self._scrape(symbol))
        # Shared by every user watching the symbol: one user's task cut off at its
        # time limit cancels its own wait, never the fetch the others wait for.
        return await asyncio.shield(task)

    async def _scrape(self, symbol: str) -> Scraped:
        try:
            html = await self._fetch(symbol)
            return Scraped(symbol, parse_page(html, self.source))
        except ScrapeError as error:
            return Scraped(symbol, error=str(error))

    async def _fetch(self, symbol: str) -> str:
        delays = backoff(initial=0.2, maximum=2.0, jitter=0.5)
        for attempt in range(1, self.source.attempts + 1):
            self.fetches += 1
            try:
                response = await self.client.get(self.source.url(symbol))
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.HTTPError as error:
                reason = f"network_error: {type(error).__name__}"
            else:
                if response.status_code == 404:
                    raise ScrapeError("page_not_found")
                if response.status_code < 400:
                    return response.text
                reason = f"http_{response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    raise ScrapeError(reason)
            if attempt == self.source.attempts:
                raise ScrapeError(reason)
            await asyncio.sleep(next(delays))
        raise ScrapeError("unreachable")
